"""A live run's picture (kfcore.training.snapshot): what one costs the worker, how large it is, and the spiral's
steady epochs/s with pictures on and off, in one process.

    python bench/bench_picture.py [--epochs 600] [--repeats 2]

The picture: spiral (350 train points), Dense 8 tanh → Dense 8 tanh → sigmoid; a 40 × 40 boundary, the weights and
every unit's 14 × 14 thumbnail. Epochs/s: train() with a live pace (as a worker trains), steady over epochs 100..N;
"off" takes only the final picture; the share of a run's time spent in its pictures is the figure that holds on a
busy machine (epochs/s there move with the load). Runs alternate on and off; medians.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SPEC = {
    "data": {"source": "builtin", "name": "spiral"},
    "layers": [
        {"type": "Dense", "units": 8, "activation": "tanh"},
        {"type": "Dense", "units": 8, "activation": "tanh"},
    ],
    "train": {"batch_size": 10, "learning_rate": 0.03},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import keras
    import numpy as np

    from kfcore.spec import parse_spec
    from kfcore.training import snapshot
    from kfcore.training.train import train

    spec = parse_spec({**SPEC, "train": {**SPEC["train"], "epochs": args.epochs}})
    x = np.random.default_rng(0).normal(size=(350, 2)).astype(np.float32)
    model = keras.Sequential(
        [
            keras.Input((2,)),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(8, activation="tanh"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    view = snapshot.LiveView(x, (x[:, 0] > 0).astype(int), "binary", dense=True)
    view.take(model, 0)  # compiles the probe
    costs = []
    for i in range(50):
        start = time.perf_counter()
        shot = view.take(model, i)
        costs.append(time.perf_counter() - start)

    take, spent, share = snapshot.LiveView.take, [], []

    def timed(self, m, epoch):  # the time a run spends in its pictures, first (compiling) one included
        start = time.perf_counter()
        try:
            return take(self, m, epoch)
        finally:
            spent.append(time.perf_counter() - start)

    def steady(pictures: bool) -> float:
        due = snapshot.LiveView.due
        if not pictures:
            snapshot.LiveView.due = lambda self: False  # type: ignore[method-assign]
        spent.clear()
        snapshot.LiveView.take = timed  # type: ignore[method-assign]
        try:
            h = train(spec, pace=lambda m, hold: None).history
        finally:
            snapshot.LiveView.due, snapshot.LiveView.take = due, take  # type: ignore[method-assign]
        if pictures:
            share.append(sum(spent) / h[-1]["elapsed"])
        return (len(h) - 100) / (h[-1]["elapsed"] - h[99]["elapsed"])

    steady(True)  # warm-up: tracing
    on, off = [], []
    for _ in range(args.repeats):
        on.append(steady(True))
        off.append(steady(False))
    print(
        json.dumps(
            {
                "picture_ms_median": round(statistics.median(costs) * 1000, 2),
                "picture_kib": round(len(json.dumps(shot)) / 1024, 1),
                "epochs_per_s_pictures_on": round(statistics.median(on)),
                "epochs_per_s_pictures_off": round(statistics.median(off)),
                "share_of_run_time_in_pictures": round(statistics.median(share), 4),
                "load": os.getloadavg()[0],
            }
        )
    )


if __name__ == "__main__":
    main()
