"""The gradscope command line: typer commands over the Python API. No numerics here.

Exit codes: 0 ran (and, for check, everything passed); 1 ran but an expectation or
check failed; 2 bad input (usage, YAML, schema, file); 130 interrupted.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer import Abort
from typer.core import TyperGroup

from . import __version__
from .completion import complete_list, complete_set, complete_variants
from .errors import GradscopeError, printable, shown

try:  # typer ≥ 0.20 vendors click as typer._click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # pragma: no cover - older typer on click
    from click.exceptions import ClickException
    try:
        from click.exceptions import NoArgsIsHelpError
    except ImportError:
        class NoArgsIsHelpError(ClickException):  # type: ignore[no-redef]
            """click < 8.2 prints the help itself and never raises this."""

class _Group(TyperGroup):
    """The command group; a bad option value is one line naming the option (no click "Usage:" block)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:  # `gradscope` alone prints the help
            typer.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        except ClickException as exc:
            sys.exit(_usage_error(exc))
        except Abort:
            typer.echo("gradscope: interrupted", err=True)
            sys.exit(130)
        sys.exit(rv if isinstance(rv, int) else 0)


def _usage_error(exc: ClickException) -> int:
    """Print a click usage error as one line: the option and what is wrong with its value."""
    message = printable(" ".join(exc.format_message().split()))
    if len(message) > 300:
        message = message[:299] + "…"
    hint = ""
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        hint = f" (see '{ctx.command_path} --help')"
    typer.echo(f"gradscope: error: {message}{hint}", err=True)
    return exc.exit_code


app = typer.Typer(
    cls=_Group,
    name="gradscope",
    help="See how gradients flow through a neural network: per-layer gradient tables and diagnostics "
         "from a YAML scenario.",
    add_completion=True,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"gradscope {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: Annotated[bool, typer.Option("--version", "-V", callback=_version, is_eager=True,
                                                help="Print the version and exit.")] = False) -> None:
    """gradscope: gradient-flow analysis of feed-forward networks."""


@contextmanager
def _errors() -> Iterator[None]:
    """Bad input -> one paragraph on stderr and exit 2; Ctrl-C -> exit 130; never a traceback.

    Every command enters it once its modules are imported: the garbage collector paused for the imports
    (runtime.pause_collection) resumes here."""
    from .runtime import resume_collection

    resume_collection()
    try:
        yield
    except GradscopeError as exc:
        typer.echo(f"gradscope: error: {exc.message}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        typer.echo("gradscope: interrupted", err=True)
        raise typer.Exit(130) from None


# ---------------------------------------------------------------- shared options

# str, not Path: typer would turn '' into Path('.') and the error would call an empty argument a directory
ScenarioArg = Annotated[str | None, typer.Argument(
    help="Scenario YAML file; without it, the bundled default (deep-sigmoid).", show_default=False)]
SeedsOpt = Annotated[int | None, typer.Option("--seeds", min=1, help="Ensemble size (overrides the file).")]
SeedOpt = Annotated[int | None, typer.Option("--seed", min=0, help="Base seed (overrides the file).")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", "-s", help="Override a scenario key: --set network.depth=20 (repeatable; value parsed as YAML).",
    autocompletion=complete_set)]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]
