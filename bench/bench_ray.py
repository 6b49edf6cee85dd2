"""The local pool against Ray on the same machine: an 8-run batch, median of 3 (issue 13, executors).

    python bench/bench_ray.py [--runs 8] [--concurrent 2] [--epochs 20] [--repeats 3]

Each repeat, for each executor in turn: make a fresh one on a fresh store (the local pool: JobManager with
--concurrent workers; Ray: a local Ray started on demand, as KF_EXECUTOR=ray does, with --concurrent CPUs and one
CPU per run), submit --runs copies of the same small spec (iris, one Dense 16 layer, --epochs epochs, batch 16) at
once, wait until every run is final, shut the executor down. Reported per executor, median over repeats:
- start: making the executor (the pool spawns its workers lazily; Ray starts its local cluster here);
- batch: first submit to last run final (workers' or actors' TensorFlow imports included: both start cold);
- queued: a run's wait from submit to start, and train: start to final, medians over the batch's runs;
- overhead per run: (Ray's batch - the pool's batch) / runs * concurrent, the extra each run slot pays.
Every run must finish, with the same test metrics on both (the same spec and seed).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kfcore.runs.executors import RayExecutor, RaySettings  # noqa: E402
from kfcore.runs.jobs import JobManager  # noqa: E402
from kfcore.runs.store import RunStore  # noqa: E402
from kfcore.spec import parse_spec  # noqa: E402


def spec(epochs: int):
    return parse_spec(
        {
            "data": {"source": "builtin", "name": "iris"},
            "split": {"test": 0.2, "validation": 0.2, "seed": 0},
            "layers": [{"type": "Dense", "units": 16, "activation": "relu"}],
            "train": {"optimizer": "adam", "learning_rate": 0.01, "epochs": epochs, "batch_size": 16, "seed": 1},
        }
    )


def batch(kind: str, runs: int, concurrent: int, epochs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="kf-bench-ray-") as tmp:
        store = RunStore(Path(tmp) / "store")
        t0 = time.perf_counter()
        if kind == "pool":
            executor = JobManager(store, max_concurrent=concurrent, prestart=False)
        else:
            os.environ["KF_MAX_CONCURRENT"] = str(concurrent)  # a local Ray gets this many CPUs
            executor = RayExecutor(store, RaySettings(None, num_cpus=1.0))
        started = time.perf_counter()
        try:
            ids = [executor.submit(spec(epochs), name=f"run {i + 1}") for i in range(runs)]
            while not all(store.get(i, with_evaluation=False).is_final for i in ids):
                time.sleep(0.1)
            done = time.perf_counter()
        finally:
            executor.shutdown()
        records = [store.get(i, with_evaluation=False) for i in ids]
        bad = [r for r in records if r.status != "finished"]
        if bad:
            raise SystemExit(f"{kind}: {len(bad)} run(s) did not finish: {bad[0].status} {bad[0].error}")
        return {
            "start": started - t0,
            "batch": done - started,
            "queued": statistics.median(r.started - r.created for r in records),
            "train": statistics.median(r.finished - r.started for r in records),
            "test": records[0].test,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--concurrent", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    results: dict[str, list[dict]] = {"pool": [], "ray": []}
    for repeat in range(args.repeats):
        for kind in results:
            r = batch(kind, args.runs, args.concurrent, args.epochs)
            results[kind].append(r)
            print(
                f"repeat {repeat + 1} {kind:>4}: start {r['start']:6.2f} s  batch {r['batch']:6.2f} s  "
                f"queued {r['queued']:6.2f} s  train {r['train']:5.2f} s",
                flush=True,
            )
    tests = {kind: rs[0]["test"] for kind, rs in results.items()}
    same = all(abs(tests["pool"][k] - tests["ray"][k]) < 1e-6 for k in tests["pool"])
    med = {
        kind: {key: statistics.median(r[key] for r in rs) for key in ("start", "batch", "queued", "train")}
        for kind, rs in results.items()
    }
    print(f"\nmedian of {args.repeats}, {args.runs} runs, {args.concurrent} at once, {args.epochs} epochs each:")
    print("| executor | start (s) | batch wall (s) | queued, median run (s) | train, median run (s) |")
    print("|---|---|---|---|---|")
    for kind, m in med.items():
        print(f"| {kind} | {m['start']:.2f} | {m['batch']:.2f} | {m['queued']:.2f} | {m['train']:.2f} |")
    ratio = med["ray"]["batch"] / med["pool"]["batch"]
    overhead = (med["ray"]["batch"] - med["pool"]["batch"]) / args.runs * args.concurrent
    print(
        f"\nRay / pool batch wall: {ratio:.2f}x; Ray's overhead per run slot: {overhead:+.2f} s; "
        f"same test metrics on both: {same}"
    )


if __name__ == "__main__":
    main()
