"""One test per step-0 finding code: a small scenario that triggers it, every number its message states
recomputed from the report's arrays (or `--save-arrays` npz), and its remedy applied as an override."""

import json
import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

import gradscope
from gradscope.activations import ACTIVATIONS
from gradscope.diagnostics import MIN_DEAD_SAMPLES, _fmt, _verdict
from gradscope.render import ratio_note, run_markdown
from gradscope.theory import mean_field


def _sc(net, seeds=4, batch=32, overrides=(), **top):
    d = {"seeds": seeds, "network": {"input_dim": 16, "depth": 4, "width": 32, "output_dim": 4, **net},
         "data": {"kind": "gaussian", "batch_size": batch}, **top}
    return gradscope.load_scenario(d, overrides=list(overrides))


def _run(net, **kw):
    return gradscope.run(_sc(net, **kw))


def _finding(r, code):
    found = [f for f in r.findings if f.code == code]
    assert found, (code, [f.code for f in r.findings])
    return found[0]


def _codes(r):
    return {f.code for f in r.findings}


def _med(v):
    return float(np.median(np.asarray(v, dtype=np.float64)))


def _has(text, value):
    assert _fmt(value) in text, (_fmt(value), text)


def _advice(hint, activation, init):
    """The (σ_w², χ₁) a remedy states for `init`, as printed."""
    m = re.search(rf"{init} gives {activation} σ_w² = ([^,]+), χ₁ = ([^;)]+)", hint)
    assert m, hint
    return m.group(1), m.group(2)


# ------------------------------------------------------------------ overflow


def test_overflow_numbers_and_remedy():
    net = {"input_dim": 8, "depth": 40, "width": 16, "output_dim": 3, "activation": "identity",
           "init": {"scheme": "normal", "std": 1e9}, "bias": False}
    r = _run(net, seeds=3, batch=8)
    f = _finding(r, "overflow")
    _, p = r.arrays
    bad = [~(np.isfinite(z).all(axis=(1, 2)) & np.isfinite(a).all(axis=(1, 2)))
           for z, a in zip(p.z, p.a[1:], strict=True)]
    first = next(l for l, b in enumerate(bad, start=1) if b.any())
    assert f"forward pass at layer {first} (seed {int(np.flatnonzero(bad[first - 1])[0])})" in f.message
    assert f"{int(np.any(bad, axis=0).sum())} of 3 seeds" in f.message
    assert "lecun_normal" in f.hint or "xavier_uniform" in f.hint
    fixed = gradscope.run(_sc(net, seeds=3, batch=8, overrides=["network.init=xavier_uniform"]))
    assert fixed.summary.verdict != "overflow" and "overflow" not in _codes(fixed)


def test_overflow_in_every_seed_says_so_and_offers_float64_only_to_float32():
    from rich.console import Console

    from gradscope.render import run_renderable

    net = {"init": {"scheme": "normal", "std": 1e100}}
    r = _run(net, seeds=3, batch=8)
    f = _finding(r, "overflow")
    _, p = r.arrays
    n_bad = int(np.any([~np.isfinite(dw).all(axis=(1, 2)) for dw in p.dW], axis=0).sum())
    assert n_bad == 3 and "3 of 3 seeds" in f.message
    assert "no seed is finite" in f.message and "finite seeds only" not in f.message
    assert "float64" not in f.hint  # the run is float64 already
    console = Console(width=120, no_color=True)
    with console.capture() as cap:
        console.print(run_renderable(r, width=120))
    out = cap.get()
    assert "full at" not in out and "empty at" not in out and "1 to 1" not in out
    assert "no bars" in out and "no strips" in out
    r32 = _run({**net, "init": {"scheme": "normal", "std": 1e30}}, seeds=3, batch=8, dtype="float32")
    assert "or use float64" in _finding(r32, "overflow").hint


# ------------------------------------------------------------------ vanishing-gradient