OutputOpt = Annotated[Path | None, typer.Option("--output", "-o", help="Write the output to FILE.")]
NoColorOpt = Annotated[bool, typer.Option("--no-color", help="No colours (NO_COLOR is honoured too).")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Only the verdict line (table format).")]
MaxMemOpt = Annotated[str, typer.Option("--max-memory", help="Refuse scenarios whose arrays need more "
                                        "than this (e.g. 2GiB, 512MiB; auto: half of the memory available now).")]
PlotOpt = Annotated[list[Path] | None, typer.Option(
    "--plot", help="Draw a figure to FILE.png, .svg or .pdf (repeatable; needs pip install 'gradscope[plot]').")]
TrainOpt = Annotated[int | None, typer.Option("--train-steps", min=1, help="Train for N steps (adds or "
                                              "overrides the train: block).")]


JacobianOpt = Annotated[bool, typer.Option("--jacobian", help="Also analyze the input–output Jacobian's singular "
                                           "values (as analysis: {jacobian: {...}} in the file).")]


def _width(output: Path | None) -> int:
    from .render import make_console

    return 160 if output is not None else make_console().width


def _emit(text: str | None, renderable: Any, output: Path | None, no_color: bool, soft_wrap: bool = False) -> None:
    """Print text (json/csv/markdown) or a rich renderable to stdout or to --output (text imports no rich)."""
    if output is not None:
        try:
            with open(output, "w", encoding="utf-8") as fh:
                if text is not None:
                    fh.write(text)
                else:
                    from .render import make_console

                    make_console(file=fh, no_color=True, width=160).print(renderable, soft_wrap=soft_wrap)
        except OSError as exc:
            raise GradscopeError(f"--output {output}: cannot write ({exc.strerror})") from None
        return
    if text is not None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        from .render import make_console

        make_console(no_color=no_color).print(renderable, soft_wrap=soft_wrap)


def _show(format: Format, output: Path | None, no_color: bool, *, json: Callable[[], Any],
          csv: Callable[[], str], markdown: Callable[[Any], str], table: Callable[[Any], Any]) -> None:
    """Render a report in the chosen format (only the chosen one is built) and emit it. markdown and table
    are called with the render module, imported for them only: JSON and CSV text do not import rich."""
    if format is Format.json:
        from .jsontext import to_json

        _emit(to_json(json()), None, output, no_color)
        return
    if format is Format.csv:
        _emit(csv(), None, output, no_color)
        return
    from . import render

    if format is Format.markdown:
        _emit(markdown(render), None, output, no_color)
    else:
        _emit(None, table(render), output, no_color)


@contextmanager
def _progress(description: str, *, enabled: bool | None) -> Iterator[Callable[[int, int], None] | None]:
    """render.progress_bar; when it is off (enabled=False), no bar and no import of rich."""
    if enabled is False:
        yield None
        return
    from .render import progress_bar

    with progress_bar(description, enabled=enabled) as progress:
        yield progress


def _plot_paths(paths: list[Path] | None) -> list[Path]:
    """The --plot files, checked (extension, matplotlib installed) before any work is done."""
    if not paths:
        return []
    from .plot import check_paths

    check_paths(paths)
    return list(paths)


def _load(scenario: str | Path | None, set_: list[str] | None, seed: int | None, seeds: int | None,
          train_steps: int | None = None) -> Any:
    from .scenario import load_scenario

    overrides = list(set_ or [])
    if train_steps is not None:
        overrides.append(f"train.steps={train_steps}")
    return load_scenario(scenario, overrides=overrides, seed=seed, seeds=seeds)


# ---------------------------------------------------------------- run


@app.command()
def run(scenario: ScenarioArg = None, seeds: SeedsOpt = None, seed: SeedOpt = None, set_: SetOpt = None,
        format: FormatOpt = Format.table, output: OutputOpt = None,
        save_arrays: Annotated[Path | None, typer.Option(
            "--save-arrays", help="Write x, y, W{l}, b{l}, dW{l}, db{l}, loss (and gamma{l}, beta{l}, their "
                                  "gradients and dropout masks) to FILE.npz.")] = None,
        train_steps: TrainOpt = None, max_memory: MaxMemOpt = "auto", no_color: NoColorOpt = False,
        quiet: QuietOpt = False, plot: PlotOpt = None, jacobian: JacobianOpt = False,
        eval_: Annotated[bool, typer.Option("--eval", help="Measure without dropout (as model.eval()); training "
                                                          "steps still drop units.")] = False) -> None:
    """Analyze one scenario: per-layer gradient table, verdict and findings.

    Exits 1 when the scenario has an expect: block that is not met.

    \b
    Example:
      gradscope run scenarios/relu-he.yaml --seeds 64 --set network.depth=50
    """
    from . import api
    from .engine import parse_size

    with _errors():
        plots = _plot_paths(plot)
        sc = _load(scenario, set_, seed, seeds, train_steps)
        with _progress(f"training {sc.name}", enabled=None if sc.train else False) as progress:
            report = api.run(sc, max_memory=parse_size(max_memory), progress=progress,
                             keep_gradients=save_arrays is not None, jacobian=jacobian or None, eval_mode=eval_)
        if save_arrays is not None:
            api.save_arrays(report, save_arrays)
        if plots:
            from .plot import report_figure, save

            figure = report_figure(report)
            for path in plots:
                save(figure, path)
        _show(format, output, no_color, json=report.to_dict, csv=lambda: _run_csv(report),
              markdown=lambda render: render.run_markdown(report),
              table=lambda render: render.run_renderable(report, quiet=quiet, width=_width(output)))
        if sc.expect is not None:
            from .checks import evaluate

            failures = evaluate(report, dict(sc.expect))
            if failures:
                typer.echo(f"gradscope: expectation not met: {'; '.join(failures)}", err=True)
                raise typer.Exit(1)


def _run_csv(report: Any) -> str:
    from .csvtext import run_csv

    return run_csv(report)


# ---------------------------------------------------------------- check


class CheckFormat(StrEnum):
    table = "table"
    json = "json"
    junit = "junit"
    github = "github"
    sarif = "sarif"


@app.command()
def check(scenarios: Annotated[list[str], typer.Argument(help="Scenario files to check.", show_default=False)],
          seeds: SeedsOpt = None, seed: SeedOpt = None, set_: SetOpt = None,
          format: Annotated[CheckFormat, typer.Option(
              "--format", "-f", help="table (one line each), json, junit (JUnit XML for test reporters) or "
                                     "github (GitHub Actions annotations on the scenario's lines) or sarif "
                                     "(SARIF 2.1.0 for code scanning).")]
          = CheckFormat.table, output: OutputOpt = None, max_memory: MaxMemOpt = "auto",
          jobs: Annotated[int | None, typer.Option(
              "--jobs", "-j", min=1, help="Worker processes (default: one per free core; 1 = in this process).")]
          = None,
          baseline: Annotated[Path | None, typer.Option(
              "--baseline", help="Fail scenarios whose per-layer gradient norms, verdict or finding codes "
                                 "drifted from this baseline file.")] = None,
          write_baseline: Annotated[Path | None, typer.Option(
              "--write-baseline", help="Record each scenario's per-layer medians, verdict and finding codes "
                                       "to this file.")] = None,
          tolerance: Annotated[float | None, typer.Option(
              "--tolerance", help="Relative drift allowed on the norms (default 0.05, or the baseline's).")] = None,
          no_color: NoColorOpt = False, quiet: QuietOpt = False, plot: PlotOpt = None) -> None:
    """CI mode: run each scenario, apply its expect: block and the diagnostics, one line each.

    Without expect.verdict a scenario passes only if it is healthy with no error findings (findings
    in expect.allow excepted). Exit 0 if all pass, 1 if any fails, 2 on bad input (a scenario
    that could not run is reported and the others still run).

    \b
    Examples:
      gradscope check scenarios/*.yaml
      gradscope check scenarios/*.yaml --format junit --output gradscope-junit.xml
      gradscope check scenarios/*.yaml --format github --baseline gradscope-baseline.json
    """
    import time

    from . import ci, render
    from .engine import parse_size
    from .executor import default_jobs, map_ordered
    from .scenario import parse_override

    with _errors():
        n_jobs = max(1, min(jobs or default_jobs(len(scenarios)), len(scenarios)))
        limit = parse_size(max_memory)
        if max_memory.strip().lower() == "auto" and n_jobs > 1:  # shared by the workers running at once
            limit //= n_jobs
        plots = _plot_paths(plot)
        overrides = list(set_ or [])
        for text in overrides:  # a bad --set is one error, not one per scenario
            parse_override(text)
        if baseline is not None and write_baseline is not None:
            raise GradscopeError("give either --baseline (compare) or --write-baseline (record), not both")
        if tolerance is not None and not 0 < tolerance < 1:
            raise GradscopeError(f"--tolerance {tolerance:g}: must be between 0 and 1 (0.05 = 5%)")
        base = ci.load_baseline(baseline) if baseline is not None else None
        tol = tolerance if tolerance is not None else (base.tolerance if base else ci.DEFAULT_TOLERANCE)
        if base is not None and ci.digits_for(tol) > base.digits:
            raise GradscopeError(f"--tolerance {tol:g} is finer than {baseline} was rounded for (tolerance "
                                 f"{base.tolerance:g}); write it again with --write-baseline {baseline} "
                                 f"--tolerance {tol:g}")
        tasks = [(str(path), overrides, seed, seeds, limit, bool(plots)) for path in scenarios]
        live = format is CheckFormat.table and output is None  # one line per scenario as soon as it is checked
        console = render.make_console(no_color=no_color)
        t0 = time.perf_counter()
        outcomes: list[ci.Outcome] = []
        results = []
        for outcome in map_ordered(ci.check_one, tasks, n_jobs):
            result = ci.compare_baseline(outcome, base, tol) if base is not None else outcome.result
            outcomes.append(outcome)
            results.append(result)
            if result.error is not None and not live:  # the live table shows it as an ERROR line
                typer.echo(f"gradscope: error: {result.error}", err=True)
            if live and not (quiet and result.passed):
                console.print(render.check_line(result), soft_wrap=True)
        seconds = time.perf_counter() - t0
        if plots:
            from .plot import save_check

            ran = [(o.report, r) for o, r in zip(outcomes, results, strict=True) if o.report is not None]
            if ran:
                for path in plots:
                    save_check([rep for rep, _ in ran], [r for _, r in ran], path)
        if write_baseline is not None:
            n = ci.write_baseline(write_baseline, outcomes, tol)
            typer.echo(f"wrote the baseline of {n} scenario{'s' if n != 1 else ''} to {write_baseline}", err=True)
        if format is CheckFormat.json:
            failed = [r for r in results if not r.passed]
            _emit(render.to_json({"gradscope_version": __version__, "passed": not failed,
                                  "results": [r.to_dict() for r in results]}), None, output, no_color)
        elif format is CheckFormat.junit:
            _emit(ci.junit_xml(results, seconds), None, output, no_color)
        elif format is CheckFormat.sarif:
            _emit(render.to_json(ci.sarif(results)), None, output, no_color)
        elif format is CheckFormat.github:
            lines = []
            for r in results:
                if not (quiet and r.passed):
                    lines += [render.check_line(r).plain, *ci.github_lines(r)]
            lines.append(render.check_summary(results).plain)
            _emit("\n".join(lines) + "\n", None, output, no_color)
        elif live:
            console.print(render.check_summary(results), soft_wrap=True)
        else:
            _emit(None, render.check_renderable(results, quiet=quiet), output, no_color, soft_wrap=True)
        if any(r.error is not None for r in results):
            raise typer.Exit(2)
        if any(not r.passed for r in results):
            raise typer.Exit(1)


# ---------------------------------------------------------------- compare


@app.command()
def compare(variants: Annotated[list[str], typer.Argument(
                help="Two or more loss names (mse ce), activations (sigmoid tanh relu), init schemes "
                     "(standard xavier_uniform he_normal) or scenario files.", show_default=False,
                autocompletion=complete_variants)],
            scenario: Annotated[Path | None, typer.Option(
                "--scenario", help="Scenario to vary (default: the bundled classify-blobs).")] = None,
            axis: Annotated[str | None, typer.Option(
                "--axis", help="Force the varied axis: loss | activation | init | scenario.")] = None,
            probs: Annotated[list[str] | None, typer.Option(
                "--probs", help="A prediction vector, e.g. 0.8,0.1,0.1 (repeatable): loss and gradient per loss.")]
            = None,
            target: Annotated[int | None, typer.Option("--target", min=0,
                                                       help="True class of --probs (default 0).")] = None,
            train: Annotated[int | None, typer.Option("--train", min=1, help="Train every variant N steps: a "
                                                      "training race.")] = None,
            seeds: SeedsOpt = None, seed: SeedOpt = None, set_: SetOpt = None, format: FormatOpt = Format.table,
            output: OutputOpt = None,
            curve_csv: Annotated[Path | None, typer.Option(
                "--curve-csv", help="Also write the output-layer curve (losses) to this CSV file.")] = None,
            save_arrays: Annotated[Path | None, typer.Option(
                "--save-arrays", help="Write each variant's arrays to FILE-<label>.npz (keys as for run).")]
            = None,
            max_memory: MaxMemOpt = "auto", no_color: NoColorOpt = False, quiet: QuietOpt = False,
            plot: PlotOpt = None, jacobian: JacobianOpt = False) -> None:
    """Compare variants of one scenario along one axis, side by side.

    \b
    Examples:
      gradscope compare mse ce --probs 0.8,0.1,0.1 --probs 0.8,0.15,0.05 --target 0
      gradscope compare xavier_uniform he_normal --scenario scenarios/relu-xavier.yaml
      gradscope compare mse ce --train 300
    """
    from . import render
    from .compare import compare as run_compare
    from .compare import parse_probs
    from .engine import parse_size

    with _errors():
        if target is not None and not probs:
            raise GradscopeError("--target needs --probs (it is the true class of the --probs vectors)")
        vectors = parse_probs(probs, target or 0) if probs else None
        plots = _plot_paths(plot)
        with render.progress_bar(f"training {len(variants)} variants",
                                 enabled=None if train is not None else False) as progress:
            cmp = run_compare(scenario, variants, axis=axis, overrides=list(set_ or []), seed=seed, seeds=seeds,
                              probs=vectors, target=target, train_steps=train, max_memory=parse_size(max_memory),
                              progress=progress, jacobian=jacobian or None)
        if curve_csv is not None:
            if cmp.curve is None:
                raise GradscopeError("--curve-csv needs a comparison of losses")
            try:
                curve_csv.write_text(render.curve_csv(cmp), encoding="utf-8")
            except OSError as exc:
                raise GradscopeError(f"--curve-csv {curve_csv}: cannot write ({exc.strerror})") from None
        if save_arrays is not None:
            from .api import save_arrays as save

            for label, report in zip(cmp.labels, cmp.reports, strict=True):
                safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in Path(label).stem)
                save(report, save_arrays.with_name(f"{save_arrays.stem}-{safe}{save_arrays.suffix or '.npz'}"))
        if plots:
            from .plot import compare_figure, save

            figure = compare_figure(cmp)
            for path in plots:
                save(figure, path)
        _show(format, output, no_color, json=cmp.to_dict, csv=lambda: render.compare_csv(cmp),
              markdown=lambda render: render.compare_markdown(cmp),
              table=lambda render: render.hanging(render.compare_verdicts(cmp), _width(output), 2) if quiet
              else render.compare_renderable(cmp, width=_width(output)))


