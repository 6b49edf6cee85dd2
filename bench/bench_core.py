"""What the Model page's check costs per rerun, and what the CLI spends loading its data.

    python bench/bench_core.py [--rows 150000] [--out FILE]

1. The check a page runs on every rerun (ui/datasets.check_model -> kfcore.training.train.assess) against prepare(), which
   also splits the data, on an MNIST-sized dataset (60,000 28×28 images, float32, 188 MB): milliseconds per call.
2. `python -m kfcore train` on a CSV of --rows rows × 20 columns, one epoch: how often the dataset is loaded
   (kfcore.data.load_dataset calls, counted in a child process that runs the CLI's main), its wall time and peak
   RSS, and one load_dataset of that file alone (what a second load cost before the CLI passed its dataset on).

Writes a markdown fragment with --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kfcore.data import Dataset, load_dataset  # noqa: E402
from kfcore.runs.limits import Limits  # noqa: E402
from kfcore.spec import DataSpec, parse_spec  # noqa: E402
from kfcore.training.train import assess, prepare  # noqa: E402

CLI_CHILD = """
import json, resource, sys, time
from kfcore import __main__ as cli, data
from kfcore.training import train
calls = []
real = data.load_dataset
def counting(*a, **k):
    calls.append(1)
    return real(*a, **k)
data.load_dataset = train.load_dataset = counting
t = time.perf_counter()
try:
    code = cli.main(sys.argv[1:])
except SystemExit as e:
    code = e.code
print(json.dumps({"code": code, "loads": len(calls), "wall_s": time.perf_counter() - t,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}), file=sys.stderr)
"""


def per_call_ms(fn, repeat: int = 5) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1000


def check_costs() -> dict[str, float]:
    rng = np.random.default_rng(0)
    n = 60_000
    ds = Dataset(
        "mnist-sized",
        "",
        rng.random((n, 28, 28, 1), dtype=np.float32),
        rng.integers(0, 10, n),
        "multiclass",
        [str(i) for i in range(10)],
        x_test=np.zeros((10_000, 28, 28, 1), np.float32),
        y_test=np.zeros(10_000, np.int64),
    )
    spec, limits = parse_spec({"layers": [{"type": "Dense", "units": 128}]}), Limits.from_env()
    n_train = len(prepare(spec, ds, limits)[1].y_train)
    return {
        "prepare_ms": per_call_ms(lambda: prepare(spec, ds, limits)),
        "assess_ms": per_call_ms(lambda: assess(spec, ds, n_train, limits)),
    }


def cli_costs(rows: int, folder: Path) -> dict[str, float]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows, 20)).round(4)
    csv = folder / "big.csv"
    with open(csv, "w") as out:
        out.write(",".join(f"f{i}" for i in range(20)) + ",y\n")
        for row, target in zip(x, (x[:, 0] + x[:, 1] > 0).astype(int), strict=True):
            out.write(",".join(map(str, row)) + f",{target}\n")
    spec = folder / "spec.json"
    spec.write_text(
        json.dumps(
            {
                "data": {"source": "csv", "path": str(csv), "target": "y"},
                "layers": [{"type": "Dense", "units": 8}],
                "train": {"epochs": 1, "batch_size": 4096},
            }
        )
    )
    start = time.perf_counter()
    load_dataset(DataSpec(source="csv", path=str(csv), target="y"))
    one_load_s = time.perf_counter() - start
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", CLI_CHILD, "train", str(spec), "--store", str(folder / "store")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    result = json.loads(out.stderr.strip().splitlines()[-1])
    return {**result, "one_load_s": one_load_s, "csv_mb": csv.stat().st_size / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=150_000)
    parser.add_argument("--out", help="write a markdown fragment here")
    args = parser.parse_args()
    checks = check_costs()
    with tempfile.TemporaryDirectory() as tmp:
        cli = cli_costs(args.rows, Path(tmp))
    load = os.getloadavg()
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores, load average "
        f"{load[0]:.2f} after the runs. `python bench/bench_core.py --rows {args.rows}`.",
        "",
        f"- Model page check per rerun on an MNIST-sized dataset: assess {checks['assess_ms']:.2f} ms, prepare "
        f"(which splits the data) {checks['prepare_ms']:.0f} ms.",
        f"- `python -m kfcore train` on a {cli['csv_mb']:.0f} MB CSV ({args.rows:,} rows), one epoch: exit "
        f"{cli['code']}, load_dataset called {cli['loads']}×, {cli['wall_s']:.1f} s, peak RSS {cli['peak_mb']:.0f} MB;"
        f" one load of that file alone takes {cli['one_load_s']:.2f} s.",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