def test_vanishing_sigmoid_numbers_and_remedy():
    net = {"depth": 8, "activation": "sigmoid", "init": "xavier_uniform"}
    r = _run(net)
    f = _finding(r, "vanishing-gradient")
    ps = r.per_seed
    dmean = [_med(ps[f"act_grad_mean{l}"]) for l in range(1, 9)]
    _has(f.message, float(np.mean(dmean)))
    _has(f.message, float(np.prod(dmean)))
    _has(f.message, _med(ps["gradient_ratio1"]))
    _has(f.message, _med(ps["delta_ratio1"]))
    gains = np.stack([ps[f"backward_gain{l}"] for l in range(1, 9)])
    _has(f.message, _med(np.exp(np.mean(np.log(gains), axis=0))))
    sw2, chi1 = _advice(f.hint, "relu", "he_normal")
    assert sw2 == _fmt(2.0) and chi1 == _fmt(mean_field("relu", 2.0, 0.0).chi1)
    fixed = gradscope.run(_sc(net, overrides=["network.activation=relu", "network.init=he_normal"]))
    assert fixed.summary.verdict == "healthy" and "vanishing-gradient" not in _codes(fixed)


def test_vanishing_tanh_remedy_states_the_chi1_it_gives():
    """The old remedy promised σ_w² ≈ 1 and χ₁ ≈ 1 for gain auto (it gives 2.78 and 1.21)."""
    net = {"depth": 10, "width": 64, "activation": "tanh", "init": "standard"}
    r = _run(net, batch=64)
    f = _finding(r, "vanishing-gradient")
    assert "gain: auto" not in f.hint and "5/3" not in f.hint
    sw2, chi1 = _advice(f.hint, "tanh", "xavier_uniform")
    assert sw2 == _fmt(1.0) and chi1 == _fmt(mean_field("tanh", 1.0, 0.0).chi1)
    assert f"std: {math.sqrt(r.summary.theory['critical_sigma_w2'] / 64):.4g}" in f.hint
    # δ vanishes while ‖∂L/∂W‖ stays flat: the forward signal explains it, in numbers
    params, p = r.arrays
    ps = r.per_seed
    fwd = np.linalg.norm(p.x) / np.linalg.norm(p.a[-2].reshape(4, -1), axis=1)
    _has(f.message, _med(fwd))
    _has(f.message, 1 / _med(ps["delta_ratio1"]))
    assert "Glorot" in f.message
    note = ratio_note(r)
    apart = [lay.layer for lay in r.layers
             if max(lay.median("gradient_ratio") / lay.median("delta_ratio"),
                    lay.median("delta_ratio") / lay.median("gradient_ratio")) > 10]
    assert apart[0] == 1 and note is not None and f"layers {apart[0]}–{apart[-1]} " in note.plain
    assert note.plain in run_markdown(r)
    for init in ("xavier_uniform", {"scheme": "normal", "std": math.sqrt(r.summary.theory["critical_sigma_w2"] / 64)}):
        fixed = gradscope.run(_sc(net, batch=64, overrides=[f"network.init={json.dumps(init)}"]))
        assert fixed.summary.verdict == "healthy", init


def test_exactly_zero_gradients_are_vanishing_and_theory_says_why():
    """tanh with huge weights: 1 - tanh² is exactly 0 in float64, δ is cut off; χ₁ ≫ 1 says otherwise."""
    net = {"input_dim": 8, "depth": 30, "width": 16, "output_dim": 3, "activation": "tanh",
           "init": {"scheme": "normal", "std": 100.0}}  # std 30 leaves ~1e-104, not 0, for some draws
    r = _run(net, seeds=3, batch=16)
    assert r.summary.verdict == "vanishing" and r.summary.chi1 > 1
    zero = [lay.layer for lay in r.layers[:-1] if lay.median("weight_grad_norm") == 0]
    assert zero and zero[0] == 1
    f = _finding(r, "vanishing-gradient")
    assert "exactly zero gradient" in f.message and "predicts growth" in f.message
    _, p = r.arrays
    tanh = ACTIVATIONS.get("tanh")
    frac = np.mean([np.mean(tanh.grad(z, a) == 0) for z, a in zip(p.z[:-1], p.a[1:-1], strict=True)])
    _has(f.message, 100 * frac)
    caveat = next(c for c in r.summary.theory["caveats"] if "exactly zero gradient" in c)
    _has(caveat, 100 * frac)


