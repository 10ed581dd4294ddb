"""Loss functions: value per seed and gradient with respect to the logits.

Every loss takes the output-layer logits `z` (S, B, k) and returns the loss
per ensemble member (S,) and ∂L/∂z (S, B, k). Reductions follow PyTorch's
defaults (`mean`); `sum` (and `half_sum` for mse, the ½·Σ of textbook
derivations) are options. Cross-entropy, focal and kl_div fuse the softmax,
bce and multilabel_bce the sigmoid (log-sum-exp / logaddexp, never
log(softmax(z))). mse, mae, huber and smooth_l1 apply to ŷ = head(z), the
network output after `output_activation`, so MSE on softmax outputs is one
line of YAML.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .activations import OUTPUT_ACTIVATIONS, OutputActivation, log_softmax
from .registry import Entry, Param, Registry

Array = np.ndarray

# What kind of target a loss wants; the engine builds it from the dataset.
CLASS = "class"              # integer labels (B,)
MULTILABEL = "multilabel"    # 0/1 matrix (B, k)
DISTRIBUTION = "distribution"  # rows summing to 1 (B, k)
REGRESSION = "regression"    # real values (B, k), or one-hot/0-1 for sigmoid/softmax heads


@dataclass(frozen=True)
class Loss(Entry):
    """compute(z, target, head, **params) -> (loss (S,), ∂L/∂z (S, B, k))."""

    compute: Callable[..., tuple[Array, Array]] = field(kw_only=True)
    target: str = field(kw_only=True)
    head: str | None = field(kw_only=True, default=None)  # fused head (softmax/sigmoid) or None
    classification: bool = field(kw_only=True, default=True)


LOSSES: Registry[Loss] = Registry("loss")

_REDUCTION = Param("reduction", str, "mean", "mean (PyTorch default) or sum", choices=("mean", "sum"))


def _denominator(reduction: str, n: float) -> float:
    return n if reduction == "mean" else 1.0


def _sigmoid_stable(z: Array) -> Array:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softplus_neg(z: Array) -> Array:
    """log(1 + e^-z), stable for any z."""
    return np.logaddexp(0.0, -z)


# ---------------------------------------------------------------- softmax family


def _onehot(labels: Array, k: int, dtype: Any) -> Array:
    out = np.zeros((labels.shape[0], k), dtype=dtype)
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def _cross_entropy(z: Array, labels: Array, head: OutputActivation, *, reduction: str = "mean",
                   label_smoothing: float = 0.0, weight: list[float] | None = None) -> tuple[Array, Array]:
    """torch.nn.functional.cross_entropy on logits, with class weights and label smoothing."""
    k = z.shape[-1]
    logp = log_softmax(z)
    if label_smoothing == 0.0 and weight is None:  # the one-hot target itself: t = w·t = onehot, Σ_c t = 1
        onehot = _onehot(labels, k, z.dtype)
        denom = float(labels.shape[0]) if reduction == "mean" else 1.0
        loss = -(onehot * logp).sum(axis=(-2, -1)) / denom
        grad = np.exp(logp, out=logp)
        grad -= onehot
        grad /= denom
        return loss, grad
    t = (1.0 - label_smoothing) * _onehot(labels, k, z.dtype) + label_smoothing / k  # (B, k)
    w = np.ones(k, dtype=z.dtype) if weight is None else np.asarray(weight, dtype=z.dtype)
    wt = t * w  # (B, k): w_c·t_ic
    denom = float(w[labels].sum()) if reduction == "mean" else 1.0
    loss = -(wt * logp).sum(axis=(-2, -1)) / denom
    p = np.exp(logp)
    grad = (p * wt.sum(axis=-1, keepdims=True) - wt) / denom
    return loss, grad


def _focal(z: Array, labels: Array, head: OutputActivation, *, gamma: float = 2.0, alpha: float = 1.0,
           reduction: str = "mean") -> tuple[Array, Array]:
    """Softmax focal loss: -alpha·(1-p_t)^gamma·log p_t, mean over the batch."""
    B, k = z.shape[-2], z.shape[-1]
    logp = log_softmax(z)
    p = np.exp(logp)
    logpt = np.take_along_axis(logp, np.broadcast_to(labels[:, None], z.shape[:-1] + (1,)), axis=-1)
    pt = np.exp(logpt)
    one_minus = -np.expm1(logpt)  # 1 - p_t without cancellation
    denom = _denominator(reduction, B)
    loss = (-alpha * one_minus**gamma * logpt)[..., 0].sum(axis=-1) / denom
    # dL/dp_t · p_t, then dp_t/dz_j = p_t (δ_jy - p_j)
    with np.errstate(divide="ignore", invalid="ignore"):
        pow_m1 = np.where(one_minus > 0, one_minus ** (gamma - 1.0), 0.0 if gamma > 1 else 1.0)
    dl_dpt_pt = alpha * (gamma * pow_m1 * pt * logpt - one_minus**gamma)  # (S, B, 1)
    onehot = _onehot(labels, k, z.dtype)
    grad = dl_dpt_pt * (onehot - p) / denom
    return loss, grad


def _kl_div(z: Array, target: Array, head: OutputActivation, *, reduction: str = "mean") -> tuple[Array, Array]:
    """torch.nn.functional.kl_div(log_softmax(z), target): Σ t·(log t - log p), 0·log 0 = 0."""
    B, k = z.shape[-2], z.shape[-1]
    logp = log_softmax(z)
    with np.errstate(divide="ignore", invalid="ignore"):
        tlogt = np.where(target > 0, target * np.log(np.where(target > 0, target, 1.0)), 0.0)
    denom = {"mean": B * k, "batchmean": B, "sum": 1}[reduction]
    loss = (tlogt - target * logp).sum(axis=(-2, -1)) / denom
    grad = (np.exp(logp) * target.sum(axis=-1, keepdims=True) - target) / denom
    return loss, grad


# ---------------------------------------------------------------- sigmoid family


def _bce_logits(z: Array, target: Array, head: OutputActivation, *, reduction: str = "mean",
                pos_weight: float = 1.0) -> tuple[Array, Array]:
    """torch.nn.functional.binary_cross_entropy_with_logits, mean over all elements."""
    c = 1.0 + (pos_weight - 1.0) * target
    elem = (1.0 - target) * z + c * _softplus_neg(z)
    denom = _denominator(reduction, target.size)
    loss = elem.sum(axis=(-2, -1)) / denom
    grad = ((1.0 - target) - c * _sigmoid_stable(-z)) / denom
    return loss, grad


# ---------------------------------------------------------------- on the network output


def _on_output(elementwise: Callable[..., tuple[Array, Array]]) -> Callable[..., tuple[Array, Array]]:
    """Lift an elementwise loss l(ŷ - y) on ŷ = head(z) to (loss per seed, ∂L/∂z)."""

    def compute(z: Array, target: Array, head: OutputActivation, *, reduction: str = "mean",
                **params: Any) -> tuple[Array, Array]:
        yhat = head.fn(z)
        value, dvalue = elementwise(yhat - target, **params)
        n = target.size
        denom = {"mean": n, "sum": 1.0, "half_sum": 2.0}[reduction]
        loss = value.sum(axis=(-2, -1)) / denom
        return loss, head.vjp(z, yhat, dvalue / denom)

    return compute


def _squared(d: Array) -> tuple[Array, Array]:
    return d * d, 2.0 * d


def _absolute(d: Array) -> tuple[Array, Array]:
    return np.abs(d), np.sign(d)


def _huber(d: Array, delta: float = 1.0) -> tuple[Array, Array]:
    ad = np.abs(d)
    small = ad < delta
    return np.where(small, 0.5 * d * d, delta * (ad - 0.5 * delta)), np.where(small, d, delta * np.sign(d))


def _smooth_l1(d: Array, beta: float = 1.0) -> tuple[Array, Array]:
    ad = np.abs(d)
    small = ad < beta
    return np.where(small, 0.5 * d * d / beta, ad - 0.5 * beta), np.where(small, d / beta, np.sign(d))


_reg = LOSSES.register
_reg(Loss("mse", "mean squared error on the output after output_activation (PyTorch MSELoss)",
          compute=_on_output(_squared), target=REGRESSION, classification=False,
          params=(Param("reduction", str, "mean", "mean (PyTorch), sum, or half_sum (½·Σ, as in derivations)",
                        choices=("mean", "sum", "half_sum")),)))
_reg(Loss("mae", "mean absolute error on the output (PyTorch L1Loss)", compute=_on_output(_absolute),
          target=REGRESSION, classification=False, params=(_REDUCTION,)), "l1")
_reg(Loss("huber", "Huber loss on the output: quadratic below delta, linear above (PyTorch HuberLoss)",
          compute=_on_output(_huber), target=REGRESSION, classification=False,
          params=(_REDUCTION, Param("delta", float, 1.0, "switch point", minimum=0.0, exclusive_minimum=True))))
_reg(Loss("smooth_l1", "smooth L1 on the output (PyTorch SmoothL1Loss)", compute=_on_output(_smooth_l1),
          target=REGRESSION, classification=False,
          params=(_REDUCTION, Param("beta", float, 1.0, "switch point", minimum=0.0, exclusive_minimum=True))))
_reg(Loss("cross_entropy", "softmax cross-entropy on logits (PyTorch CrossEntropyLoss); ∂L/∂z = ŷ - y",
          compute=_cross_entropy, target=CLASS, head="softmax",
          params=(_REDUCTION,
                  Param("label_smoothing", float, 0.0, "mix the one-hot target with uniform", minimum=0.0,
                        maximum=1.0),
                  Param("weight", list, None, "per-class weights (list of output_dim numbers)",
                        nullable=True))), "ce")
_reg(Loss("bce", "binary cross-entropy on logits (PyTorch BCEWithLogitsLoss); ∂L/∂z = ŷ - y",
          compute=_bce_logits, target=MULTILABEL, head="sigmoid",
          params=(_REDUCTION, Param("pos_weight", float, 1.0, "weight of positive targets", minimum=0.0))))
_reg(Loss("multilabel_bce", "independent sigmoid + BCE per output, multi-hot targets",
          compute=_bce_logits, target=MULTILABEL, head="sigmoid",
          params=(_REDUCTION, Param("pos_weight", float, 1.0, "weight of positive targets", minimum=0.0))))
_reg(Loss("focal", "softmax focal loss: mean of -alpha·(1-p_t)^gamma·log p_t (Lin et al. 2017)",
          compute=_focal, target=CLASS, head="softmax",
          params=(Param("gamma", float, 2.0, "focusing exponent", minimum=0.0),
                  Param("alpha", float, 1.0, "scale", minimum=0.0, exclusive_minimum=True), _REDUCTION)))
_reg(Loss("kl_div", "KL(target ‖ softmax(z)) (PyTorch kl_div on log_softmax; default reduction mean)",
          compute=_kl_div, target=DISTRIBUTION, head="softmax",
          params=(Param("reduction", str, "mean", "mean over elements (PyTorch default), batchmean or sum",
                        choices=("mean", "batchmean", "sum")),)))


def default_head(loss_name: str) -> str:
    """The output activation a loss expects when the scenario names none."""
    loss = LOSSES.get(loss_name)
    return loss.head or "identity"


def evaluate(loss_name: str, params: dict[str, Any], head_name: str, z: Array, target: Array
             ) -> tuple[Array, Array]:
    """Loss per seed (S,) and ∂L/∂z (S, B, k) for logits z (S, B, k)."""
    loss = LOSSES.get(loss_name)
    head = OUTPUT_ACTIVATIONS.get(head_name)
    return loss.compute(z, target, head, **params)
