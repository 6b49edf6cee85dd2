"""Small data: kfcore's fast loop (several epochs per compiled call) against Keras `fit` (today's path), side by side.

    python bench/bench_fast.py [--repeats 3] [--fast-epochs 1500] [--fit-epochs 40]

Each loop gets its own real worker process (kfcore.runs.jobs.worker_main, spawned, TensorFlow imported before the
first run), every event goes to a run store, and everything is read back from the store:
- epochs/s: spiral, 200 points (160 train, 20 validation, 20 test), Dense 8 tanh → Dense 8 tanh, batch 10, adam;
  steady = (epochs 2..N) / (store time of epoch N − store time of epoch 1), every epoch recorded;
- first-epoch latency: a warm worker (it has already trained one run) claims a small run (digits, iris, the
  four 2-D sets); latency = store time of epoch 1 − the run's `started` (the claim).
The "fit" worker runs the same code with `train(..., fast=False)`. Repeats interleave the two; medians.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SMALL_SETS = ["digits", "iris", "circle", "xor", "gauss", "spiral"]


def spec(name: str, epochs: int, batch: int = 10) -> dict:
    data = {"source": "builtin", "name": name, **({"n": 200} if name in ("circle", "xor", "gauss", "spiral") else {})}
    return {
        "data": data,
        "split": {"test": 0.1, "validation": 0.1, "seed": 0},
        "layers": [
            {"type": "Dense", "units": 8, "activation": "tanh"},
            {"type": "Dense", "units": 8, "activation": "tanh"},
        ],
        "train": {"optimizer": "adam", "learning_rate": 0.03, "epochs": epochs, "batch_size": batch, "seed": 0},
    }


def worker(loop: str, store_root: str, parent_pid: int) -> None:
    """A kfcore worker whose trainer takes the given loop ('fast': the default choice, 'fit': forced)."""
    import functools

    import kfcore.training.train
    from kfcore.runs.jobs import worker_main

    if loop == "fit":
        kfcore.training.train.train = functools.partial(kfcore.training.train.train, fast=False)
    worker_main(store_root, 1000, parent_pid)


def wait(store, run_id: str, timeout: float = 600.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = store.get(run_id, with_evaluation=False)
        if record.is_final:
            if record.status != "finished":
                raise SystemExit(f"run {run_id} {record.status}: {record.error}")
            return record
        time.sleep(0.05)
    raise SystemExit(f"run {run_id} did not finish in {timeout:.0f} s")


def run(store, d: dict):
    from kfcore.spec import parse_spec

    run_id = store.create_run(parse_spec(d).to_dict())
    return wait(store, run_id), store.epochs(run_id)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fast-epochs", type=int, default=1500)
    parser.add_argument("--fit-epochs", type=int, default=40)
    args = parser.parse_args()

    from kfcore.runs.store import RunStore

    ctx = mp.get_context("spawn")
    rates: dict[str, list[float]] = {"fast": [], "fit": []}
    latency: dict[str, dict[str, list[float]]] = {loop: {s: [] for s in SMALL_SETS} for loop in rates}
    accuracy: dict[str, list[float]] = {"fast": [], "fit": []}
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        stores, procs = {}, []
        for loop in rates:
            stores[loop] = RunStore(Path(tmp) / loop)
            p = ctx.Process(target=worker, args=(loop, str(stores[loop].root), os.getpid()), daemon=True)
            p.start()
            procs.append(p)
        for store in stores.values():  # warm: TensorFlow imported and one run trained
            run(store, spec("iris", 2))
        for r in range(args.repeats):
            for loop, store in stores.items():
                epochs = args.fast_epochs if loop == "fast" else args.fit_epochs
                record, rows = run(store, spec("spiral", epochs))
                assert len(rows) == epochs, f"{loop}: {len(rows)} of {epochs} epochs recorded"
                rates[loop].append((len(rows) - 1) / (rows[-1]["time"] - rows[0]["time"]))
                accuracy[loop].append(record.test["accuracy"])
                for name in SMALL_SETS:
                    record, rows = run(store, spec(name, 3))
                    latency[loop][name].append(rows[0]["time"] - record.started)
            print(
                f"repeat {r + 1}/{args.repeats}: fast {rates['fast'][-1]:.0f} epochs/s, "
                f"fit {rates['fit'][-1]:.1f} epochs/s",
                file=sys.stderr,
                flush=True,
            )
        for p in procs:
            p.terminate()
            p.join(5)

    med = statistics.median
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average "
        f"{load_before:.1f} before; medians of {args.repeats} (fast {args.fast_epochs} epochs, fit "
        f"{args.fit_epochs} epochs of spiral)"
    )
    print("\n| spiral 2-8-8 tanh, batch 10, in the worker | steady epochs/s (per repeat) | test accuracy |")
    print("|---|---|---|")
    for loop, label in (("fit", "Keras `fit` (today's path)"), ("fast", "fast loop")):
        each = " / ".join(f"{v:.1f}" for v in rates[loop])
        print(f"| {label} | **{med(rates[loop]):.1f}** ({each}) | {med(accuracy[loop]):.3f} |")
    print(f"\nRatio fast / fit: {med(rates['fast']) / med(rates['fit']):.1f}×")
    print("\n| first epoch after a warm worker claims the run (s) | fit (today) | fast loop |")
    print("|---|---|---|")
    for name in SMALL_SETS:
        print(f"| {name} | {med(latency['fit'][name]):.2f} | **{med(latency['fast'][name]):.2f}** |")
    print("\n" + json.dumps({"rates": rates, "latency": latency, "accuracy": accuracy}))


if __name__ == "__main__":
    main()