def test_the_verdict_follows_the_layers_nearest_the_input_when_some_vanish_and_others_explode():
    lay = [SimpleNamespace(status=s) for s in ("vanishing", "vanishing", "exploding", "healthy")]
    assert _verdict(lay) == "vanishing"
    lay = [SimpleNamespace(status=s) for s in ("exploding", "vanishing", "healthy")]
    assert _verdict(lay) == "exploding"
    lay = [SimpleNamespace(status=s) for s in ("vanishing", "dead", "exploding")]
    assert _verdict(lay) == "dead"


# ------------------------------------------------------------------ exploding-gradient


def test_exploding_numbers_and_remedy():
    net = {"depth": 8, "width": 64, "activation": "tanh", "init": {"scheme": "normal", "std": 1.0}}
    r = _run(net)
    assert r.summary.verdict == "exploding"
    f = _finding(r, "exploding-gradient")
    _has(f.message, _med(r.per_seed["delta_ratio1"]))
    _has(f.message, _med(r.per_seed["gradient_ratio1"]))
    assert f"σ_w² = fan_in·Var(W) = {_fmt(64 * 1.0)}" in f.message
    gains = np.stack([r.per_seed[f"backward_gain{l}"] for l in range(1, 9)])
    assert f"multiplies ‖δ‖ by {_fmt(_med(np.exp(np.mean(np.log(gains), axis=0))))}" in f.message
    sw2, chi1 = _advice(f.hint, "tanh", "xavier_uniform")
    assert sw2 == _fmt(1.0) and chi1 == _fmt(mean_field("tanh", 1.0, 0.0).chi1)
    fixed = gradscope.run(_sc(net, overrides=["network.init=xavier_uniform"]))
    assert "exploding-gradient" not in _codes(fixed) and fixed.summary.verdict == "healthy"


# ------------------------------------------------------------------ saturated-units


def test_saturated_units_numbers_and_remedy():
    net = {"depth": 4, "activation": "tanh", "init": {"scheme": "normal", "std": 1.0}}
    r = _run(net)
    f = _finding(r, "saturated-units")
    sat = {l: _med(r.per_seed[f"saturation{l}"]) for l in range(1, 5)}
    worst = max(sat, key=sat.get)
    _has(f.message, 100 * sat[worst])
    assert f"layer {worst}: pre-activation std {_fmt(_med(r.per_seed[f'preact_std{worst}']))}" in f.message
    _, p = r.arrays
    tanh = ACTIVATIONS.get("tanh")
    assert sat[worst] == pytest.approx(_med((tanh.grad(p.z[worst - 1], p.a[worst]) < 0.1).mean(axis=(1, 2))))
    assert "xavier" in f.hint
    fixed = gradscope.run(_sc(net, overrides=["network.init=xavier_uniform"]))
    assert "saturated-units" not in _codes(fixed)


# ------------------------------------------------------------------ dead-units


def test_dead_units_numbers_and_remedy(tmp_path):
    net = {"depth": 4, "activation": "relu", "init": "he_normal", "bias_init": {"scheme": "constant", "value": -3.0}}
    r = _run(net)
    assert r.summary.verdict == "dead"
    f = _finding(r, "dead-units")
    gradscope.save_arrays(r, tmp_path / "run.npz")
    with np.load(tmp_path / "run.npz") as npz:
        W = [npz[f"W{l}"] for l in range(1, 6)]
        b = [npz[f"b{l}"] for l in range(1, 6)]
        x = npz["x"]
    a = x
    dead = {}
    for l in range(1, 5):
        z = a @ W[l - 1] + b[l - 1][:, None, :]
        dead[l] = _med((z <= 0).all(axis=1).mean(axis=1))
        a = np.maximum(z, 0)
    worst = max(dead, key=dead.get)
    _has(f.message, 100 * dead[worst])
    _has(f.message, float(np.mean(b[worst - 1])))
    assert f"pre-activation mean {_fmt(_med(r.per_seed[f'preact_mean{worst}']))}" in f.message
    assert "leaky_relu" in f.hint
    # he_normal is already critical: the vanishing remedy must not send the user to another init
    deep = gradscope.run({"seeds": 8, "network": {"input_dim": 32, "depth": 6, "width": 64, "output_dim": 10, **net},
                          "data": {"kind": "gaussian", "batch_size": 64}})
    van = _finding(deep, "vanishing-gradient")
    assert "already near the critical σ_w²" in van.hint
    assert f"χ₁ = {_fmt(mean_field('relu', 2.0, 0.0).chi1)}" in van.hint
    assert "raise the init variance" not in van.hint
    fixed = gradscope.run(_sc(net, overrides=["network.activation=leaky_relu"]))
    assert "dead-units" not in _codes(fixed) and fixed.summary.verdict != "dead"


