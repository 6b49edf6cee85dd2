"""Hardware choices are recorded with reasons; the host description needs no TensorFlow."""

import subprocess
import sys

from kfcore.training import hardware


def test_configure_on_cpu_records_device_precision_strategy_and_threads():
    strategy, info = hardware.configure()
    assert info["cpu_cores"] >= 1 and info["tensorflow"].startswith("2.")
    if not info["gpus"]:
        assert strategy is None
        assert info["device"].startswith("CPU:")
        assert info["mixed_precision"].startswith("off") and "CPU" in info["mixed_precision"]
    assert "intra_op" in info["threads"]
    import keras

    assert keras.mixed_precision.global_policy().name in ("float32", "mixed_float16")


def test_describe_host_is_tensorflow_free():
    code = (
        "import sys, kfcore.training.hardware as h; d = h.describe_host(); assert d['cpu_cores'] >= 1; "
        "assert 'tensorflow' not in sys.modules; print(d['cpu'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip()
