"""The built-in sets: scikit-learn's small tables and digits, and TensorFlow Playground's 2-D generators."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from kfcore.data.dataset import DataError, Dataset, finish
from kfcore.spec import BUILTIN_SETS, SYNTHETIC_SETS, DataSpec

if TYPE_CHECKING:
    pass


BUILTIN_INFO: dict[str, str] = {
    "digits": "1,797 handwritten digits as 8×8 grey images, 10 classes (scikit-learn's small MNIST)",
    "iris": "150 iris flowers: 4 petal and sepal measurements, 3 species",
    "wine": "178 Italian wines: 13 chemical measurements, 3 grape cultivars",
    "breast_cancer": "569 breast tumour biopsies: 30 cell-nucleus measurements, malignant or benign",
    "diabetes": "442 diabetes patients: 10 baseline measurements → disease progression a year later (regression)",
    "circle": "Playground: a disc of one class inside a ring of the other (2-D, binary)",
    "xor": "Playground: four quadrants, the sign of x1·x2 gives the class (2-D, binary)",
    "gauss": "Playground: two Gaussian blobs that overlap as noise grows (2-D, binary)",
    "spiral": "Playground: two interleaved spirals, the hardest toy set (2-D, binary)",
    "moons": "two interleaving half-moons (scikit-learn make_moons, 2-D, binary)",
}


DIGIT_NAMES = [str(i) for i in range(10)]


# -- built-in sets --------------------------------------------------------------------------------


def load_builtin(spec: DataSpec) -> Dataset:
    name = spec.name or ""
    if name not in BUILTIN_SETS:
        raise DataError(f"unknown built-in set {name!r}; choose one of {', '.join(BUILTIN_SETS)}")
    if name in SYNTHETIC_SETS:
        return _load_synthetic(spec, name)

    from sklearn import datasets as skd

    if name == "digits":
        bunch = skd.load_digits()
        x = (bunch.images / 16.0).astype(np.float32)[..., None]  # pixel values are 0..16
        return finish(spec, name, BUILTIN_INFO[name], x, bunch.target, "the digit labels", names=DIGIT_NAMES)
    loaders = {
        "iris": skd.load_iris,
        "wine": skd.load_wine,
        "breast_cancer": skd.load_breast_cancer,
        "diabetes": lambda: skd.load_diabetes(scaled=False),
    }  # diabetes in raw units; the model standardises
    bunch = loaders[name]()
    names = [str(t) for t in bunch.target_names] if "target_names" in bunch else None  # diabetes is a regression
    return finish(
        spec,
        name,
        BUILTIN_INFO[name],
        bunch.data.astype(np.float32),
        bunch.target,
        "the target",
        names=names,
        feature_names=list(bunch.feature_names),
    )


def _load_synthetic(spec: DataSpec, name: str) -> Dataset:
    n, noise = int(spec.n), float(spec.noise)
    if n < 4 or not 0.0 <= noise <= 0.5:
        raise DataError(f"{name} needs at least 4 points and a noise from 0 to 0.5; got n={n}, noise={noise}")
    rng = np.random.default_rng(0)  # fixed: the same spec always shows the same points
    if name == "moons":
        from sklearn.datasets import make_moons

        pts, labels = make_moons(n_samples=n, noise=noise, random_state=0)
        # make_moons spans about [-1, 2] x [-0.5, 1]; centre and stretch it to Playground's [-6, 6] range.
        pts = (pts - [0.5, 0.25]) * 4.0
    else:
        generator = PLAYGROUND_GENERATORS[name]
        pts, labels = generator(n, noise, rng)
        order = rng.permutation(n)  # the generators emit one class after the other; Playground shuffles too
        pts, labels = pts[order], labels[order]
    description = f"{BUILTIN_INFO[name]}; {n} points, noise {noise:.0%}"
    return finish(
        spec,
        name,
        description,
        pts.astype(np.float32),
        labels.astype(np.int64),
        "the class",
        feature_names=["x1", "x2"],
    )


# Playground's generators (tensorflow/playground src/dataset.ts), vectorised. Its labels are +1 / -1;
# here they are 1 / 0. Where Playground adds noise to the label's decision only (circle, xor), so do we.


def circle(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    radius, n_in = 5.0, (n + 1) // 2
    r = np.concatenate([rng.uniform(0, radius * 0.5, n_in), rng.uniform(radius * 0.7, radius, n - n_in)])
    angle = rng.uniform(0, 2 * np.pi, n)
    pts = np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1)
    jitter = rng.uniform(-radius, radius, (n, 2)) * noise
    labels = np.linalg.norm(pts + jitter, axis=1) < radius * 0.5
    return pts, labels.astype(np.int64)


def xor(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    pts = rng.uniform(-5, 5, (n, 2))
    pts += np.where(pts > 0, 0.3, -0.3)  # a gap along the axes
    jitter = rng.uniform(-5, 5, (n, 2)) * noise
    labels = (pts[:, 0] + jitter[:, 0]) * (pts[:, 1] + jitter[:, 1]) >= 0
    return pts, labels.astype(np.int64)


def gauss(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    variance = 0.5 + noise / 0.5 * 3.5  # Playground maps noise 0..0.5 to variance 0.5..4
    n_pos = (n + 1) // 2
    pos = rng.normal(2.0, math.sqrt(variance), (n_pos, 2))
    neg = rng.normal(-2.0, math.sqrt(variance), (n - n_pos, 2))
    return np.concatenate([pos, neg]), np.repeat([1, 0], [n_pos, n - n_pos])


def spiral(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    def arm(m: int, delta: float) -> np.ndarray:
        i = np.arange(m) / m
        r, t = i * 5.0, 1.75 * i * 2 * np.pi + delta
        return np.stack([r * np.sin(t), r * np.cos(t)], axis=1) + rng.uniform(-1, 1, (m, 2)) * noise

    n_pos = (n + 1) // 2
    return np.concatenate([arm(n_pos, 0.0), arm(n - n_pos, np.pi)]), np.repeat([1, 0], [n_pos, n - n_pos])


# The generators by set name; the exported script copies the run's one verbatim (kfcore.export.script).
PLAYGROUND_GENERATORS = {"circle": circle, "xor": xor, "gauss": gauss, "spiral": spiral}
