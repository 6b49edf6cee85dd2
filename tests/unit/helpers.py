"""Shared by the unit tests that wait on worker processes."""

import time


def wait_for(predicate, timeout: float = 120.0, what: str = "the condition"):
    """Poll `predicate` until it returns something truthy (and return that), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
