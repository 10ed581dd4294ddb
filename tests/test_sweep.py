"""gradscope sweep: grid parsing, the `sweep:` block, records equal to direct runs, the measured boundary and
depth scale, incremental writes and --resume, exit codes, and byte-identical results across executors."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import gradscope
from gradscope.cli import app
from gradscope.errors import GradscopeError, ScenarioError
from gradscope.render import to_json
from gradscope.scenario import bundled_path, load_scenario
from gradscope.sweep import Axis, boundary, crossings, make_axes, measured_depth_scale, parse_values

sweep_mod = sys.modules["gradscope.sweep"]  # the module (gradscope.sweep is the function)

TINY = {"name": "tiny", "seed": 1, "seeds": 2, "network": {"input_dim": 6, "depth": 3, "width": 8, "output_dim": 3,
                                                           "activation": "tanh",
                                                           "init": {"scheme": "mean_field", "sigma_w2": 1.0},
                                                           "bias_init": {"scheme": "mean_field", "sigma_b2": 0.05}},
        "loss": "cross_entropy", "data": {"kind": "gaussian", "batch_size": 8}}


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def tiny_file(tmp_path: Path, **extra) -> Path:
    import yaml

    p = tmp_path / "tiny.yaml"
    p.write_text(yaml.safe_dump({**TINY, **extra}, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return p


# ---------------------------------------------------------------- grid values


def test_values_lists_and_ranges():
    assert parse_values("relu,tanh") == (("relu", "tanh"), False)
    assert parse_values("1e-3,0.5, 2") == ((0.001, 0.5, 2), False)
    assert parse_values([0.0, 0.05]) == ((0.0, 0.05), False)
    values, log = parse_values("0.5:4:15")
    assert not log and len(values) == 15 and values[0] == 0.5 and values[-1] == 4.0
    assert values[1] == pytest.approx(0.75) and values[7] == pytest.approx(2.25)
    values, log = parse_values("1e-3:1:13:log")
    assert log and len(values) == 13 and values[0] == 1e-3 and values[-1] == 1.0
    assert values[4] == pytest.approx(1e-2) and values[8] == pytest.approx(1e-1)
    assert parse_values("2:20:10") == ((2, 4, 6, 8, 10, 12, 14, 16, 18, 20), False)  # integers stay integers
    assert parse_values("[xavier_uniform, {scheme: normal, std: 0.1}]")[0][1] == {"scheme": "normal", "std": 0.1}


@pytest.mark.parametrize("spec,why", [("1:2:1", "at least 2 points"), ("0:1:5:log", "start and stop > 0"),
                                      ("a:2:3", "must be numbers"), ("1:2:x", "must be an integer"),
                                      ("relu,relu", "given twice"), ("1,,2", "empty value"), ([], "no values"),
                                      ("1:1:3", "equal"), ("1:2:20000", "over the limit")])
def test_bad_values_say_why(spec, why):
    with pytest.raises(ValueError, match=why):
        parse_values(spec)


def test_axes_product_and_limits():
    axes = make_axes(["network.depth=2,4", "network.activation=relu,tanh,sigmoid"])
    pts = sweep_mod.points(axes)
    assert len(pts) == 6 and pts[0] == {"network.depth": 2, "network.activation": "relu"}
    assert pts[3] == {"network.depth": 4, "network.activation": "relu"}
    with pytest.raises(GradscopeError, match="KEY=VALUES"):
        make_axes(["network.depth"])
    with pytest.raises(GradscopeError, match="over the limit of 100,000"):
        make_axes(["seed=0:9999:10000", "seeds=1:11:11"])


# ---------------------------------------------------------------- the scenario: sweep block, mean_field init


def test_sweep_block_is_validated_with_file_key_and_line(tmp_path):
    p = tmp_path / "s.yaml"
    p.write_text("network: {depth: 2}\nsweep:\n  grid:\n    network.depth: '1:2:1'\n")
    with pytest.raises(ScenarioError) as info:
        load_scenario(p)
    e = info.value
    assert (e.path, e.line) == ("sweep.grid.network.depth", 4) and "at least 2 points" in e.message
    p.write_text("network: {depth: 2}\nsweep:\n  grid: {seed: [1, 2]}\n  boundry: x=1\n")
    with pytest.raises(ScenarioError, match="did you mean 'boundary'"):
        load_scenario(p)
    p.write_text("network: {depth: 2}\nsweep:\n  grid: {seed: [1, 2]}\n  boundary: nosuch=1\n")
    with pytest.raises(ScenarioError, match="unknown metric 'nosuch'") as info:
        load_scenario(p)
    assert info.value.line == 4
    r = invoke("run", str(p))
    assert r.exit_code == 2 and f"{p}:4" in r.stderr and "sweep.boundary" in r.stderr


def test_a_sweep_block_changes_no_number(tmp_path):
    plain = gradscope.run(load_scenario(TINY)).to_dict()
    swept = gradscope.run(load_scenario({**TINY, "sweep": {"grid": {"seed": "0:3:4"}}})).to_dict()
    assert swept["scenario"].pop("sweep") == {"grid": {"seed": "0:3:4"}}
    assert to_json(swept) == to_json(plain)
    assert "sweep" not in gradscope.run(bundled_path("deep-sigmoid.yaml")).to_dict()["scenario"]


def test_mean_field_init_gives_sigma_w2_and_sigma_b2():
    from gradscope.engine import init_params
    from gradscope.inits import layer_sigmas

    sc = load_scenario({**TINY, "seeds": 64, "network": {**TINY["network"], "width": 200, "init": {
        "scheme": "mean_field", "sigma_w2": 1.7}, "bias_init": {"scheme": "mean_field", "sigma_b2": 0.3}}})
    sw2, sb2 = layer_sigmas(sc)
    assert sw2 == [1.7] * sc.n_layers and sb2 == [0.3] * sc.n_layers
    params = init_params(sc)
    W2 = params.W[1]  # (S, 200, 200)
    assert 200 * W2.var() == pytest.approx(1.7, rel=0.01)
    assert params.b[1].var() == pytest.approx(0.3, rel=0.05)
    assert sc.to_dict()["network"]["init"] == {"scheme": "mean_field", "sigma_w2": 1.7}
    assert sc.to_dict()["network"]["bias_init"] == {"scheme": "mean_field", "sigma_b2": 0.3}


def test_mean_field_refuses_the_other_roles_parameter(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("network:\n  init: {scheme: mean_field, sigma_w2: 2, sigma_b2: 0.1}\n")
    with pytest.raises(ScenarioError, match="sigma_b2 belongs to network.bias_init") as info:
        load_scenario(p)
    assert (info.value.path, info.value.line) == ("network.init.sigma_b2", 2)
    with pytest.raises(ScenarioError, match="sigma_w2 belongs to network.init"):
        load_scenario({"network": {"bias_init": {"scheme": "mean_field", "sigma_w2": 2}}})


# ---------------------------------------------------------------- the boundary and the depth scale, exactly


def test_crossings_interpolate_linearly_and_in_log_space():
    # a positive metric is interpolated in log: exact for a geometric decay y = 10^-x
    assert crossings([1, 2, 3], [1e-1, 1e-2, 1e-3], 10**-2.3, False) == [pytest.approx(2.3)]
    assert crossings([1, 2, 3], [0.5, 0.9, 1.3], 1.0, False) == [
        pytest.approx(2 + math.log(1 / 0.9) / math.log(1.3 / 0.9))]
    assert crossings([1, 2, 3], [-0.5, -0.1, 0.3], 0.0, False) == [pytest.approx(2.25)]  # signs: linear
    assert crossings([0.01, 1.0], [-1.0, 1.0], 0.0, True) == [pytest.approx(0.1)]  # geometric midpoint of x
    assert crossings([1, 2, 3, 4], [0.5, 2.0, 0.5, None], 1.0, False) == [pytest.approx(1.5), pytest.approx(2.5)]
    assert crossings([1, 2], [2.0, 3.0], 1.0, False) == []


def test_boundary_per_row_with_prediction():
    axes = (Axis("x", (1.0, 2.0, 3.0)), Axis("y", ("a", "b")))
    recs = []
    for i, (x, y) in enumerate([(x, y) for x in (1.0, 2.0, 3.0) for y in ("a", "b")]):
        m = x - 1 if y == "a" else x / 4  # crosses 1 at x = 2 (a), never (b)
        recs.append({"index": i, "point": {"x": x, "y": y}, "error": None, "measured": {"backward_factor": m},
                     "predicted": {"backward_factor": x / 2.5}, "summary": {}})
    b = boundary(recs, axes, "backward_factor", 1.0)
    pred = 2 + math.log(1 / 0.8) / math.log(1.2 / 0.8)  # x/2.5 is 0.8 at 2 and 1.2 at 3
    assert b[0]["at"] == {"y": "a"} and b[0]["measured"] == 2.0 and b[0]["predicted"] == pytest.approx(pred)
    assert b[0]["relative_error"] == pytest.approx(2.0 / pred - 1)
    assert b[1]["measured"] is None and b[1]["side"] == "below"


def test_measured_depth_scale_from_an_exact_decay():
    # ‖δ_l‖² = χ^(L-l) with χ = 0.8: ξ = -1/ln 0.8 = 4.48
    norms = [math.sqrt(0.8 ** (20 - l)) for l in range(1, 20)]
    assert measured_depth_scale(norms, None) == pytest.approx(-1 / math.log(0.8))
    assert measured_depth_scale(norms, [5, 6, 7]) == pytest.approx(-1 / math.log(0.8))
    assert measured_depth_scale([math.sqrt(1.2 ** (20 - l)) for l in range(1, 20)], None) is None  # chaotic side


# ---------------------------------------------------------------- each point is a full run


def test_every_point_is_the_run_of_its_overrides():
    rep = gradscope.sweep(TINY, {"network.activation": "relu,tanh", "loss": ["mse", "cross_entropy"],
                                 "network.depth": [2, 4]}, workers=1)
    assert len(rep.records) == 8 and [r["index"] for r in rep.records] == list(range(8))
    for r in rep.records[::3]:
        p = r["point"]
        direct = gradscope.run(load_scenario(TINY, overrides=[f"{k}={v}" for k, v in p.items()]),
                               keep_gradients=False)
        assert r["summary"] == json.loads(to_json(direct.summary.to_dict()))
        assert r["verdict"] == direct.summary.verdict
        assert r["findings"] == list(dict.fromkeys(f.code for f in direct.findings))
        assert r["measured"]["gradient_spread"] == direct.summary.gradient_spread
        assert r["predicted"]["backward_factor"] == direct.summary.chi1
    d = rep.to_dict()
    assert d["grid"][0] == {"key": "network.activation", "values": ["relu", "tanh"], "log": False}
    assert json.loads(to_json(d))["points"][0]["point"] == {"network.activation": "relu", "loss": "mse",
                                                            "network.depth": 2}


def test_init_width_and_seeds_axes_take_effect():
    rep = gradscope.sweep({**TINY, "network": {**TINY["network"], "init": "xavier_uniform", "bias_init": "zeros"}},
                          ["network.init=xavier_uniform,he_normal", "network.width=4,16"], workers=1)
    sw2 = {(r["point"]["network.init"], r["point"]["network.width"]): r["summary"]["theory"]["sigma_w2"]
           for r in rep.records}
    assert sw2[("he_normal", 4)] == pytest.approx(2.0) and sw2[("he_normal", 16)] == pytest.approx(2.0)
    assert sw2[("xavier_uniform", 16)] == pytest.approx(16 * 2 / 32)


def test_theory_shared_between_points_is_computed_once(monkeypatch):
    from gradscope import theory

    calls = []
    real = theory.critical_sigma_w2_uncached
    monkeypatch.setattr(theory, "critical_sigma_w2_uncached", lambda *a, **k: calls.append(a) or real(*a, **k))
    monkeypatch.setattr(theory, "_CRITICAL", {})
    rep = gradscope.sweep(TINY, ["network.init.sigma_w2=0.5:3:6", "network.bias_init.sigma_b2=0.013,0.021"],
                          workers=1)
    assert len(rep.records) == 12 and sorted(c[1] for c in calls) == [0.013, 0.021]
    assert rep.boundary[1]["mean_field"] == pytest.approx(real("tanh", 0.021))


def test_a_failing_point_is_recorded_and_the_sweep_goes_on(tmp_path):
    f = tiny_file(tmp_path)
    r = invoke("sweep", "-w", "1", str(f), "-g", "network.width=4,0,8", "-f", "json")
    assert r.exit_code == 2, r.output
    d = json.loads(r.stdout)
    assert [p["error"] is None for p in d["points"]] == [True, False, True]
    assert "network.width" in d["points"][1]["error"] and "must be ≥ 1" in d["points"][1]["error"]
    assert "--grid point network.width=0" in d["points"][1]["error"]
    assert "gradscope: error: point network.width=0" in r.stderr
    r = invoke("sweep", "-w", "1", str(f), "-g", "network.widht=4,8")
    assert r.exit_code == 2 and "no point of the grid is a valid scenario" in r.stderr and "did you mean" in r.stderr
    r = invoke("sweep", "-w", "1", str(f), "--max-memory", "20KiB", "-g", "network.width=4,64", "-f", "json")
    d = json.loads(r.stdout)
    assert r.exit_code == 2 and d["points"][0]["error"] is None and "memory" in d["points"][1]["error"]


def test_exit_codes_as_for_check(tmp_path):
    healthy = tiny_file(tmp_path)
    r = invoke("sweep", "-w", "1", str(healthy), "-g", "seed=1,2", "--quiet", "--no-color")
    assert r.exit_code == 0, r.output
    assert len([ln for ln in r.stdout.splitlines() if ln.startswith("seed=")]) == 2
    assert "PASS" in r.stdout and "2 points: 2 passed, 0 failed" in r.stdout
    r = invoke("sweep", "-w", "1", str(healthy), "-g", "network.init.sigma_w2=1,0.05", "--no-color", "-q")
    assert r.exit_code == 1 and "1 failed" in r.stdout and "FAIL" in r.stdout


# ---------------------------------------------------------------- output: table, csv, json, incremental, resume


def test_heat_map_table_and_boundary_text(tmp_path):
    f = tiny_file(tmp_path)
    r = invoke("sweep", "-w", "1", str(f), "-g", "network.init.sigma_w2=0.5:3:6", "-g",
               "network.bias_init.sigma_b2=0,0.05", "--set", "network.depth=12", "--no-color")
    assert r.exit_code == 1, r.output
    lines = r.stdout.splitlines()
    head = next(ln for ln in lines if "sigma_b2 ↓ sigma_w2 →" in ln)
    assert [c.strip() for c in head.split("┃")[1:]] == ["0.5", "1", "1.5", "2", "2.5", "3"]
    rows = [ln for ln in lines if ln.startswith(("0 ", "0.05 "))]
    d = json.loads(invoke("sweep", "-w", "1", str(f), "-g", "network.init.sigma_w2=0.5:3:6", "-g",
                          "network.bias_init.sigma_b2=0,0.05", "--set", "network.depth=12", "-f", "json").stdout)
    cells = [c.strip() for c in rows[1].split("│")[1:]]
    from gradscope.render import fmt

    assert cells == [fmt(p["measured"]["backward_factor"]) for p in d["points"][1::2]]
    assert "measured boundary: where backward_factor crosses 1 along network.init.sigma_w2" in r.stdout
    assert "mean-field critical σ_w²" in r.stdout and "1.761" in r.stdout
    r1 = invoke("sweep", "-w", "1", str(f), "-g", "network.depth=2,3", "--no-color")
    assert "tiny: sweep over network.depth" in r1.stdout and "backward factor" in r1.stdout


def test_csv_and_json_records(tmp_path):
    f = tiny_file(tmp_path)
    r = invoke("sweep", "-w", "1", str(f), "-g", "network.init.sigma_w2=1,2", "-f", "csv")
    rows = r.stdout.splitlines()
    assert rows[0].startswith("index,network.init.sigma_w2,verdict,passed,findings,error,measured.backward_factor")
    assert len(rows) == 3 and rows[1].startswith("0,1,") and rows[2].startswith("1,2,")
    d = json.loads(invoke("sweep", "-w", "1", str(f), "-g", "network.init.sigma_w2=1,2", "-f", "json").stdout)
    assert d["boundary_metric"] == {"metric": "backward_factor", "value": 1.0}
    assert d["points"][1]["measured"]["backward_factor"] == float(rows[2].split(",")[6])


def test_incremental_output_resume_and_ctrl_c(tmp_path, monkeypatch):
    f = tiny_file(tmp_path)
    out = tmp_path / "out.jsonl"
    grid = ["-g", "seed=1:6:6"]
    full = json.loads(invoke("sweep", str(f), *grid, "-f", "json").stdout)

    calls = []
    real = sweep_mod.run_point

    def interrupted(*task):
        calls.append(task[0])
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(*task)

    monkeypatch.setattr(sweep_mod, "run_point", interrupted)
    r = invoke("sweep", str(f), *grid, "-o", str(out), "--workers", "1")
    assert r.exit_code == 130 and f"finished points are in {out}" in r.stderr
    kept = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert [k["index"] for k in kept] == [0, 1, 2]
    with open(out, "a") as fh:
        fh.write('{"index": 3, "point": {"se')  # a record cut short by the interruption
    calls.clear()
    monkeypatch.setattr(sweep_mod, "run_point", lambda *task: calls.append(task[0]) or real(*task))
    r = invoke("sweep", str(f), *grid, "-o", str(out), "--resume", "-f", "json", "--workers", "1")
    assert r.exit_code == 0, r.output
    assert calls == [3, 4, 5]  # the finished points were skipped
    assert json.loads(out.read_text()) == full  # complete: one JSON document, as --format json prints
    calls.clear()
    assert invoke("sweep", str(f), *grid, "-o", str(out), "--resume", "-f", "json", "--workers", "1").exit_code == 0
    assert calls == []
    r = invoke("sweep", str(f), "-g", "seed=7,8", "-o", str(out), "--resume")
    assert r.exit_code == 2 and "not in this grid" in r.stderr
    assert invoke("sweep", str(f), *grid, "--resume").exit_code == 2


def test_csv_output_resumes(tmp_path):
    f = tiny_file(tmp_path)
    out = tmp_path / "out.csv"
    r = invoke("sweep", "-w", "1", str(f), "-g", "network.init.sigma_w2=0.5,1.5,2.5", "-o", str(out))
    assert r.exit_code == 0 and "wrote 3 points" in r.stderr
    text = out.read_text()
    out.write_text("\n".join(text.splitlines()[:3]) + "\n")  # header + 2 points
    r2 = invoke("sweep", "-w", "1", str(f), "-g", "network.init.sigma_w2=0.5,1.5,2.5", "-o", str(out), "--resume")
    assert r2.exit_code == 0 and out.read_text() == text
    assert "(2 resumed from the results file)" in r2.stdout


# ---------------------------------------------------------------- executors


def test_dask_missing_is_exit_2_with_the_install_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    r = invoke("sweep", str(tiny_file(tmp_path)), "-g", "seed=1,2", "--scheduler", "local")
    assert r.exit_code == 2 and "pip install 'gradscope[dask]'" in r.stderr
    r = invoke("sweep", str(tiny_file(tmp_path)), "-g", "seed=1,2", "--scheduler", "tcp://127.0.0.1:1",
               "--workers", "2")
    assert r.exit_code == 2 and "--workers" in r.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_results_are_byte_identical_in_process_local_pool_and_dask(tmp_path):
    pytest.importorskip("distributed")
    dask = shutil.which("dask", path=os.path.dirname(sys.executable)) or shutil.which("dask")
    assert dask is not None, "the dask command (dask[distributed], in the test extra) is not installed"
    sc = {**TINY, "network": {**TINY["network"], "width": 24, "depth": 6}}
    grid = ["network.init.sigma_w2=0.5:3:4", "network.bias_init.sigma_b2=0,0.1"]
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)]
    try:
        procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--nworkers", "1",
                                       "--no-dashboard", "--no-nanny"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env))
        here = to_json(gradscope.sweep(sc, grid, workers=1).to_dict())
        pool = to_json(gradscope.sweep(sc, grid, workers=2).to_dict())
        from distributed import Client

        deadline = time.monotonic() + 15
        while True:
            try:
                with Client(address, timeout="2s") as client:
                    client.wait_for_workers(1, timeout=max(1.0, deadline - time.monotonic()))
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        remote = gradscope.sweep(sc, grid, scheduler=address)
        assert remote.executor == f"dask {address}"
        assert to_json(remote.to_dict()) == here
        assert pool == here
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_scheduler_local_is_a_dask_local_cluster():
    pytest.importorskip("distributed")
    grid = ["network.init.sigma_w2=0.5,2"]
    local = gradscope.sweep(TINY, grid, scheduler="local", workers=1)  # a LocalCluster of one worker process
    assert local.executor == "dask local"
    assert to_json(local.to_dict()) == to_json(gradscope.sweep(TINY, grid, workers=1).to_dict())


# ---------------------------------------------------------------- the measured phase diagram


def test_phase_tanh_measured_critical_line_within_3_percent_of_mean_field():
    """Acceptance: tanh, width 500, depth 30, σ_b² = 0.05: the measured crossing of the backward factor at the
    fixed point through 1 is within 3% of the mean-field critical σ_w² = 1.761 (Schoenholz et al. 2017)."""
    rep = gradscope.sweep(bundled_path("phase-tanh.yaml"), ["network.init.sigma_w2=1.64:1.88:4"],
                          overrides=["network.width=500", "network.bias_init.sigma_b2=0.05"], seeds=2, workers=1)
    (b,) = rep.boundary
    assert b["mean_field"] == pytest.approx(1.761, abs=5e-4)
    assert b["measured"] is not None and abs(b["measured"] / b["mean_field"] - 1) < 0.03
    assert b["relative_error"] == pytest.approx(b["measured"] / b["mean_field"] - 1)
    factors = [r["measured"]["backward_factor"] for r in rep.records]
    assert factors[0] < 1 < factors[-1] and factors == sorted(factors)


def test_depth_scale_measured_on_the_ordered_side():
    rep = gradscope.sweep(bundled_path("phase-tanh.yaml"), ["network.init.sigma_w2=1.2,1.4"], workers=1)
    for r in rep.records:
        xi, pred = r["measured"]["depth_scale"], r["predicted"]["depth_scale"]
        chi1 = r["summary"]["theory"]["chi1"]
        assert pred == pytest.approx(-1 / math.log(chi1)) and 2 < pred < 15
        assert xi == pytest.approx(pred, rel=0.15)


def test_boundary_of_another_metric_along_depth(tmp_path):
    sc = {**TINY, "network": {**TINY["network"], "activation": "sigmoid", "init": "xavier_uniform",
                              "bias_init": "zeros"}}
    rep = gradscope.sweep(sc, ["network.depth=2:10:5"], boundary_spec="first_layer_gradient_ratio=1e-2", workers=1)
    ys = [r["measured"]["first_layer_gradient_ratio"] for r in rep.records]
    xs = [2, 4, 6, 8, 10]
    i = next(k for k in range(4) if (ys[k] - 1e-2) * (ys[k + 1] - 1e-2) < 0)
    t = math.log(1e-2 / ys[i]) / math.log(ys[i + 1] / ys[i])  # the ratio decays geometrically: log-interpolated
    expect = xs[i] + t * (xs[i + 1] - xs[i])
    assert rep.boundary[0]["measured"] == pytest.approx(expect)
    assert "mean_field" not in rep.boundary[0]
    with pytest.raises(GradscopeError, match="numeric first grid key"):
        gradscope.sweep(sc, ["network.activation=relu,tanh"], boundary_spec="gradient_spread=10", workers=1)


def test_plot(tmp_path):
    pytest.importorskip("matplotlib")
    f = tiny_file(tmp_path)
    png = tmp_path / "phase.png"
    r = invoke("sweep", "-w", "1", str(f), "-g", "network.init.sigma_w2=0.5,1.5,2.5", "-g",
               "network.bias_init.sigma_b2=0,0.05", "--plot", str(png))
    assert r.exit_code == 0 and png.stat().st_size > 10_000
    assert np.frombuffer(png.read_bytes()[:8], dtype=np.uint8).tolist() == [137, 80, 78, 71, 13, 10, 26, 10]


def test_residual_alpha_and_norm_placement_axes():
    """Keys of the layer abstraction (issue 9) need nothing special: any key --set accepts is a grid key."""
    sc = {**TINY, "network": {**TINY["network"], "input_dim": 8, "depth": 4, "activation": "relu",
                              "init": "he_normal", "bias_init": "zeros", "residual": {"every": 2, "alpha": 1.0},
                              "norm": "layernorm"}}
    rep = gradscope.sweep(sc, ["network.residual.alpha=0.25,4", "network.norm_placement=pre,post"], workers=1)
    assert [r["error"] for r in rep.records] == [None] * 4
    spreads = {tuple(r["point"].values()): r["summary"]["gradient_spread"] for r in rep.records}
    assert len(set(spreads.values())) == 4  # every axis changes the numbers
    for r in rep.records[::3]:
        direct = gradscope.run(load_scenario(sc, overrides=[f"{k}={v}" for k, v in r["point"].items()]),
                               keep_gradients=False)
        assert r["summary"] == json.loads(to_json(direct.summary.to_dict()))


def test_progress_counts_every_point_including_resumed_ones(tmp_path):
    calls = []
    out = tmp_path / "p.csv"
    gradscope.sweep(TINY, ["seed=1:4:4"], workers=1, output=out, output_format="csv",
                    progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4)]
    calls.clear()
    rep = gradscope.sweep(TINY, ["seed=1:4:4"], workers=1, output=out, output_format="csv", resume=True,
                          progress=lambda done, total: calls.append((done, total)))
    assert calls == [(4, 4)] and rep.resumed == 4
