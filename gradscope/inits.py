"""Weight and bias initialization schemes.

`sample(rng, fan_in, fan_out, ctx, **params)` returns one (fan_in, fan_out)
matrix from one seed's generator; `variance(fan_in, fan_out, ctx, **params)`
gives the variance of one entry, which the theory module turns into
σ_w² = fan_in·Var(W). `ctx` carries the layer's activation (name and
params) for `gain: auto`. Gains follow torch.nn.init.calculate_gain.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .activations import ACTIVATIONS, torch_gain
from .registry import Entry, Param, Registry

if TYPE_CHECKING:
    from .scenario import Scenario

Array = np.ndarray


@dataclass(frozen=True)
class LayerContext:
    """What an init scheme may need to know about the layer it fills."""

    activation: str = "identity"
    activation_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Init(Entry):
    """sample(rng, fan_in, fan_out, ctx, **params) -> (fan_in, fan_out); variance(...) -> Var(W_ij)."""

    sample: Callable[..., Array] = field(kw_only=True)
    variance: Callable[..., float | None] = field(kw_only=True)
    gaussian: bool = field(kw_only=True, default=False)  # entries i.i.d. Gaussian (mean-field applies)


INITS: Registry[Init] = Registry("init scheme")


def _sq(x: float) -> float:
    """x² of a Python float that overflows to inf (float ** 2 raises OverflowError instead)."""
    return float(x) * float(x)


def resolve_gain(gain: Any, ctx: LayerContext) -> float:
    """A number, 'auto' (the layer's activation) or an activation name -> calculate_gain."""
    if isinstance(gain, int | float) and not isinstance(gain, bool):
        return float(gain)
    if gain == "auto":
        return _auto_gain(ctx)
    return torch_gain(str(gain))


def _auto_gain(ctx: LayerContext) -> float:
    """calculate_gain of the layer's activation. The output layer produces the logits the head (softmax,
    sigmoid, identity) and the loss act on: a linear layer, calculate_gain('linear') = 1, as for nn.Linear."""
    if ctx.activation not in ACTIVATIONS:
        return 1.0
    return torch_gain(ctx.activation, ctx.activation_params)


def _fan(fan_in: int, fan_out: int, mode: str) -> int:
    return fan_in if mode == "fan_in" else fan_out


def _he_std(fan_in: int, fan_out: int, ctx: LayerContext, mode: str = "fan_in",
            negative_slope: float = 0.0, nonlinearity: str = "leaky_relu") -> float:
    if nonlinearity == "auto":
        gain = _auto_gain(ctx)
    elif nonlinearity == "leaky_relu":
        gain = math.sqrt(2.0 / (1.0 + _sq(negative_slope)))
    else:
        gain = torch_gain(nonlinearity)
    return gain / math.sqrt(_fan(fan_in, fan_out, mode))


def _uniform(rng: np.random.Generator, bound: float, fan_in: int, fan_out: int) -> Array:
    return rng.uniform(-bound, bound, size=(fan_in, fan_out))


def _orthogonal(rng: np.random.Generator, fan_in: int, fan_out: int, ctx: LayerContext,
                gain: Any = 1.0) -> Array:
    """torch.nn.init.orthogonal_ on the (fan_out, fan_in) weight, returned transposed."""
    rows, cols = fan_out, fan_in
    flat = rng.standard_normal((rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return resolve_gain(gain, ctx) * q.T


_GAIN = Param("gain", object, 1.0, "a number, 'auto' (calculate_gain of the layer's activation) or an "
              "activation name")
_HE = (Param("mode", str, "fan_in", "fan_in (preserve forward variance) or fan_out (backward)",
             choices=("fan_in", "fan_out")),
       Param("negative_slope", float, 0.0, "slope of the leaky ReLU the gain is computed for", minimum=0.0),
       Param("nonlinearity", str, "leaky_relu", "leaky_relu (with negative_slope), auto, or an activation name"))

_reg = INITS.register
_reg(Init("zeros", "all zeros (no symmetry breaking)", sample=lambda rng, fi, fo, ctx: np.zeros((fi, fo)),
          variance=lambda fi, fo, ctx: 0.0))
_reg(Init("constant", "every entry equal to value", params=(Param("value", float, 0.0, "the constant"),),
          sample=lambda rng, fi, fo, ctx, value=0.0: np.full((fi, fo), value),
          variance=lambda fi, fo, ctx, value=0.0: 0.0))
_reg(Init("normal", "N(mean, std²)", gaussian=True,
          params=(Param("std", float, 1.0, "standard deviation", minimum=0.0),
                  Param("mean", float, 0.0, "mean")),
          sample=lambda rng, fi, fo, ctx, std=1.0, mean=0.0: rng.normal(mean, std, (fi, fo)),
          variance=lambda fi, fo, ctx, std=1.0, mean=0.0: _sq(std)))
_reg(Init("uniform", "U[-a, a]", params=(Param("a", float, 1.0, "half-width", minimum=0.0),),
          sample=lambda rng, fi, fo, ctx, a=1.0: _uniform(rng, a, fi, fo),
          variance=lambda fi, fo, ctx, a=1.0: a * a / 3.0))
_reg(Init("standard", "Glorot & Bengio's 'standard' U[-1/√fan_in, 1/√fan_in] (Var = 1/(3·fan_in))",
          sample=lambda rng, fi, fo, ctx: _uniform(rng, 1.0 / math.sqrt(fi), fi, fo),
          variance=lambda fi, fo, ctx: 1.0 / (3.0 * fi)))
_reg(Init("torch_default", "what torch.nn.Linear does: kaiming_uniform(a=√5) = U[-1/√fan_in, 1/√fan_in]",
          sample=lambda rng, fi, fo, ctx: _uniform(rng, 1.0 / math.sqrt(fi), fi, fo),
          variance=lambda fi, fo, ctx: 1.0 / (3.0 * fi)))
_reg(Init("xavier_uniform", "U[-b, b], b = gain·√(6/(fan_in+fan_out)); Var = gain²·2/(fan_in+fan_out)",
          params=(_GAIN,),
          sample=lambda rng, fi, fo, ctx, gain=1.0: _uniform(
              rng, resolve_gain(gain, ctx) * math.sqrt(6.0 / (fi + fo)), fi, fo),
          variance=lambda fi, fo, ctx, gain=1.0: _sq(resolve_gain(gain, ctx)) * 2.0 / (fi + fo)), "glorot_uniform")
_reg(Init("xavier_normal", "N(0, gain²·2/(fan_in+fan_out))", params=(_GAIN,), gaussian=True,
          sample=lambda rng, fi, fo, ctx, gain=1.0: rng.normal(
              0.0, resolve_gain(gain, ctx) * math.sqrt(2.0 / (fi + fo)), (fi, fo)),
          variance=lambda fi, fo, ctx, gain=1.0: _sq(resolve_gain(gain, ctx)) * 2.0 / (fi + fo)), "glorot_normal")
_reg(Init("he_uniform", "U[-√3·std, √3·std], std = gain/√fan (kaiming_uniform_)", params=_HE,
          sample=lambda rng, fi, fo, ctx, **p: _uniform(rng, math.sqrt(3.0) * _he_std(fi, fo, ctx, **p), fi, fo),
          variance=lambda fi, fo, ctx, **p: _sq(_he_std(fi, fo, ctx, **p))), "kaiming_uniform")
_reg(Init("he_normal", "N(0, gain²/fan), gain √2 for ReLU (kaiming_normal_)", params=_HE, gaussian=True,
          sample=lambda rng, fi, fo, ctx, **p: rng.normal(0.0, _he_std(fi, fo, ctx, **p), (fi, fo)),
          variance=lambda fi, fo, ctx, **p: _sq(_he_std(fi, fo, ctx, **p))), "kaiming_normal")
_reg(Init("lecun_uniform", "U[-√(3/fan_in), √(3/fan_in)]; Var = 1/fan_in",
          sample=lambda rng, fi, fo, ctx: _uniform(rng, math.sqrt(3.0 / fi), fi, fo),
          variance=lambda fi, fo, ctx: 1.0 / fi))
_reg(Init("lecun_normal", "N(0, 1/fan_in)", gaussian=True,
          sample=lambda rng, fi, fo, ctx: rng.normal(0.0, math.sqrt(1.0 / fi), (fi, fo)),
          variance=lambda fi, fo, ctx: 1.0 / fi))
_reg(Init("orthogonal", "gain × a random (semi-)orthogonal matrix (torch.nn.init.orthogonal_)",
          params=(_GAIN,), sample=_orthogonal,
          variance=lambda fi, fo, ctx, gain=1.0: _sq(resolve_gain(gain, ctx)) / max(fi, fo)))
# The (σ_w², σ_b²) of mean-field theory given directly: the axes of a phase diagram (`gradscope sweep`).
# One entry for both roles: as `init` it takes sigma_w2 (W ~ N(0, σ_w²/fan_in)), as `bias_init` sigma_b2
# (b ~ N(0, σ_b²)); the scenario loader refuses the other role's parameter (MEAN_FIELD_ROLES).
_reg(Init("mean_field", "N(0, σ_w²/fan_in) weights (sigma_w2); as bias_init N(0, σ_b²) biases (sigma_b2)",
          gaussian=True,
          params=(Param("sigma_w2", float, 1.0, "σ_w² = fan_in·Var(W_ij) (as init)", minimum=0.0),
                  Param("sigma_b2", float, 0.0, "σ_b² = Var(b_j) (as bias_init)", minimum=0.0)),
          sample=lambda rng, fi, fo, ctx, sigma_w2=1.0, sigma_b2=0.0: rng.normal(
              0.0, math.sqrt(sigma_w2 / fi), (fi, fo)),
          variance=lambda fi, fo, ctx, sigma_w2=1.0, sigma_b2=0.0: sigma_w2 / fi))
MEAN_FIELD_ROLES = {"init": "sigma_w2", "bias_init": "sigma_b2"}  # the parameter mean_field takes in each role

# Biases: a subset of the same schemes, sampled as a (fan_out,) vector.


def sample_bias(scheme: str, params: dict[str, Any], rng: np.random.Generator, fan_in: int, fan_out: int,
                ctx: LayerContext) -> Array:
    """One (fan_out,) bias vector. torch_default/standard use U[-1/√fan_in, 1/√fan_in] as nn.Linear does."""
    if scheme in ("torch_default", "standard"):
        return rng.uniform(-1.0 / math.sqrt(fan_in), 1.0 / math.sqrt(fan_in), size=fan_out)
    if scheme == "zeros":
        return np.zeros(fan_out)
    if scheme == "constant":
        return np.full(fan_out, params.get("value", 0.0))
    if scheme == "normal":
        return rng.normal(params.get("mean", 0.0), params.get("std", 1.0), fan_out)
    if scheme == "uniform":
        a = params.get("a", 1.0)
        return rng.uniform(-a, a, fan_out)
    if scheme == "mean_field":
        return rng.normal(0.0, math.sqrt(params.get("sigma_b2", 0.0)), fan_out)
    raise ValueError(f"bias_init '{scheme}' is not supported")


BIAS_SCHEMES = ("zeros", "constant", "normal", "uniform", "torch_default", "standard", "mean_field")


def bias_variance(scheme: str, params: dict[str, Any], fan_in: int) -> float:
    """Var(b_j) of a bias scheme, for the mean-field σ_b²."""
    if scheme in ("torch_default", "standard"):
        return 1.0 / (3.0 * fan_in)
    if scheme == "normal":
        return _sq(float(params.get("std", 1.0)))
    if scheme == "uniform":
        return _sq(float(params.get("a", 1.0))) / 3.0
    if scheme == "mean_field":
        return float(params.get("sigma_b2", 0.0))
    return 0.0


def layer_sigmas(scenario: Scenario) -> tuple[list[float], list[float]]:
    """Mean-field σ_w² = fan_in·Var(W_l) and σ_b² = Var(b_l) of every linear layer l = 1..L of a scenario
    (main-path dense layers; a layer's own `init` overrides network.init)."""
    from .layers import Dense, walk

    sizes, L = scenario.sizes, scenario.n_layers
    dense = [d for d in walk(scenario.items) if isinstance(d, Dense) and not d.projection]
    sw2 = []
    for d in dense:
        comp = d.init if d.init is not None else scenario.init
        init = INITS.get(comp.name)
        if init.name == "mean_field":  # σ_w² as given, not fan_in·(σ_w²/fan_in) rounded
            sw2.append(float(comp.params.get("sigma_w2", 1.0)))
        else:
            ctx = LayerContext(d.activation, dict(d.act_params))
            sw2.append(d.fan_in * float(init.variance(d.fan_in, d.fan_out, ctx, **comp.params)))
    sb2 = [bias_variance(scenario.bias_init.name, dict(scenario.bias_init.params), sizes[l - 1])
           if scenario.bias else 0.0 for l in range(1, L + 1)]
    return sw2, sb2