# ---------------------------------------------------------------- list, schema, init


@app.command("list")
def list_(what: Annotated[str | None, typer.Argument(
        help="activations | losses | inits | datasets | optimizers | norms (default: all).", show_default=False,
        autocompletion=complete_list)] = None,
          format: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
          no_color: NoColorOpt = False) -> None:
    """List the activations, losses, init schemes, datasets, optimizers and norm layers gradscope knows.

    \b
    Example:
      gradscope list losses
    """
    from .catalog import catalog

    with _errors():
        cat = catalog()
        if what is not None:
            if what not in cat:
                from .registry import suggest

                raise GradscopeError(f"unknown list {shown(what)}{suggest(what[:100], list(cat))}; choose from "
                                     f"{', '.join(cat)}")
            cat = {what: cat[what]}
        if format is Format.json:
            from .jsontext import to_json

            _emit(to_json(cat), None, None, no_color)
        else:
            from .render import catalog_renderable

            _emit(None, catalog_renderable(cat), None, no_color)


@app.command()
def schema(output: OutputOpt = None) -> None:
    """Print the JSON Schema of the scenario format (for editors' YAML language servers).

    \b
    Example:
      gradscope schema -o gradscope.schema.json
      then, as the first line of a scenario:
      # yaml-language-server: $schema=gradscope.schema.json
    """
    from .jsontext import to_json
    from .schema import scenario_schema

    with _errors():
        _emit(to_json(scenario_schema()), None, output, False)


