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


def test_training_a_norm_residual_dropout_net_matches_torch_adam() -> None:
    """Five full-batch Adam steps on a pre-LayerNorm residual net with dropout and a projection, against
    torch.optim.Adam with the same masks: every final parameter (W, b, γ, β, P) to 1e-10, absolute 1e-8: the bias
    feeding the batchnorm has a gradient that is exactly 0 in exact arithmetic (the batch mean is removed), so its
    Adam steps are lr·(rounding noise ~1e-17)/eps ≈ 5e-11 each, different in the two frameworks."""
    from gradscope import run
    from gradscope.layers import dropout_mask, walk

    net = {"input_dim": 5, "output_dim": 3, "layers": [
        {"dense": {"width": 6, "activation": "tanh"}},
        {"residual": {"alpha": 0.5, "layers": [{"norm": "layernorm"}, {"dense": {"width": 7, "activation": "gelu"}},
                                               {"dropout": 0.25}, {"dense": {"width": 6, "activation": "identity"}}]}},
        {"norm": "batchnorm"},
        {"residual": {"projection": True, "layers": [{"dense": 4}, {"dropout": 0.2}]}}]}
    steps = 5
    sc = _scenario_train(net, steps)
    report = run(sc)
    final = report.trace.final
    x = torch.tensor(report.trace.train_set.x, dtype=torch.float64)
    y = torch.tensor(report.trace.target_train)
    params0 = init_params(sc)
    drops = [it for it in walk(sc.items) if isinstance(it, Dropout)]
    for s in range(sc.seeds):
        leaves: dict[str, object] = {}
        for l in range(1, sc.n_layers + 1):
            leaves[f"W{l}"] = torch.tensor(params0.W[l - 1][s], requires_grad=True)
            leaves[f"b{l}"] = torch.tensor(params0.b[l - 1][s], requires_grad=True)
        for k, v in params0.extra.items():
            leaves[f"x:{k}"] = torch.tensor(v[s], requires_grad=True)
        opt = torch.optim.Adam(list(leaves.values()), lr=sc.train["lr"])
        for step in range(1, steps + 1):
            masks = {d.index: torch.from_numpy(dropout_mask(sc.seed, d.index, step, (sc.seeds, x.shape[0], d.n), d.p,
                                                            np.float64)[s]) for d in drops}
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(_torch_forward(sc.items, x, leaves, masks), y)
            loss.backward()
            opt.step()
        for l in range(1, sc.n_layers + 1):
            np.testing.assert_allclose(leaves[f"W{l}"].detach().numpy(), final.W[l - 1][s], rtol=1e-10, atol=1e-8)
            np.testing.assert_allclose(leaves[f"b{l}"].detach().numpy(), final.b[l - 1][s], rtol=1e-10, atol=1e-8)
        for k, v in final.extra.items():
            np.testing.assert_allclose(leaves[f"x:{k}"].detach().numpy(), v[s], rtol=1e-10, atol=1e-8, err_msg=k)


def _scenario_train(net: dict, steps: int) -> object:
    from gradscope import load_scenario

    return load_scenario({"seeds": 2, "network": {"init": "xavier_normal", **net}, "loss": "cross_entropy",
                          "data": {"kind": "blobs", "batch_size": 16},
                          "train": {"steps": steps, "optimizer": "adam", "lr": 0.05, "train_size": 24, "holdout": 8,
                                    "record_every": steps}})


def _torch_forward(items: tuple, h: object, leaves: dict, masks: dict) -> object:
    """The network of `items` in torch.nn.functional, parameters from `leaves` (W{l}, b{l}, x:gamma{r}, …)."""
    F = torch.nn.functional
    for it in items:
        if isinstance(it, Dense):
            z = h @ leaves[f"W{it.index}"] + leaves[f"b{it.index}"]
            h = z if it.output else TORCH_ACT[it.activation](z, dict(it.act_params))
        elif isinstance(it, Norm):
            g, b = leaves[f"x:gamma{it.row}"], leaves.get(f"x:beta{it.row}")
            if it.kind == "layernorm":
                h = F.layer_norm(h, (it.n,), g, b, it.eps)
            elif it.kind == "batchnorm":
                h = F.batch_norm(h, None, None, g, b, training=True, eps=it.eps)
            else:
                h = F.rms_norm(h, (it.n,), g, it.eps)
        elif isinstance(it, Dropout):
            h = h * masks[it.index]
        else:
            branch = _torch_forward(it.layers, h, leaves, masks)
            skip = h @ leaves[f"x:W{it.projection.row}"] if it.projection is not None else h
            h = skip + it.alpha * branch
    return h
