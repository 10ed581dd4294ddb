"""`gradscope sweep`: a grid over scenario keys -> one full run per point -> records, the measured boundary.

    grid (KEY=VALUES, or the file's `sweep:` block) -> one scenario per point (the `--set` mechanism)
      -> an executor (in this process | a local process pool | Dask distributed) -> one record per point,
      appended to --output as it finishes -> SweepReport: records in grid order, the boundary

Each point runs with one BLAS thread whatever runs it, so the records are byte-identical across executors.
Values shared between points (the mean-field critical σ_w² of each σ_b²) are computed once here and handed
to the workers. Rendering lives in render_sweep.py, pictures in plot_sweep.py.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import GradscopeError, ScenarioError, shown
from .grid import (
    MEASURES,
    SUMMARY_NAMES,
    Axis,
    as_number,
    canonical,
    parse_boundary,
    parse_values,
)

MAX_POINTS = 100_000
DASK_INSTALL = "pip install 'gradscope[dask]'"

DEFAULT_BOUNDARY = ("backward_factor", 1.0)
CSV_SUMMARY = ("summary.gradient_spread", "summary.mean_backward_gain", "summary.chi1", "summary.q_star",
               "summary.loss.median", "summary.overflow_seeds", "summary.theory.sigma_w2", "summary.theory.sigma_b2",
               "summary.theory.critical_sigma_w2", "summary.theory.depth_scale_grad")


# ---------------------------------------------------------------- the grid


def parse_grid_option(text: str) -> tuple[str, Any]:
    """'network.depth=2:20:10' -> ('network.depth', '2:20:10')."""
    if "=" not in text:
        raise GradscopeError(f"--grid {shown(text)}: expected KEY=VALUES, e.g. --grid network.init.sigma_w2=0.5:4:15 "
                             "or --grid network.activation=relu,tanh")
    key, _, values = text.partition("=")
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise GradscopeError(f"--grid {shown(text)}: empty key path")
    return key, values


def make_axes(grid: Mapping[str, Any] | Sequence[str], what: str = "--grid") -> tuple[Axis, ...]:
    """Axes from {key: values} or ['KEY=VALUES', ...]; the grid is their product."""
    items = [parse_grid_option(t) for t in grid] if not isinstance(grid, Mapping) else list(grid.items())
    if not items:
        raise GradscopeError("no grid: give --grid KEY=VALUES (repeatable) or a `sweep: {grid: ...}` block")
    axes = []
    seen: set[str] = set()
    for key, spec in items:
        if key in seen:
            raise GradscopeError(f"{what} {key}: the key is given twice")
        seen.add(key)
        try:
            values, log = parse_values(spec)
        except ValueError as exc:
            raise GradscopeError(f"{what} {key}={cut_spec(spec)}: {exc}") from None
        axes.append(Axis(key, values, log))
    total = math.prod(len(a.values) for a in axes)
    if total > MAX_POINTS:
        raise GradscopeError(f"{what}: the grid has {total:,} points, over the limit of {MAX_POINTS:,}")
    return tuple(axes)


def cut_spec(spec: Any) -> str:
    text = spec if isinstance(spec, str) else json.dumps(spec, default=str)
    return text if len(text) <= 60 else text[:59] + "…"


def points(axes: Sequence[Axis]) -> list[dict[str, Any]]:
    """Every point of the grid, first axis outermost: [{key: value, ...}, ...]."""
    return [dict(zip([a.key for a in axes], combo, strict=True)) for combo in itertools.product(*[a.values
                                                                                                  for a in axes])]


def point_id(point: Mapping[str, Any]) -> str:
    return canonical(dict(point))


# ---------------------------------------------------------------- one point


def _clean(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def measured_depth_scale(delta_norms: Sequence[float | None], settled: Sequence[int] | None) -> float | None:
    """ξ from the decay of ‖δ_l‖: least squares of ln ‖δ_l‖² over layer l, ln χ = -slope, ξ = -1/ln χ (χ < 1).

    delta_norms: median ‖δ_l‖ of the hidden layers l = 1..L-1; settled: the layers l whose transition
    l -> l+1 is at the fixed point (theory.settled_layers), None/empty: every hidden layer."""
    import numpy as np

    if settled:
        layers = sorted({*settled, max(settled) + 1})
    else:
        layers = list(range(1, len(delta_norms) + 1))
    layers = [l for l in layers if 1 <= l <= len(delta_norms)]
    values = [delta_norms[l - 1] for l in layers]
    if len(layers) < 3 or any(v is None or not v > 0 or not math.isfinite(v) for v in values):
        return None
    slope = float(np.polyfit(np.asarray(layers, dtype=float), np.log(np.square(np.asarray(values, dtype=float))),
                             1)[0])
    log_chi = -slope
    return -1.0 / log_chi if log_chi < 0 else None


def point_record(index: int, point: Mapping[str, Any], report: Any, expect: dict[str, Any] | None) -> dict[str, Any]:
    """One point's record: the grid values, verdict, check outcome, finding codes, what was measured and
    predicted (MEASURES), and the run's whole summary."""
    from .checks import check_report
    from .jsontext import json_safe

    s = report.summary
    theory = dict(s.theory)
    at_q = theory.get("measured_backward_factor_at_q_star")
    backward = at_q if at_q is not None else theory.get("measured_backward_factor")  # no layer at q*: all of them
    hidden = [lay for lay in report.layers[:-1]]
    xi = measured_depth_scale([lay.median("delta_norm") for lay in hidden], theory.get("settled_layers"))
    chi1 = _clean(theory.get("chi1"))
    first = report.layers[0]
    result = check_report(report, str(index), expect)
    return json_safe({
        "index": index,
        "point": dict(point),
        "verdict": s.verdict,
        "passed": result.passed,
        "failures": list(result.reasons),
        "findings": list(dict.fromkeys(f.code for f in report.findings)),
        "measured": {"backward_factor": _clean(backward),
                     "backward_factor_all": _clean(theory.get("measured_backward_factor")),
                     "depth_scale": xi,
                     "first_layer_gradient_ratio": _clean(first.median("gradient_ratio")),
                     "gradient_spread": _clean(s.gradient_spread)},
        "predicted": {"backward_factor": chi1,
                      "backward_factor_all": _clean(theory.get("predicted_backward_factor")),
                      "depth_scale": (-1.0 / math.log(chi1)) if chi1 is not None and 0 < chi1 < 1 else None,
                      "first_layer_gradient_ratio": _clean(first.predicted_gradient_ratio),
                      "gradient_spread": None},
        "summary": s.to_dict(),
        "error": None,
    })