@app.command()
def init(path: Annotated[Path, typer.Argument(help="Where to write the starter scenario.")] = Path(
             "scenario.yaml"),
         force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False) -> None:
    """Write a commented starter scenario that runs as written.

    \b
    Example:
      gradscope init my.yaml && gradscope run my.yaml
    """
    from .scenario import STARTER_TEMPLATE

    with _errors():
        if path.exists() and not force:
            raise GradscopeError(f"{path} exists; use --force to overwrite it")
        try:
            path.write_text(STARTER_TEMPLATE.format(path=path, name=path.stem), encoding="utf-8")
        except OSError as exc:
            raise GradscopeError(f"{path}: cannot write ({exc.strerror})") from None
        typer.echo(f"wrote {path}; run it with: gradscope run {path}")


# ---------------------------------------------------------------- sweep


class SweepFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command()
def sweep(scenario: ScenarioArg = None,
          grid: Annotated[list[str] | None, typer.Option(
              "--grid", "-g", help="KEY=VALUES (repeatable; the grid is the product): any key --set accepts; "
                                   "VALUES a list relu,tanh, a range 0.5:4:15 or a log range 1e-3:1:13:log. "
                                   "Default: the scenario's sweep: block.", autocompletion=complete_set)] = None,
          boundary: Annotated[str | None, typer.Option(
              "--boundary", help="METRIC=VALUE: where METRIC crosses VALUE along the first grid key, for each value "
                                 "of the others, beside the prediction (default for a σ_w² axis: "
                                 "backward_factor=1, the critical line).")] = None,
          format: Annotated[SweepFormat, typer.Option("--format", "-f", help="table (heat map / table), json or "
                                                      "csv (one record per point).")] = SweepFormat.table,
          output: Annotated[Path | None, typer.Option(
              "--output", "-o", help="Append each point's record to FILE as it finishes (CSV for --format csv or a "
                                     ".csv name, else JSON Lines that become one JSON document at the end).")]
          = None,
          resume: Annotated[bool, typer.Option("--resume", help="Skip the points --output already holds.")] = False,
          quiet: Annotated[bool, typer.Option("--quiet", "-q", help="One line per point as it finishes, then the "
                                              "boundary.")] = False,
          plot: PlotOpt = None,
          scheduler: Annotated[str | None, typer.Option(
              "--scheduler", help="Run the points on Dask distributed: tcp://host:port (a running scheduler) or "
                                  "local (a LocalCluster); needs pip install 'gradscope[dask]'.")] = None,
          workers: Annotated[int | None, typer.Option(
              "--workers", "-w", min=1, help="Worker processes (default: one per free core; 1 = in this process; "
                                             "with --scheduler local: the cluster's workers).")] = None,
          seeds: SeedsOpt = None, seed: SeedOpt = None, set_: SetOpt = None, max_memory: MaxMemOpt = "auto",
          no_color: NoColorOpt = False) -> None:
    """Run a scenario over a grid of key values: heat map by verdict, the measured boundary, records per point.

    Exit 0 if every point passes its check (the expect: block, or healthy), 1 if one fails, 2 on bad input or
    when a point could not run (it is recorded with its error and the others still run); 130 on Ctrl-C (the
    points done are in --output; --resume continues).

    \b
    Examples:
      gradscope sweep scenarios/phase-tanh.yaml
      gradscope sweep --grid network.depth=2:20:10 --grid network.activation=relu,tanh
      gradscope sweep my.yaml -g network.init.sigma_w2=0.5:4:15 -g network.bias_init.sigma_b2=0,0.05 -o out.csv
    """
    from . import render
    from .engine import parse_size
    from .render_sweep import point_line, sweep_renderable
    from .sweep import parse_boundary
    from .sweep import sweep as run_sweep

    results_format = format.value if format is not SweepFormat.table else (
        "csv" if output is not None and output.suffix.lower() == ".csv" else "json")
    with _errors():
        if resume and output is None:
            raise GradscopeError("--resume needs --output FILE: the file the finished points were written to")
        plots = _plot_paths(plot)
        if boundary is not None:
            try:
                parse_boundary(boundary)
            except ValueError as exc:
                raise GradscopeError(f"--boundary {shown(boundary)}: {exc}") from None
        for text in set_ or []:
            from .scenario import parse_override

            parse_override(text)
        live = quiet and format is SweepFormat.table
        console = render.make_console(no_color=no_color)
        metric = boundary.partition("=")[0].strip() if boundary else "backward_factor"

        def on_record(record: dict[str, Any]) -> None:
            if live:
                console.print(point_line(record, metric), soft_wrap=True)

        limit = parse_size(max_memory) if max_memory.strip().lower() != "auto" else None
        try:
            with render.progress_bar("sweep", enabled=None if not live else False) as progress:
                report = run_sweep(scenario, grid or None, boundary_spec=boundary, overrides=list(set_ or []),
                                   seed=seed, seeds=seeds, scheduler=scheduler, workers=workers, output=output,
                                   output_format=results_format, resume=resume, max_memory=limit,
                                   progress=progress, on_record=on_record)
        except KeyboardInterrupt:
            kept = f"; the finished points are in {output} (--resume continues)" if output is not None else ""
            typer.echo(f"gradscope: interrupted{kept}", err=True)
            raise typer.Exit(130) from None
        if plots:
            from .plot import save
            from .plot_sweep import sweep_figure

            figure = sweep_figure(report)
            for path in plots:
                save(figure, path)
        if format is SweepFormat.json:
            if output is None:
                _emit(render.to_json(report.to_dict()), None, None, no_color)
        elif format is SweepFormat.csv:
            if output is None:
                from .sweep import csv_text

                _emit(csv_text(report.records, report.axes), None, None, no_color)
        else:
            # a heat map has a column per value: wider than 80 when written to a file or a pipe
            wide = render.make_console(no_color=no_color, width=None if sys.stdout.isatty() else 160)
            wide.print(sweep_renderable(report, quiet=quiet, width=wide.width), soft_wrap=quiet)
        if output is not None:
            typer.echo(f"wrote {len(report.records)} points to {output}", err=True)
        for r in report.records:
            if r.get("error") is not None and not live:
                typer.echo(f"gradscope: error: point "
                           f"{' '.join(f'{k}={v}' for k, v in r['point'].items())}: {r['error']}", err=True)
        if report.exit_code:
            raise typer.Exit(report.exit_code)


