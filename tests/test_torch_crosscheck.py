"""Cross-check against PyTorch autograd (optional: skipped when torch is not installed)."""

import math

import numpy as np
import pytest

from gradscope.activations import ACTIVATIONS, torch_gain
from gradscope.engine import draw_data, init_params, loss_target, run_pass
from gradscope.scenario import load_scenario

from .conftest import small

torch = pytest.importorskip("torch")
F = torch.nn.functional

TORCH_ACT = {
    "identity": lambda z, p: z, "sigmoid": lambda z, p: torch.sigmoid(z), "tanh": lambda z, p: torch.tanh(z),
    "relu": lambda z, p: F.relu(z), "leaky_relu": lambda z, p: F.leaky_relu(z, p["negative_slope"]),
    "elu": lambda z, p: F.elu(z, p["alpha"]), "selu": lambda z, p: F.selu(z),
    "gelu": lambda z, p: F.gelu(z, approximate=p["approximate"]), "silu": lambda z, p: F.silu(z),
    "softplus": lambda z, p: F.softplus(z, p["beta"], p["threshold"]),
    "hardtanh": lambda z, p: F.hardtanh(z, p["min_val"], p["max_val"]), "softsign": lambda z, p: F.softsign(z),
}


def _torch_loss(sc, z, y):
    name, p = sc.loss.name, dict(sc.loss.params)
    red = p.get("reduction", "mean")
    head = sc.output_activation
    if name == "cross_entropy":
        w = torch.tensor(p["weight"], dtype=z.dtype) if p["weight"] is not None else None
        return F.cross_entropy(z, y, weight=w, label_smoothing=p["label_smoothing"], reduction=red)
    if name in ("bce", "multilabel_bce"):
        return F.binary_cross_entropy_with_logits(z, y, pos_weight=torch.tensor(p["pos_weight"], dtype=z.dtype),
                                                  reduction=red)
    if name == "kl_div":
        return F.kl_div(F.log_softmax(z, -1), y, reduction=red)
    if name == "focal":
        logp = F.log_softmax(z, -1).gather(1, y[:, None])[:, 0]
        per = -p["alpha"] * (1 - logp.exp()) ** p["gamma"] * logp
        return per.mean() if red == "mean" else per.sum()
    yhat = {"identity": z, "sigmoid": torch.sigmoid(z), "softmax": torch.softmax(z, -1)}[head]
    if name == "mse":
        if red == "half_sum":
            return 0.5 * ((yhat - y) ** 2).sum()
        return F.mse_loss(yhat, y, reduction=red)
    if name == "mae":
        return F.l1_loss(yhat, y, reduction=red)
    if name == "huber":
        return F.huber_loss(yhat, y, reduction=red, delta=p["delta"])
    if name == "smooth_l1":
        return F.smooth_l1_loss(yhat, y, reduction=red, beta=p["beta"])
    raise AssertionError(name)


