"""Optimizers, as PyTorch defines them, updating whole ensembles of parameters at once.

Each parameter is an array with a leading seed axis; an update is elementwise, so
every ensemble member trains independently in the same NumPy call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .registry import Entry, Param, Registry

Array = np.ndarray


@dataclass(frozen=True)
class Optimizer(Entry):
    """step(params, grads, state, t, **hyper) updates params in place; t counts steps from 1."""

    step: Callable[..., None] = field(kw_only=True)


OPTIMIZERS: Registry[Optimizer] = Registry("optimizer")


def _sgd(params: list[Array], grads: list[Array], state: dict[str, Any], t: int, *, lr: float,
         **_: Any) -> None:
    for p, g in zip(params, grads, strict=True):
        p -= lr * g


def _momentum(params: list[Array], grads: list[Array], state: dict[str, Any], t: int, *, lr: float,
              momentum: float = 0.9, **_: Any) -> None:
    """torch.optim.SGD(momentum=μ): buf = μ·buf + g (buf = g at the first step); p -= lr·buf."""
    bufs = state.setdefault("buf", [None] * len(params))
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        bufs[i] = g.copy() if bufs[i] is None else momentum * bufs[i] + g
        p -= lr * bufs[i]


def _adam(params: list[Array], grads: list[Array], state: dict[str, Any], t: int, *, lr: float,
          beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8, **_: Any) -> None:
    """torch.optim.Adam: bias-corrected first and second moments; p -= lr·m̂/(√v̂ + eps)."""
    m = state.setdefault("m", [np.zeros_like(p) for p in params])
    v = state.setdefault("v", [np.zeros_like(p) for p in params])
    c1 = 1.0 - beta1**t
    c2 = 1.0 - beta2**t
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        m[i] = beta1 * m[i] + (1.0 - beta1) * g
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g
        p -= lr * (m[i] / c1) / (np.sqrt(v[i] / c2) + eps)


_LR = Param("lr", float, 0.1, "learning rate", minimum=0.0, exclusive_minimum=True)
OPTIMIZERS.register(Optimizer("sgd", "plain gradient descent: W -= lr·g", step=_sgd, params=(_LR,)))
OPTIMIZERS.register(Optimizer("momentum", "SGD with heavy-ball momentum (torch.optim.SGD(momentum=...))",
                              step=_momentum, params=(_LR, Param("momentum", float, 0.9, "momentum coefficient",
                                                                 minimum=0.0, maximum=1.0))))
OPTIMIZERS.register(Optimizer("adam", "Adam with bias correction (torch.optim.Adam)", step=_adam,
                              params=(Param("lr", float, 1e-3, "learning rate", minimum=0.0, exclusive_minimum=True),
                                      # torch.optim.Adam refuses beta ≥ 1: 1 - beta**t would be 0 at every step
                                      Param("beta1", float, 0.9, "first-moment decay", minimum=0.0, maximum=1.0,
                                            exclusive_maximum=True),
                                      Param("beta2", float, 0.999, "second-moment decay", minimum=0.0, maximum=1.0,
                                            exclusive_maximum=True),
                                      Param("eps", float, 1e-8, "denominator epsilon", minimum=0.0,
                                            exclusive_minimum=True))))


HYPER_KEYS = ("lr", "momentum", "beta1", "beta2", "eps")


def hyperparameters(train: dict[str, Any]) -> dict[str, Any]:
    """The optimizer's keyword arguments from a scenario's `train:` block (absent keys: the step's defaults)."""
    return {k: train[k] for k in HYPER_KEYS if train.get(k) is not None}


def relative_change(before: list[Array], after: list[Array]) -> list[Array]:
    """‖after − before‖_F / ‖before‖_F per tensor, per seed (leading axis): the update-to-weight ratio."""
    out = []
    with np.errstate(all="ignore"):
        for a, b in zip(before, after, strict=True):
            d = (b - a).reshape(a.shape[0], -1)
            w = a.reshape(a.shape[0], -1)
            out.append(np.sqrt(np.einsum("si,si->s", d, d, dtype=np.float64))
                       / np.sqrt(np.einsum("si,si->s", w, w, dtype=np.float64)))
    return out


def first_step_ratio(train: dict[str, Any], W: list[Array], dW: list[Array]) -> list[Array]:
    """‖ΔW_l‖/‖W_l‖ (S,) per layer of the optimizer's first step from W with gradients dW, taken on copies.

    The update the optimizer actually makes: for sgd and momentum lr·‖g‖/‖W‖, for adam about
    lr·‖sign(g)‖/‖W‖ (every update is elementwise, so the biases do not change W's step).
    """
    tensors = [w.copy() for w in W]
    with np.errstate(all="ignore"):
        OPTIMIZERS.get(train["optimizer"]).step(tensors, list(dW), {}, 1, **hyperparameters(train))
    return relative_change(list(W), tensors)