# ---------------------------------------------------------------- the command group main() runs


class _Commands(MutableMapping[str, Any]):
    """The group's commands by name, in definition order, each built by typer the first time it is looked up.

    typer builds a command's parameters from its function's signature and annotations (~2 ms each); a
    call runs one command, so the others are never built. While the group's help lists them (`listing`),
    an unbuilt command is a stand-in with its help and flags only: that listing reads nothing else.
    """

    def __init__(self, infos: Sequence[Any], build: Callable[[Any], Any], stand_in: Callable[[Any], Any]) -> None:
        self._infos = {_command_name(info): info for info in infos}
        self._built: dict[str, Any] = {}
        self._build = build
        self._stand_in = stand_in
        self.listing = False

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            info = self._infos[name]
            if self.listing:
                return self._stand_in(info)
            self._built[name] = self._build(info)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._infos.setdefault(name, None)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._infos[name]
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._infos)

    def __len__(self) -> int:
        return len(self._infos)


def _command_name(info: Any) -> str:
    from typer.main import get_command_name

    return info.name or get_command_name(info.callback.__name__)


class _LazyGroup(_Group):
    """_Group over `_Commands`: names without building the commands; the help's listing from stand-ins."""

    commands: _Commands

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: Any) -> Any:
        """Run the command, the allocator tuned first (not for --help, --version or a usage error)."""
        from .runtime import tune_allocator

        tune_allocator()
        return super().invoke(ctx)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        self.commands.listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self.commands.listing = False