def _compare(sc):
    data = draw_data(sc)
    params = init_params(sc)
    t = loss_target(sc, data)
    p = run_pass(sc, params, data.x, t)
    x = torch.tensor(data.x)
    y = torch.tensor(t)
    for s in range(sc.seeds):
        Ws = [torch.tensor(W[s], requires_grad=True) for W in params.W]
        bs = [torch.tensor(b[s], requires_grad=True) for b in params.b]
        a = x
        for l, (W, b) in enumerate(zip(Ws, bs, strict=True)):
            z = a @ W + b
            if l < len(Ws) - 1:
                comp = sc.activations[l]
                a = TORCH_ACT[comp.name](z, dict(comp.params))
        loss = _torch_loss(sc, z, y)
        loss.backward()
        assert float(loss.detach()) == pytest.approx(float(p.loss[s]), rel=1e-10, abs=1e-14)
        for l in range(len(Ws)):
            np.testing.assert_allclose(p.dW[l][s], Ws[l].grad.numpy(), rtol=1e-9, atol=1e-13)
            np.testing.assert_allclose(p.db[l][s], bs[l].grad.numpy(), rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("activation", [
    "identity", "sigmoid", "tanh", "relu", {"name": "leaky_relu", "negative_slope": 0.2}, "elu", "selu",
    "gelu", {"name": "gelu", "approximate": "tanh"}, "silu", {"name": "softplus", "beta": 2.0}, "hardtanh",
    "softsign"])
def test_engine_matches_torch_per_activation(activation):
    _compare(load_scenario(small(activation=activation, seeds=2, widths=[6, 5])))


LOSSES = [
    ("cross_entropy", None), ({"name": "cross_entropy", "label_smoothing": 0.1, "weight": [1.0, 2.0, 0.5]}, None),
    ({"name": "cross_entropy", "reduction": "sum"}, None),
    ("mse", "identity"), ("mse", "softmax"), ("mse", "sigmoid"), ({"name": "mse", "reduction": "half_sum"}, "softmax"),
    ("mae", "identity"), ({"name": "huber", "delta": 0.3}, "identity"), ({"name": "smooth_l1", "beta": 0.5}, "sigmoid"),
    ("multilabel_bce", None), ({"name": "bce", "pos_weight": 2.5}, None), ("kl_div", None),
    ({"name": "kl_div", "reduction": "batchmean"}, None), ({"name": "focal", "gamma": 2.0, "alpha": 0.5}, None),
]


@pytest.mark.parametrize(("loss", "head"), LOSSES)
def test_engine_matches_torch_per_loss(loss, head):
    over = {"loss": loss, "activation": "gelu", "seeds": 2}
    if head is not None:
        over["output_activation"] = head
    if isinstance(loss, dict) and loss.get("name") == "bce":
        over["output_dim"] = 1
    _compare(load_scenario(small(**over)))


@pytest.mark.parametrize("name", ["identity", "sigmoid", "tanh", "relu", "selu"])
def test_gains_match_torch(name):
    assert torch_gain(name) == pytest.approx(torch.nn.init.calculate_gain("linear" if name == "identity" else name))
    assert ACTIVATIONS.get(name)


def test_leaky_gain_matches_torch():
    assert torch_gain("leaky_relu", {"negative_slope": 0.3}) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.3))
    assert math.isfinite(torch_gain("leaky_relu"))


@pytest.mark.parametrize(("act", "at"), [("tanh", "last_hidden"), ("relu", "logits"), ("gelu", "last_hidden")])
def test_input_output_jacobian_matches_torch_autograd(act, at):
    """gradscope.jacobian's J (jvp or vjp steps) against torch.autograd.functional.jacobian, per seed and sample."""
    from gradscope.engine import forward
    from gradscope.jacobian import input_output_jacobian, singular_values, steps_for

    sc = load_scenario(small(activation=act, widths=[7, 6], input_dim=5, seeds=2))
    params = init_params(sc)
    x = draw_data(sc).x[:3]
    z, a = forward(sc, params, x)
    steps = steps_for(sc, params, z, a, 3, at)
    n_out = sc.sizes[-2] if at == "last_hidden" else sc.sizes[-1]
    J = input_output_jacobian(steps, 2, 3, 5, n_out, np.float64)       # (S, m, d_in, n_out)
    tact = TORCH_ACT[act]
    for s in range(2):
        Ws = [torch.tensor(W[s]) for W in params.W]
        bs = [torch.tensor(b[s]) for b in params.b]

        def h(v, Ws=Ws, bs=bs):
            for l, (W, b) in enumerate(zip(Ws, bs, strict=True)):
                v = v @ W + b
                if l < sc.depth:
                    v = tact(v, dict(sc.activations[l].params))
                if at == "last_hidden" and l == sc.depth - 1:
                    break
            return v

        for m in range(3):
            ref = torch.autograd.functional.jacobian(h, torch.tensor(x[m])).numpy()   # (n_out, d_in)
            np.testing.assert_allclose(J[s, m], ref.T, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(singular_values(J[s:s + 1, m:m + 1])[0, 0],
                                       torch.linalg.svdvals(torch.tensor(ref)).numpy(), rtol=1e-10, atol=1e-12)