def error_record(index: int, point: Mapping[str, Any], message: str) -> dict[str, Any]:
    return {"index": index, "point": dict(point), "verdict": None, "passed": False, "failures": [], "findings": [],
            "measured": dict.fromkeys(MEASURES), "predicted": dict.fromkeys(MEASURES), "summary": None,
            "error": message}


def run_point(index: int, point: dict[str, Any], scenario: Any, max_memory: int | None,
              critical: dict[tuple[Any, ...], float | None], pin_threads: bool) -> dict[str, Any]:
    """Run one point (module level: what the pool and Dask workers call). One BLAS thread (pin_threads sets it
    for a worker process; in-process the caller sets it around the loop); a point that cannot run (memory
    limit, bad combination) comes back as a record with its error."""
    from .api import run
    from .parallel import THREADS_ENV
    from .theory import prime_critical

    if pin_threads:
        os.environ[THREADS_ENV] = "1"
    prime_critical(critical)
    try:
        report = run(scenario, max_memory=max_memory, keep_gradients=False)
    except GradscopeError as exc:
        return error_record(index, point, exc.message)
    except MemoryError:
        return error_record(index, point, "out of memory while running this point")
    return point_record(index, point, report, dict(scenario.expect) if scenario.expect is not None else None)


# ---------------------------------------------------------------- executors


def _in_process(tasks: list[tuple[Any, ...]]) -> Iterator[dict[str, Any]]:
    from .parallel import THREADS_ENV

    saved = os.environ.get(THREADS_ENV)
    os.environ[THREADS_ENV] = "1"
    try:
        for task in tasks:
            yield run_point(*task)
    finally:
        if saved is None:
            os.environ.pop(THREADS_ENV, None)
        else:
            os.environ[THREADS_ENV] = saved


