"""Synthetic datasets: inputs x (B, d_in) and targets in every form a loss may want.

Each generator draws `n` samples from one generator `rng` and returns a
`Data` with integer class labels, real-valued regression values, 0/1
multi-label targets and target distributions; the engine picks the form the
loss needs. `center: true` subtracts the per-feature mean of the inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .activations import softmax
from .numerics import median
from .registry import Entry, Param, Registry

Array = np.ndarray


@dataclass(frozen=True)
class Data:
    """x (B, d_in); labels (B,) ints in [0, k); values (B, k) floats; multilabel (B, k) 0/1; probs (B, k)."""

    x: Array
    labels: Array
    values: Array
    multilabel: Array
    probs: Array


@dataclass(frozen=True)
class Dataset(Entry):
    """generate(rng, n, d_in, k, **params) -> Data (before centering)."""

    generate: Callable[..., Data] = field(kw_only=True)
    clustered: bool = field(kw_only=True, default=False)  # labels are the ground truth of x
    min_input_dim: int = field(kw_only=True, default=1)
    max_output_dim: int | None = field(kw_only=True, default=None)  # a dataset with a fixed number of classes


DATASETS: Registry[Dataset] = Registry("dataset")


def _onehot(labels: Array, k: int) -> Array:
    out = np.zeros((labels.shape[0], k))
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def _labels_from_values(values: Array) -> Array:
    """argmax for k ≥ 2; for k = 1, above/below the median (balanced binary labels)."""
    if values.shape[1] == 1:
        return (values[:, 0] > median(values[:, 0])).astype(np.int64)
    return values.argmax(axis=1).astype(np.int64)


def _from_values(x: Array, values: Array, temperature: float = 1.0) -> Data:
    labels = _labels_from_values(values)
    multilabel = (values > median(values, axis=0)).astype(float)
    with np.errstate(over="ignore"):
        logits = values / temperature
        if not np.isfinite(logits).all():  # a tiny temperature: the same softmax, shifted first so it cannot overflow
            logits = (values - values.max(axis=1, keepdims=True)) / temperature
    return Data(x, labels, values, multilabel, softmax(logits))


def _from_labels(x: Array, labels: Array, k: int) -> Data:
    k_eff = max(k, 2)
    onehot = _onehot(labels, k_eff)
    if k == 1:
        values = labels[:, None].astype(float)
        return Data(x, labels, values, values.copy(), onehot)
    return Data(x, labels, onehot, onehot.copy(), onehot)


def _linear_teacher(rng: np.random.Generator, x: Array, k: int) -> Array:
    w = rng.standard_normal((x.shape[1], k)) / np.sqrt(x.shape[1])
    return x @ w


def _gaussian(rng: np.random.Generator, n: int, d: int, k: int, mean: float = 0.0, std: float = 1.0) -> Data:
    x = rng.normal(mean, std, (n, d))
    return _from_values(x, _linear_teacher(rng, x - mean, k))


def _uniform(rng: np.random.Generator, n: int, d: int, k: int, low: float = 0.0, high: float = 1.0) -> Data:
    x = rng.uniform(low, high, (n, d))
    return _from_values(x, _linear_teacher(rng, x - 0.5 * (low + high), k))


def _blobs(rng: np.random.Generator, n: int, d: int, k: int, spread: float = 1.0,
           separation: float = 3.0) -> Data:
    classes = max(k, 2)
    centers = rng.standard_normal((classes, d))
    centers *= separation / np.linalg.norm(centers, axis=1, keepdims=True)
    labels = rng.integers(0, classes, n)
    x = centers[labels] + spread * rng.standard_normal((n, d))
    return _from_labels(x, labels, k)


def _xor(rng: np.random.Generator, n: int, d: int, k: int, noise: float = 0.1) -> Data:
    corners = rng.choice([-1.0, 1.0], size=(n, 2))
    labels = (corners[:, 0] != corners[:, 1]).astype(np.int64)
    x = noise * rng.standard_normal((n, d))
    x[:, :2] += corners
    return _from_labels(x, labels, k)


def _spirals(rng: np.random.Generator, n: int, d: int, k: int, noise: float = 0.1, turns: float = 1.0) -> Data:
    arms = max(k, 2)
    labels = rng.integers(0, arms, n)
    r = rng.uniform(0.05, 1.0, n)
    theta = 2 * np.pi * (turns * r + labels / arms)
    x = noise * rng.standard_normal((n, d))
    x[:, 0] += r * np.cos(theta)
    x[:, 1] += r * np.sin(theta)
    return _from_labels(x, labels, k)


def _teacher(rng: np.random.Generator, n: int, d: int, k: int, hidden: int = 32, noise: float = 0.0,
             temperature: float = 1.0) -> Data:
    x = rng.standard_normal((n, d))
    w1 = rng.standard_normal((d, hidden)) * np.sqrt(1.0 / d)
    w2 = rng.standard_normal((hidden, k)) * np.sqrt(2.0 / hidden)
    values = np.tanh(x @ w1) @ w2 + noise * rng.standard_normal((n, k))
    return _from_values(x, values, temperature)


_reg = DATASETS.register
_reg(Dataset("gaussian", "x ~ N(mean, std²); targets from a random linear teacher", generate=_gaussian,
             params=(Param("mean", float, 0.0, "mean of every input feature"),
                     Param("std", float, 1.0, "std of every input feature", minimum=0.0))))
_reg(Dataset("uniform", "x ~ U[low, high] (like pixel intensities); targets from a linear teacher",
             generate=_uniform, params=(Param("low", float, 0.0, "lower bound"),
                                        Param("high", float, 1.0, "upper bound"))))
_reg(Dataset("blobs", "one Gaussian cluster per class, centers at distance `separation` from 0",
             generate=_blobs, clustered=True,
             params=(Param("spread", float, 1.0, "cluster std (per feature, scaled)", minimum=0.0),
                     Param("separation", float, 3.0, "distance of the centers from the origin", minimum=0.0))))
_reg(Dataset("xor", "the XOR of two coordinates' signs (2 classes; other features are noise)",
             generate=_xor, clustered=True, min_input_dim=2, max_output_dim=2,
             params=(Param("noise", float, 0.1, "std of the noise", minimum=0.0),)))
_reg(Dataset("spirals", "interleaved spiral arms in the first two features, one arm per class",
             generate=_spirals, clustered=True, min_input_dim=2,
             params=(Param("noise", float, 0.1, "std of the noise", minimum=0.0),
                     Param("turns", float, 1.0, "turns of each arm", minimum=0.0))))
_reg(Dataset("teacher", "x ~ N(0, 1); targets from a random one-hidden-layer tanh teacher network",
             generate=_teacher,
             params=(Param("hidden", int, 32, "teacher's hidden width", minimum=1, maximum=65_536),
                     Param("noise", float, 0.0, "std of the noise added to the teacher's outputs", minimum=0.0),
                     Param("temperature", float, 1.0, "softmax temperature of distribution targets",
                           minimum=0.0, exclusive_minimum=True))))


def make_data(kind: str, params: dict, rng: np.random.Generator, n: int, d_in: int, k: int,
              center: bool) -> Data:
    """Draw n samples of dataset `kind`; `center` subtracts the per-feature mean of x."""
    data = DATASETS.get(kind).generate(rng, n, d_in, k, **params)
    if center:
        data = Data(data.x - data.x.mean(axis=0, keepdims=True), data.labels, data.values, data.multilabel,
                    data.probs)
    return data
