"""Every layer kind against PyTorch autograd in float64 (optional: skipped when torch is not installed).

The network is rebuilt from torch.nn modules — nn.LayerNorm, nn.BatchNorm1d in training mode, nn.RMSNorm,
dropout with gradscope's masks, skip connections with and without projection — with gradscope's weights, per
seed; loss and every parameter gradient must agree to 1e-10."""

# ruff: noqa: B023  (the per-seed closures run inside their own iteration of the seed loop)

from __future__ import annotations

import numpy as np
import pytest

from gradscope.engine import draw_data, init_params, loss_target, run_pass
from gradscope.layers import NORMS, Dense, Dropout, Norm

from .test_layers import NETWORKS, _scenario
from .test_torch_crosscheck import TORCH_ACT, _torch_loss

torch = pytest.importorskip("torch")
nn = torch.nn


def _norm_module(spec: Norm, gamma: np.ndarray, beta: np.ndarray | None) -> object:
    n = spec.n
    if spec.kind == "layernorm":
        m = nn.LayerNorm(n, eps=spec.eps, dtype=torch.float64)
    elif spec.kind == "batchnorm":
        m = nn.BatchNorm1d(n, eps=spec.eps, dtype=torch.float64)
        m.train()
    else:
        m = nn.RMSNorm(n, eps=spec.eps, dtype=torch.float64)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(gamma))
        if beta is not None:
            m.bias.copy_(torch.from_numpy(beta))
    return m


@pytest.mark.parametrize("name", list(NETWORKS))
def test_layer_kinds_match_torch_autograd(name: str) -> None:
    assert {k.name for k in NORMS} == {"layernorm", "batchnorm", "rmsnorm"}, "a new norm kind needs a module here"
    sc = _scenario(NETWORKS[name])
    params = init_params(sc)
    rng = np.random.default_rng(3)
    for k, v in params.extra.items():
        params.extra[k] = v + rng.normal(0, 0.3, v.shape)
    data = draw_data(sc)
    y = loss_target(sc, data)
    p = run_pass(sc, params, data.x, y)
    ours = dict(zip(_names(sc, params), p.grads(params), strict=True))
    assert len(ours) == len(p.grads(params))
    for s in range(sc.seeds):
        leaves: dict[str, object] = {}

        def leaf(key: str, arr: np.ndarray) -> object:
            t = torch.tensor(arr[s], dtype=torch.float64, requires_grad=True)
            leaves[key] = t
            return t

        modules: list[tuple[str, object]] = []

        def walk(items: tuple, h: object) -> object:
            for it in items:
                if isinstance(it, Dense):
                    h = dense(it, h)
                elif isinstance(it, Norm):
                    m = _norm_module(it, params.extra[f"gamma{it.row}"][s],
                                     params.extra.get(f"beta{it.row}", [None] * sc.seeds)[s])
                    modules.append((str(it.row), m))
                    h = m(h)
                elif isinstance(it, Dropout):
                    if it.index in p.trace.masks:
                        h = h * torch.from_numpy(p.trace.masks[it.index][s])
                else:
                    x_in = h
                    branch = walk(it.layers, x_in)
                    skip = x_in @ leaf(f"extra:W{it.projection.row}", params.extra[f"W{it.projection.row}"]) \
                        if it.projection is not None else x_in
                    h = skip + it.alpha * branch
            return h

        def dense(d: Dense, h: object) -> object:
            z = h @ leaf(f"W{d.index}", params.W[d.index - 1])
            if params.b is not None:
                z = z + leaf(f"b{d.index}", params.b[d.index - 1])
            if d.output:
                return z
            if d.norm is not None:
                m = _norm_module(d.norm, params.extra[f"gamma{d.norm.row}"][s],
                                 params.extra.get(f"beta{d.norm.row}", [None] * sc.seeds)[s])
                modules.append((str(d.norm.row), m))
                z = m(z)
            return TORCH_ACT[d.activation](z, dict(d.act_params))

        x = torch.tensor(data.x, dtype=torch.float64)
        logits = walk(sc.items, x)
        tgt = torch.tensor(y)
        loss = _torch_loss(sc, logits, tgt)
        loss.backward()
        assert abs(loss.item() - p.loss[s]) <= 1e-10 * max(1.0, abs(loss.item()))
        theirs = {k.replace("extra:", "extra:d") if k.startswith("extra:") else f"d{k}": t.grad.numpy()
                  for k, t in leaves.items()}
        for row, m in modules:
            theirs[f"extra:dgamma{row}"] = m.weight.grad.numpy()
            if getattr(m, "bias", None) is not None:
                theirs[f"extra:dbeta{row}"] = m.bias.grad.numpy()
        for key, g in theirs.items():
            np.testing.assert_allclose(ours[key][s], g, rtol=1e-10, atol=1e-12, err_msg=f"{name} {key}")
        assert len(theirs) == len(ours)


def _names(sc: object, params: object) -> list[str]:
    L = sc.n_layers
    return ([f"dW{l}" for l in range(1, L + 1)] + ([f"db{l}" for l in range(1, L + 1)] if params.b is not None else [])
            + ["extra:d" + k for k in params.extra])