def test_one_sample_cannot_show_dead_units():
    net = {"depth": 4, "activation": "relu", "init": "he_normal"}
    r = _run(net, batch=1)
    assert r.summary.verdict != "dead" and all(lay.status != "dead" for lay in r.layers)
    f = _finding(r, "dead-units")
    assert f.severity == "info" and f"at least {MIN_DEAD_SAMPLES} samples" in f.message
    # centering a batch of one sample leaves x = 0: the gradient is exactly 0 and the finding says why
    _, p = r.arrays
    assert not np.any(p.x) and r.summary.verdict == "vanishing"
    van = _finding(r, "vanishing-gradient")
    assert "input batch is exactly 0" in van.message and "data.center: false" in van.hint
    uncentered = gradscope.run(_sc(net, batch=1, overrides=["data.center=false"]))
    assert uncentered.summary.verdict != "vanishing" and uncentered.summary.verdict != "dead"
    _has(f.message, 0.5)
    fixed = gradscope.run(_sc(net, batch=1, overrides=[f"data.batch_size={MIN_DEAD_SAMPLES * 4}"]))
    assert fixed.summary.verdict == "healthy"
    assert not any("does not show dead units" in g.message for g in fixed.findings)


# ------------------------------------------------------------------ output findings


def test_saturated_output_numbers_and_remedy():
    net = {"depth": 2, "activation": "relu", "init": {"scheme": "normal", "std": 1.0}, "output_dim": 4}
    r = _run(net, loss="cross_entropy")
    f = _finding(r, "saturated-output")
    _, p = r.arrays
    _has(f.message, 100 * _med((p.a[-1].max(axis=2) > 0.99).mean(axis=1)))
    _has(f.message, _med(p.z[-1].std(axis=(1, 2))))
    fixed = gradscope.run(_sc(net, loss="cross_entropy", overrides=["network.init=xavier_uniform"]))
    assert "saturated-output" not in _codes(fixed)


def test_mse_on_probabilities_numbers_and_remedy():
    net = {"depth": 2, "activation": "relu", "init": "he_normal", "output_activation": "softmax"}
    r = _run(net, loss="mse")
    f = _finding(r, "mse-on-probabilities")
    _, p = r.arrays
    yhat = p.a[-1]
    _has(f.message, float(np.mean(yhat * (1 - yhat))))
    _has(f.message, 100 * float(np.mean((yhat * p.target[None]).sum(axis=-1) < 0.1)))
    fixed = gradscope.run(_sc(net, loss="mse", overrides=["loss=cross_entropy"]))
    assert "mse-on-probabilities" not in _codes(fixed)


# ------------------------------------------------------------------ inputs


def test_non_centered_inputs_state_the_measured_one_sign_fraction(tmp_path):
    base = {"seeds": 4, "network": {"input_dim": 16, "depth": 3, "width": 32, "activation": "tanh"},
            "data": {"kind": "uniform", "low": 0.0, "high": 1.0, "center": False, "batch_size": 64}}
    r = gradscope.run(base)
    f = _finding(r, "non-centered-inputs")
    gradscope.save_arrays(r, tmp_path / "run.npz")
    with np.load(tmp_path / "run.npz") as npz:
        x, dW1 = npz["x"][0], npz["dW1"]
    _has(f.message, float(np.median(np.abs(x.mean(axis=0)) / x.std(axis=0))))
    same = ((dW1 > 0).all(axis=1) | (dW1 < 0).all(axis=1)).mean(axis=1)
    _has(f.message, 100 * _med(same))
    assert f"{_fmt(100 * float(np.mean(x > 0)))}% of the input values are positive" in f.message
    assert 0 < _med(same) < 1  # not "all units": what was measured
    fixed = gradscope.run(gradscope.load_scenario(base, overrides=["data.center=true"]))
    assert "non-centered-inputs" not in _codes(fixed)
    _, p = fixed.arrays
    assert ((p.dW[0] > 0).all(axis=1) | (p.dW[0] < 0).all(axis=1)).mean() < _med(same)