def _pool(tasks: list[tuple[Any, ...]], workers: int) -> Iterator[dict[str, Any]]:
    from .executor import map_unordered
    from .runtime import tune_allocator

    # the pool's workers are this command's own processes: the allocator tuning the command line makes for itself
    # (runtime.tune_allocator, about half a pass's time) applies to them too
    yield from map_unordered(run_point, tasks, workers, initializer=tune_allocator)


def _dask(tasks: list[tuple[Any, ...]], scheduler: str, workers: int | None) -> Iterator[dict[str, Any]]:
    client, cluster = dask_client(scheduler, workers)
    try:
        from distributed import as_completed

        futures = [client.submit(run_point, *task, pure=False) for task in tasks]
        try:
            for fut in as_completed(futures):
                yield fut.result()
        finally:
            client.cancel(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def dask_client(scheduler: str, workers: int | None) -> tuple[Any, Any]:
    """A distributed.Client on `scheduler` (tcp://host:port) or on a new LocalCluster ('local': `workers`
    processes, one thread each). Dask missing -> GradscopeError with the install line."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise GradscopeError(f"--scheduler {scheduler} needs Dask distributed, which is not installed: "
                             f"{DASK_INSTALL}") from None
    if scheduler == "local":
        from .executor import default_jobs

        n = workers or default_jobs(MAX_POINTS)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=":0",  # a free port (None does not disable it: dask#8136)
                               env={"GRADSCOPE_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                                    "MKL_NUM_THREADS": "1"})
        return Client(cluster), cluster
    try:
        return Client(scheduler, timeout="10s"), None
    except (OSError, TimeoutError) as exc:
        raise GradscopeError(f"--scheduler {scheduler}: cannot reach the Dask scheduler ({exc})") from None


def check_scheduler(scheduler: str | None, workers: int | None) -> None:
    if scheduler is None:
        return
    if scheduler != "local" and not re.fullmatch(r"(tcp|tls|inproc|ucx)://\S+", scheduler):
        raise GradscopeError(f"--scheduler {shown(scheduler)}: expected 'local' (a Dask LocalCluster here) or a "
                             "scheduler address tcp://host:port")
    if scheduler != "local" and workers is not None:
        raise GradscopeError(f"--workers: the Dask scheduler {scheduler} has its own workers; --workers sizes the "
                             "local pool or --scheduler local")
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise GradscopeError(f"--scheduler {scheduler} needs Dask distributed, which is not installed: "
                             f"{DASK_INSTALL}") from None


# ---------------------------------------------------------------- results files


def _flat(record: Mapping[str, Any], path: str) -> Any:
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def csv_columns(axes: Sequence[Axis]) -> list[str]:
    return ["index", *[a.key for a in axes], "verdict", "passed", "findings", "error",
            *[f"measured.{m}" for m in MEASURES], *[f"predicted.{m}" for m in MEASURES], *CSV_SUMMARY]


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    if isinstance(value, list):
        return ";".join(map(str, value))
    if isinstance(value, dict):
        return canonical(value)
    return str(value)


def csv_row(record: Mapping[str, Any], axes: Sequence[Axis]) -> list[str]:
    row: list[Any] = [record["index"], *[record["point"][a.key] for a in axes], record["verdict"], record["passed"],
                      record["findings"], record["error"]]
    row += [record["measured"].get(m) for m in MEASURES] + [record["predicted"].get(m) for m in MEASURES]
    row += [_flat(record, c) for c in CSV_SUMMARY]
    return [_csv_cell(v) for v in row]


def csv_text(records: Iterable[Mapping[str, Any]], axes: Sequence[Axis], header: bool = True) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(csv_columns(axes))
    for r in records:
        w.writerow(csv_row(r, axes))
    return buf.getvalue()


def _from_csv_cell(text: str) -> Any:
    if text == "":
        return None
    if text in ("true", "false"):
        return text == "true"
    try:
        return as_number(text)
    except ValueError:
        return text


def _record_from_csv(row: dict[str, str], axes: Sequence[Axis]) -> dict[str, Any]:
    """A record read back from a CSV results file: the grid value is the grid's own (matched by its text)."""
    point = {}
    for a in axes:
        by_text = {_csv_cell(v): v for v in a.values}
        if row.get(a.key) not in by_text:
            raise ValueError(f"{a.key}={row.get(a.key)!r} is not a value of this grid")
        point[a.key] = by_text[row[a.key]]
    rec: dict[str, Any] = {"index": int(row["index"]), "point": point, "verdict": row["verdict"] or None,
                           "passed": row["passed"] == "true", "failures": [],
                           "findings": [c for c in row["findings"].split(";") if c], "error": row["error"] or None,
                           "measured": {m: _from_csv_cell(row[f"measured.{m}"]) for m in MEASURES},
                           "predicted": {m: _from_csv_cell(row[f"predicted.{m}"]) for m in MEASURES}}
    summary: dict[str, Any] = {}
    for c in CSV_SUMMARY:
        node = summary
        parts = c.split(".")[1:]
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = _from_csv_cell(row[c])
    rec["summary"] = summary if rec["error"] is None else None
    return rec


class ResultsFile:
    """--output: records appended as points finish (CSV rows, or JSON Lines that become one JSON document when
    the sweep completes). `resume=True` reads the finished points back and keeps them."""

    def __init__(self, path: Path, fmt: str, axes: Sequence[Axis], resume: bool) -> None:
        self.path, self.fmt, self.axes = path, fmt, tuple(axes)
        self.done: dict[str, dict[str, Any]] = self._read() if resume else {}
        try:
            with open(self.path, "w", encoding="utf-8") as fh:
                if fmt == "csv":
                    fh.write(csv_text(self.done.values(), self.axes))
                else:
                    fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in self.done.values())
        except OSError as exc:
            raise GradscopeError(f"--output {path}: cannot write ({exc.strerror})") from None

    def _read(self) -> dict[str, dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            raise GradscopeError(f"--resume {self.path}: cannot read ({getattr(exc, 'strerror', exc)})") from None
        records: list[dict[str, Any]] = []
        try:
            if self.fmt == "csv":
                rows = list(csv.DictReader(io.StringIO(text)))
                if rows and set(csv_columns(self.axes)) - set(rows[0]):
                    raise ValueError("its columns are not this grid's")
                for row in rows:
                    if None in row.values():  # a row cut short by an interrupted write
                        continue
                    records.append(_record_from_csv(row, self.axes))
            else:
                records = _json_records(text)
        except (ValueError, KeyError) as exc:
            raise GradscopeError(f"--resume {self.path}: the file holds another sweep or is not a sweep's results "
                                 f"({exc}); give another --output") from None
        keys = [a.key for a in self.axes]
        allowed = {point_id(p) for p in points(self.axes)}
        done = {}
        for r in records:
            if list(r.get("point", {})) != keys or point_id(r["point"]) not in allowed:
                raise GradscopeError(f"--resume {self.path}: the file holds the point {cut_spec(r.get('point'))}, "
                                     f"which is not in this grid ({', '.join(keys)}); give another --output")
            done[point_id(r["point"])] = r
        return done

    def append(self, record: dict[str, Any]) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                if self.fmt == "csv":
                    fh.write(csv_text([record], self.axes, header=False))
                else:
                    fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise GradscopeError(f"--output {self.path}: cannot write ({exc.strerror})") from None

    def finish(self, report: SweepReport) -> None:
        """A complete JSON sweep becomes one JSON document (what --format json prints); CSV stays as it is."""
        if self.fmt == "csv":
            return
        from .jsontext import to_json

        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(to_json(report.to_dict()), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:
            raise GradscopeError(f"--output {self.path}: cannot write ({exc.strerror})") from None


def _json_records(text: str) -> list[dict[str, Any]]:
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("{") and "\n{" not in stripped:  # a finished sweep: one JSON document
        try:
            doc = json.loads(stripped)
        except json.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and "points" in doc:
            return list(doc["points"])
    out = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # the last line, cut short by an interruption
                continue
            raise ValueError(f"line {i + 1} is not JSON") from None
        if not isinstance(rec, dict) or "point" not in rec:
            raise ValueError(f"line {i + 1} is not a point record")
        out.append(rec)
    return out


# ---------------------------------------------------------------- the boundary


def metric_pair(record: Mapping[str, Any], metric: str) -> tuple[float | None, float | None]:
    """(measured, predicted) of a metric in one record; predicted is None where there is none."""
    if record.get("error") is not None:
        return None, None
    if metric in MEASURES:
        return _num(record["measured"].get(metric)), _num(record["predicted"].get(metric))
    if metric.startswith("summary."):
        return _num(_flat(record, metric)), None
    summary = record.get("summary") or {}
    if metric in SUMMARY_NAMES:
        return _num(summary.get(metric)), None
    return _num((summary.get("theory") or {}).get(metric)), None


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x) if math.isfinite(x) else None


def crossings(xs: Sequence[float], ys: Sequence[float | None], value: float, log: bool) -> list[float]:
    """Where the curve through the points (x, y) crosses `value`, interpolated between neighbours: x in log space
    for log axes, y in log space when y and value are positive (gradient ratios and factors change
    geometrically with depth or σ_w²), else linearly. Points whose y is missing are skipped."""
    pts = [(x, y) for x, y in sorted(zip(xs, ys, strict=True)) if y is not None]
    out: list[float] = []
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        d0, d1 = y0 - value, y1 - value
        if d0 == 0.0:
            if not out or out[-1] != x0:
                out.append(x0)
            continue
        if d1 == 0.0 or (d0 < 0) == (d1 < 0):
            continue
        if y0 > 0 and y1 > 0 and value > 0:
            t = (math.log(value) - math.log(y0)) / (math.log(y1) - math.log(y0))
        else:
            t = d0 / (d0 - d1)
        if log:
            out.append(math.exp(math.log(x0) + t * (math.log(x1) - math.log(x0))))
        else:
            out.append(x0 + t * (x1 - x0))
    if pts and pts[-1][1] == value and (not out or out[-1] != pts[-1][0]):
        out.append(pts[-1][0])
    return out


def boundary(records: Sequence[Mapping[str, Any]], axes: Sequence[Axis], metric: str, value: float,
             critical: Callable[[Mapping[str, Any]], float | None] | None = None) -> list[dict[str, Any]]:
    """For each combination of the other axes: where `metric` crosses `value` along the first axis (measured),
    where its prediction crosses it on the same grid, and the mean-field critical σ_w² when that is the line."""
    first, rest = axes[0], axes[1:]
    if not first.numeric:
        raise GradscopeError(f"--boundary needs a numeric first grid key; {first.key} has the values "
                             f"{cut_spec(list(first.values))}")
    by_id = {point_id(r["point"]): r for r in records}
    out = []
    for combo in itertools.product(*[a.values for a in rest]):
        at = dict(zip([a.key for a in rest], combo, strict=True))
        row = [by_id.get(point_id({first.key: x, **at})) for x in first.values]
        pairs = [metric_pair(r, metric) if r is not None else (None, None) for r in row]
        xs = [float(x) for x in first.values]
        meas = crossings(xs, [m for m, _ in pairs], value, first.log)
        pred = crossings(xs, [p for _, p in pairs], value, first.log)
        entry: dict[str, Any] = {"at": at, "metric": metric, "value": value,
                                 "measured": meas[0] if meas else None, "predicted": pred[0] if pred else None,
                                 "crossings": len(meas)}
        ran = [m for m, _ in pairs if m is not None]
        if metric == "backward_factor" and any(
                r is not None and r.get("error") is None and r["measured"].get("backward_factor") is not None
                and ((r.get("summary") or {}).get("theory") or {}).get("measured_backward_factor_at_q_star") is None
                for r in row):
            entry["note"] = ("some points' layers do not reach the fixed point q* within the depth (at σ_b² = 0 "
                             "q_l approaches q* = 0 only like 1/l): their factor is over all hidden layers")
        if not meas:
            entry["side"] = ("below" if all(m < value for m in ran) else "above") if ran else None
        mf = critical(next(r for r in row if r is not None and r.get("error") is None)) if critical and any(
            r is not None and r.get("error") is None for r in row) else None
        if critical is not None:
            entry["mean_field"] = mf
            reference = mf
        else:
            reference = entry["predicted"]
        entry["relative_error"] = (entry["measured"] / reference - 1.0) if entry["measured"] is not None and \
            reference else None
        out.append(entry)
    return out


def sigma_w2_axis(records: Sequence[Mapping[str, Any]], axes: Sequence[Axis]) -> bool:
    """True when the first axis is the mean-field σ_w² itself (each point's theory.sigma_w2 is its value)."""
    first = axes[0]
    if not first.numeric:
        return False
    seen = 0
    for r in records:
        if r.get("error") is not None:
            continue
        sw2 = _num(((r.get("summary") or {}).get("theory") or {}).get("sigma_w2"))
        if sw2 is None or not math.isclose(sw2, float(r["point"][first.key]), rel_tol=1e-9):
            return False
        seen += 1
    return seen > 0


def _critical_of(record: Mapping[str, Any]) -> float | None:
    return _num(((record.get("summary") or {}).get("theory") or {}).get("critical_sigma_w2"))


# ---------------------------------------------------------------- the report


@dataclass
class SweepReport:
    """The result of `gradscope.sweep`: records in grid order, the boundary; to_dict() is the JSON."""

    version: str
    scenario: dict[str, Any]
    axes: tuple[Axis, ...]
    records: list[dict[str, Any]]
    boundary: list[dict[str, Any]] = field(default_factory=list)
    boundary_metric: tuple[str, float] | None = None
    resumed: int = 0
    seconds: float = 0.0
    executor: str = "in-process"

    @property
    def errors(self) -> int:
        return sum(r.get("error") is not None for r in self.records)

    @property
    def failed(self) -> int:
        return sum(r.get("error") is None and not r.get("passed") for r in self.records)

    @property
    def exit_code(self) -> int:
        """As `gradscope check`: 2 if a point could not run, 1 if a point failed its check, else 0."""
        return 2 if self.errors else (1 if self.failed else 0)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"gradscope_version": self.version, "scenario": self.scenario,
                               "grid": [a.to_dict() for a in self.axes], "points": self.records,
                               "boundary": self.boundary}
        if self.boundary_metric is not None:
            out["boundary_metric"] = {"metric": self.boundary_metric[0], "value": self.boundary_metric[1]}
        return out