def command_group() -> _Group:
    """`app` as the click group typer would build for `app()`, its commands built on first lookup; the
    allocator is tuned (runtime.tune_allocator) when it invokes a command.

    The same typer functions build the group (its --version, completion options and settings) and each
    command; `gradscope run` builds only `run`, and `gradscope --help` lists the commands from their
    docstrings. tests/test_startup.py checks the help and the commands against typer's eager build.
    """
    import copy
    import inspect

    from typer.core import TyperCommand
    from typer.main import get_command, get_command_from_info

    shell = copy.copy(app)  # the app without its commands: typer builds the group, callback and options
    shell.registered_commands = []
    group = get_command(shell)
    assert isinstance(group, _Group)

    def build(info: Any) -> Any:
        return get_command_from_info(info, pretty_exceptions_short=app.pretty_exceptions_short,
                                     rich_markup_mode=app.rich_markup_mode)

    def stand_in(info: Any) -> Any:  # what typer's build passes of the help text and flags, as it passes it
        help_ = inspect.getdoc(info.callback) if info.help is None else inspect.cleandoc(info.help)
        return (info.cls or TyperCommand)(name=_command_name(info), help=help_, short_help=info.short_help,
                                          hidden=info.hidden, deprecated=info.deprecated,
                                          rich_markup_mode=app.rich_markup_mode)

    group.__class__ = _LazyGroup
    group.commands = _Commands(app.registered_commands, build, stand_in)
    return group


def main() -> None:
    """Console-script entry point."""
    try:
        command_group()()
    except KeyboardInterrupt:
        typer.echo("gradscope: interrupted", err=True)
        sys.exit(130)
