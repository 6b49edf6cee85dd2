"""Training throughput: the tutorial's plain Keras script against `python -m kfcore train`, side by side.

    python bench/bench_train.py [--epochs 10] [--repeats 3]

Data: 60,000 × 784 float32 rows (the real MNIST test split from ../shared/data/mnist, tiled six times),
batch 32, adam, Dense 64 relu → Dense 10 softmax, 10 epochs. Each contender runs in its own process,
interleaved, `--repeats` times; the table gives medians. Steady-state samples/s is the median over
epochs 2..N (epoch 1 includes tracing). A second table measures what event streaming and the run store
cost: kfcore's trainer in-process with every event written to a store, against no events at all, with
the same steps_per_execution.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MNIST = REPO.parent / "shared" / "data" / "mnist"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}


def make_data(folder: Path) -> Path:
    import numpy as np

    with gzip.open(MNIST / "t10k-images-idx3-ubyte.gz") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
    with gzip.open(MNIST / "t10k-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
    x = np.tile(images, (6, 1)).astype(np.float32) / 255.0
    y = np.tile(labels, 6)
    path = folder / "mnist60k.npz"
    np.savez(path, x=x, y=y, x_test=images.astype(np.float32) / 255.0, y_test=labels)
    return path


def spec_for(npz: Path, epochs: int) -> dict:
    return {
        "data": {"source": "npz", "path": str(npz)},
        "split": {"test": 0.2, "validation": 0.0, "seed": 0},
        "layers": [{"type": "Dense", "units": 64, "activation": "relu"}],
        "train": {"optimizer": "adam", "learning_rate": 0.001, "epochs": epochs, "batch_size": 32, "seed": 0},
    }


def steady(rates: list[float]) -> float:
    return statistics.median(rates[1:] if len(rates) > 1 else rates)


def run_seed(npz: Path, epochs: int, verbose: str) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "seed_script.py"), str(npz), str(epochs), verbose],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        check=True,
    )
    wall = time.perf_counter() - t0
    result = json.loads(out.stderr.strip().splitlines()[-1])
    return {"wall": wall, "rate": steady(result["rates"]), "accuracy": result["test_accuracy"]}


def run_kfcore_cli(npz: Path, epochs: int, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "spec.json"
    spec.write_text(json.dumps(spec_for(npz, epochs)))
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "kfcore", "train", str(spec), "--store", str(folder / "store")],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=REPO,
        check=True,
    )
    wall = time.perf_counter() - t0
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    rates = [line["samples_per_s"] for line in lines if line["event"] == "epoch"]
    return {"wall": wall, "rate": steady(rates), "accuracy": lines[-1]["test"]["accuracy"]}


def inner(mode: str, npz: str, epochs: int, folder: str) -> None:
    """One in-process kfcore training, with events to a store ('stream') or none ('quiet')."""
    from kfcore.runs.jobs import execute_run
    from kfcore.runs.store import RunStore
    from kfcore.spec import parse_spec
    from kfcore.training.train import train

    spec = parse_spec(spec_for(Path(npz), epochs))
    if mode == "stream":
        store = RunStore(folder)
        run_id = store.create_run(spec.to_dict())
        store.start_in_process(run_id)
        result = execute_run(store, run_id)
    else:
        result = train(spec, stream=False)
    print(json.dumps({"rates": [h["samples_per_s"] for h in result.history], "k": result.info["steps_per_execution"]}))


def run_inner(mode: str, npz: Path, epochs: int, folder: Path) -> dict:
    out = subprocess.run(
        [sys.executable, str(Path(__file__)), "--inner", mode, str(npz), str(epochs), str(folder)],
        capture_output=True,
        text=True,
        env=ENV,
        cwd=REPO,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return {"rate": steady(result["rates"]), "k": result["k"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inner", nargs=4, metavar=("MODE", "NPZ", "EPOCHS", "DIR"))
    args = parser.parse_args()
    if args.inner:
        inner(args.inner[0], args.inner[1], int(args.inner[2]), args.inner[3])
        return

    results: dict[str, list[dict]] = {k: [] for k in ("seed", "seed_quiet", "kfcore", "stream", "quiet")}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        npz = make_data(folder)
        for r in range(args.repeats):
            results["seed"].append(run_seed(npz, args.epochs, "auto"))
            results["seed_quiet"].append(run_seed(npz, args.epochs, "0"))
            results["kfcore"].append(run_kfcore_cli(npz, args.epochs, folder / f"cli{r}"))
            results["stream"].append(run_inner("stream", npz, args.epochs, folder / f"s{r}"))
            results["quiet"].append(run_inner("quiet", npz, args.epochs, folder / f"q{r}"))
            print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr, flush=True)

    def med(name: str, key: str) -> float:
        return statistics.median(x[key] for x in results[name])

    base = med("seed", "rate")
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"{args.epochs} epochs, median of {args.repeats}"
    )
    print("\n| contender | wall time (s) | steady samples/s | × seed script | test accuracy |")
    print("|---|---|---|---|---|")
    rows = [
        ("seed script (plain Keras, verbose=auto)", "seed"),
        ("seed script, verbose=0", "seed_quiet"),
        ("python -m kfcore train (events to store)", "kfcore"),
    ]
    for label, key in rows:
        print(
            f"| {label} | {med(key, 'wall'):.1f} | {med(key, 'rate'):,.0f} | {med(key, 'rate') / base:.2f} | "
            f"{med(key, 'accuracy'):.4f} |"
        )
    stream, quiet = med("stream", "rate"), med("quiet", "rate")
    print("\n| kfcore trainer, in-process | steady samples/s | steps_per_execution |")
    print("|---|---|---|")
    print(f"| no events, no store | {quiet:,.0f} | {results['quiet'][0]['k']} |")
    print(f"| every event written to the run store | {stream:,.0f} | {results['stream'][0]['k']} |")
    print(f"\nStreaming + store cost: {100 * (1 - stream / quiet):+.1f}% of throughput")
    print("\n" + json.dumps(results))


if __name__ == "__main__":
    main()