def _base(scenario: Any) -> tuple[Any, Any]:
    """(what load_scenario takes for the points, the loaded base scenario)."""
    from .scenario import Scenario, load_scenario

    if isinstance(scenario, Scenario):
        return scenario.to_dict(), scenario
    if isinstance(scenario, str | Path) or scenario is None or isinstance(scenario, Mapping):
        return scenario, load_scenario(scenario)
    raise GradscopeError(f"expected a scenario file path, a dict or a Scenario, got {type(scenario).__name__}")


def _point_scenario(base_source: Any, overrides: Sequence[str], point: Mapping[str, Any],
                    seed: int | None, seeds: int | None) -> Any:
    from .scenario import load_scenario

    texts = [f"{k}={canonical(v)}" for k, v in point.items()]
    try:
        return load_scenario(base_source, overrides=[*overrides, *texts], seed=seed, seeds=seeds)
    except ScenarioError as exc:
        message = exc.message
        for t in texts:
            message = message.replace(f"--set {t}", f"--grid point {t}")
        raise ScenarioError(message) from None


def sweep(scenario: Any = None, grid: Mapping[str, Any] | Sequence[str] | None = None, *,
          boundary_spec: str | None = None, overrides: Sequence[str] = (), seed: int | None = None,
          seeds: int | None = None, scheduler: str | None = None, workers: int | None = None,
          output: str | Path | None = None, output_format: str = "json", resume: bool = False,
          max_memory: int | None = None, progress: Callable[[int, int], None] | None = None,
          on_record: Callable[[dict[str, Any]], None] | None = None) -> SweepReport:
    """Run every point of a grid over scenario keys and find the measured boundary.

    grid: {dotted.key: values} or ['KEY=VALUES', ...] (values: a list, 'a,b', 'start:stop:n[:log]'); None: the
    scenario's `sweep:` block. boundary_spec: 'METRIC=VALUE' (default: the file's, or backward_factor=1 when the
    first axis is σ_w²). workers: processes of the local pool (1: in this process; default one per free core);
    scheduler: 'local' (a Dask LocalCluster) or 'tcp://host:port' (a running Dask scheduler). output: append
    each record to this file as it finishes (output_format json|csv); resume: skip the points it already holds.
    """
    import time

    from . import __version__
    from .engine import default_max_memory
    from .executor import default_jobs
    from .theory import critical_entries, critical_sigma_w2

    t0 = time.perf_counter()
    if workers is not None and workers < 1:
        raise GradscopeError(f"--workers {workers}: must be at least 1")
    check_scheduler(scheduler, workers)
    source, base = _base(scenario)
    block = dict(base.sweep) if base.sweep is not None else {}
    if grid:
        axes = make_axes(grid)
    elif block.get("grid"):
        axes = make_axes(block["grid"], what=f"{base.source}: sweep.grid")
    else:
        raise GradscopeError("no grid: give --grid KEY=VALUES (repeatable) or a `sweep: {grid: ...}` block in "
                             "the scenario")
    spec = boundary_spec if boundary_spec is not None else block.get("boundary")
    try:
        chosen = parse_boundary(spec) if spec is not None else None
    except ValueError as exc:
        raise GradscopeError(f"--boundary: {exc}") from None
    if chosen is not None and not axes[0].numeric:
        raise GradscopeError(f"--boundary needs a numeric first grid key; {axes[0].key} has the values "
                             f"{cut_spec(list(axes[0].values))}")

    grid_points = points(axes)
    scenarios: list[Any] = []
    invalid: dict[int, str] = {}
    for i, p in enumerate(grid_points):
        try:
            scenarios.append(_point_scenario(source, overrides, p, seed, seeds))
        except ScenarioError as exc:
            scenarios.append(None)
            invalid[i] = exc.message
    if len(invalid) == len(grid_points):
        first = min(invalid)
        raise GradscopeError(f"no point of the grid is a valid scenario; the first: {invalid[first]}")

    results = ResultsFile(Path(output), output_format, axes, resume) if output is not None else None
    done = results.done if results is not None else {}
    records: dict[str, dict[str, Any]] = dict(done)
    total = len(grid_points)
    if progress:
        progress(len(records), total)

    def finished(record: dict[str, Any]) -> None:
        records[point_id(record["point"])] = record
        if results is not None:
            results.append(record)
        if on_record is not None:
            on_record(record)
        if progress:
            progress(len(records), total)

    # theory shared by the points: the critical σ_w² of each (activation, σ_b²), computed once, sent to workers
    for sc in scenarios:
        if sc is not None and sc.depth > 0 and len({(a.name, repr(a.params)) for a in sc.activations}) == 1:
            from .inits import layer_sigmas

            _, sb2 = layer_sigmas(sc)
            critical_sigma_w2(sc.activations[0].name, sb2[1] if sc.n_layers > 2 else sb2[0],
                              dict(sc.activations[0].params))
    critical = critical_entries()
    # the memory limit of a point: as given; else half of the memory available here (shared by the pool's
    # workers), or, on Dask, what the worker that runs it has (None: run() decides there)
    mem: int | None = max_memory if max_memory is not None or scheduler is not None else default_max_memory()
    todo = [i for i, p in enumerate(grid_points) if point_id(p) not in records]
    for i in todo:
        if i in invalid:
            finished(error_record(i, grid_points[i], invalid[i]))
    todo = [i for i in todo if i not in invalid]
    n_workers = 1 if scheduler is None and not todo else (workers or default_jobs(len(todo)))
    if scheduler is None and n_workers > 1 and mem is not None and max_memory is None:
        mem //= n_workers  # shared by the workers running at once
    tasks = [(i, grid_points[i], scenarios[i], mem, critical, scheduler is not None or n_workers > 1)
             for i in todo]
    if scheduler is not None:
        stream = _dask(tasks, scheduler, workers)
        executor = f"dask {scheduler}"
    elif n_workers == 1 or len(tasks) <= 1:
        stream = _in_process(tasks)
        executor = "in-process"
    else:
        stream = _pool(tasks, n_workers)
        executor = f"{n_workers} local workers"
    for record in stream:
        finished(record)

    ordered = [records[point_id(p)] for p in grid_points]
    report = SweepReport(__version__, base.to_dict(), axes, ordered, resumed=len(done), executor=executor)
    if chosen is None and sigma_w2_axis(ordered, axes):
        chosen = DEFAULT_BOUNDARY
    if chosen is not None:
        metric, value = chosen
        line = metric == "backward_factor" and value == 1.0 and sigma_w2_axis(ordered, axes)
        report.boundary = boundary(ordered, axes, metric, value, critical=_critical_of if line else None)
        report.boundary_metric = chosen
    report.seconds = time.perf_counter() - t0
    if results is not None:
        results.finish(report)
    return report
