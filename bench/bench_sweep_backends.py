"""An 8-trial sweep on the local pool against Ray Tune on the same machine (issue 13).

    python bench/bench_sweep_backends.py [--trials 8] [--epochs 20] [--out FILE]

The same sweep file (xor, 200 points, `--epochs` epochs, the learning rate over `--trials` values) runs through
`python -m kfcore sweep` twice, each into a fresh store: `--backend local` (this machine's worker pool,
KF_MAX_CONCURRENT as the machine gives: one per two cores) and `--backend ray` (a local Ray started by the
command, one CPU per trial). Wall time of the whole command, and per trial: the mean time from the trial's start
to its end as stored (training, evaluation, saving), and the sweep's wall time divided by its trials. Ray's extra
cost per trial is the difference of the per-trial wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kfcore.runs.store import RunStore  # noqa: E402  (after the path set-up)


def run(sweep: Path, backend: str) -> dict:
    store = Path(tempfile.mkdtemp(prefix=f"kf-bench-{backend}-"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "kfcore", "sweep", str(sweep), "--backend", backend, "--store", str(store)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=1800,
    )
    wall = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"{backend} sweep failed: {out.stderr[-2000:]}")
    summary = json.loads(out.stdout.splitlines()[-1])["summary"]
    trials = RunStore(store).trials(summary["sweep_id"])
    spans = [t.finished - t.started for t in trials if t.started and t.finished]
    return {
        "wall": wall,
        "trials": len(trials),
        "finished": summary.get("finished", 0),
        "trial_mean": statistics.mean(spans),
        "per_trial_wall": wall / len(trials),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--out", help="write the markdown fragment here too")
    args = parser.parse_args()
    sweep = {
        "base": {
            "data": {"source": "builtin", "name": "xor", "n": 200},
            "layers": [{"type": "Dense", "units": 8}],
            "train": {"epochs": args.epochs, "batch_size": 16},
        },
        "grid": {"train.learning_rate": [round(0.001 * 1.8**i, 6) for i in range(args.trials)]},
    }
    path = Path(tempfile.mkdtemp(prefix="kf-bench-sweep-")) / "sweep.json"
    path.write_text(json.dumps(sweep))
    load = os.getloadavg()[0]
    results = {backend: run(path, backend) for backend in ("local", "ray")}
    local, ray = results["local"], results["ray"]
    lines = [
        f"### Local pool against Ray Tune (`python bench/bench_sweep_backends.py --trials {args.trials} --epochs "
        f"{args.epochs}`)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, load "
        f"{load:.1f} before; {args.trials} trials of xor (200 points, {args.epochs} epochs).",
        "",
        "| backend | sweep wall time | per trial (wall / trials) | a trial's own start → end (mean) | finished |",
        "|---|---|---|---|---|",
        *(
            f"| {name} | {r['wall']:.1f} s | {r['per_trial_wall']:.2f} s | {r['trial_mean']:.2f} s | "
            f"{r['finished']}/{r['trials']} |"
            for name, r in results.items()
        ),
        "",
        f"Ray's overhead per trial on this machine: {ray['per_trial_wall'] - local['per_trial_wall']:+.2f} s "
        f"(its sweep took {ray['wall'] / local['wall']:.1f}× the local pool's).",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