# ------------------------------------------------------------------ forward signal


@pytest.mark.parametrize("code,net,fix", [
    ("forward-collapse", {"depth": 10, "width": 64, "activation": "tanh", "init": "standard"},
     "network.init=xavier_uniform"),
    ("forward-explosion", {"depth": 6, "width": 64, "activation": "relu", "init": {"scheme": "normal", "std": 1.0}},
     "network.init=he_normal"),
])
def test_forward_signal_numbers_and_remedy(code, net, fix):
    r = _run(net)
    f = _finding(r, code)
    _, p = r.arrays
    stds = [_med(z.std(axis=(1, 2))) for z in p.z[:-1]]
    _has(f.message, stds[0])
    _has(f.message, stds[-1])
    _has(f.message, stds[-1] / stds[0])
    fixed = gradscope.run(_sc(net, overrides=[fix]))
    assert code not in _codes(fixed)


# ------------------------------------------------------------------ symmetric-init


@pytest.mark.parametrize("init", ["zeros", {"scheme": "constant", "value": 0.1}])
def test_symmetric_init_claims_and_remedy(init, tmp_path):
    net = {"depth": 3, "activation": "tanh", "init": init}
    r = _run(net)
    f = _finding(r, "symmetric-init")
    gradscope.save_arrays(r, tmp_path / "run.npz")
    with np.load(tmp_path / "run.npz") as npz:
        dW = [npz[f"dW{l}"] for l in range(1, 5)]
    for g in dW[:-1]:  # every hidden unit (column) of a layer gets the same gradient
        np.testing.assert_allclose(g, np.broadcast_to(g[:, :, :1], g.shape), rtol=1e-12, atol=0)
    if init == "zeros":
        assert all((g == 0).all() for g in dW[:-1]) and "exactly 0" in f.message
    fixed = gradscope.run(_sc(net, overrides=["network.init=xavier_uniform"]))
    assert "symmetric-init" not in _codes(fixed)


# ------------------------------------------------------------------ theory beside measurement, report arithmetic


def test_theory_that_misses_the_measurement_says_so_in_numbers():
    net = {"depth": 12, "width": 32, "activation": "gelu", "init": "he_normal",
           "bias_init": {"scheme": "normal", "std": 0.1}}
    r = _run(net, seeds=3)
    th = r.summary.theory
    pbf, mbf = th["predicted_backward_factor"], th["measured_backward_factor"]
    assert abs(mbf / pbf - 1) > 0.02
    caveat = next(c for c in th["caveats"] if c.startswith("measured backward factor"))
    assert f"{100 * (mbf / pbf - 1):+.1f}%" in caveat and "depth/width (here 12/32)" in caveat
    _, p = r.arrays
    q = [_med(np.mean(z**2, axis=(1, 2))) for z in p.z[:-1]]
    layer = int(re.search(r"\(layer (\d+): ", caveat).group(1))
    _has(caveat, q[layer - 1])


def test_extrapolation_beyond_float_range_is_null_and_said(tmp_path):
    net = {"depth": 4, "width": 64, "activation": "relu", "init": {"scheme": "normal", "std": 1e6}}
    r = _run(net, seeds=2)
    ex = r.summary.extrapolation
    assert ex["layer1_ratio_at_depth_50"] is None and ex["layer1_log10_ratio_at_depth_50"] > 308
    json.dumps(r.to_dict(), allow_nan=False)
    # δ explodes while ‖∂L/∂W‖ does not: the exploding finding says why, with the forward ratio recomputed
    f = _finding(r, "exploding-gradient")
    _, p = r.arrays
    _has(f.message, _med(np.linalg.norm(p.x) / np.linalg.norm(p.a[-2].reshape(2, -1), axis=1)))
    _has(f.message, 1 / _med(r.per_seed["delta_ratio1"]))
    from gradscope.render import verdict_text
    assert "beyond float range" in verdict_text(r).plain
