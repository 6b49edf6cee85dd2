"""The tutorial's plain Keras script, the baseline kfcore is measured against.

Usage: python bench/seed_script.py DATA.npz EPOCHS VERBOSE
Prints one JSON line with each epoch's training throughput (samples/s) and the test accuracy. The
only addition to the tutorial is a callback that reads the clock at epoch begin / end.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


class EpochClock(tf.keras.callbacks.Callback):
    def __init__(self, n):
        super().__init__()
        self.n, self.rates = n, []

    def on_epoch_begin(self, epoch, logs=None):
        self.t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.rates.append(self.n / (time.perf_counter() - self.t))


def main() -> None:
    path, epochs, verbose = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    data = np.load(path)
    x_train, y_train, x_test, y_test = data["x"], data["y"], data["x_test"], data["y_test"]
    tf.keras.utils.set_random_seed(0)

    model = tf.keras.Sequential(
        [
            tf.keras.Input(shape=(784,)),
            tf.keras.layers.Dense(64, activation="relu"),
            tf.keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    clock = EpochClock(len(x_train))
    model.fit(
        x_train,
        y_train,
        epochs=epochs,
        batch_size=32,
        callbacks=[clock],
        verbose="auto" if verbose == "auto" else int(verbose),
    )
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(json.dumps({"rates": clock.rates, "test_accuracy": accuracy}), file=sys.stderr)


if __name__ == "__main__":
    main()
