"""The README's examples run as printed.

Every `$ gradscope …` line in a README code block is run from the repository root; the exit code it
must give is the one its printed output implies (2 when the block shows `gradscope: error:`, 1 when it
shows a failed check or expectation, else 0), and the lines it prints in the README must appear in its
real output (the README may elide lines with `...`). The scenario-format example must load, run and meet
its own `expect:` block, and the Python API example must run.

A README example that names an input file must use a file that exists in the repository, or one the
test writes (FILES below): add it there with the content the README's output implies.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import gradscope
from gradscope.checks import evaluate
from gradscope.cli import app

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")

# Input files that README examples name but the repository does not ship.
FILES = {
    "bad.yaml": "name: bad\nnetwork:\n  activation: sigmoidd\n",
}


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"^```(\w*)\n(.*?)^```", text, flags=re.S | re.M)]


def shell_examples() -> list[tuple[str, list[str]]]:
    """(command line, the lines printed after it up to the next prompt) for every `$ gradscope` line."""
    out = []
    for lang, body in code_blocks(README):
        if lang not in ("", "console", "text"):
            continue
        lines = body.splitlines()
        for i, line in enumerate(lines):
            if not line.startswith("$ gradscope"):
                continue
            shown = []
            for nxt in lines[i + 1:]:
                if nxt.startswith("$ "):
                    break
                shown.append(nxt)
            out.append((line[2:], shown))
    return out


def _expected_exit(shown: list[str]) -> int:
    text = "\n".join(shown)
    if "gradscope: error:" in text:
        return 2
    if re.search(r"^FAIL |expectation not met|[1-9]\d* failed", text, flags=re.M):
        return 1
    return 0


def _command(cmdline: str) -> list[str]:
    argv = shlex.split(cmdline.split("  #")[0].split(" # ")[0])
    assert argv[0] == "gradscope"
    return argv[1:]


EXAMPLES = shell_examples()


def test_the_readme_has_shell_examples():
    assert len(EXAMPLES) >= 3, EXAMPLES


@pytest.mark.parametrize(("cmdline", "shown"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_shell_example_runs_as_printed(cmdline, shown, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("COLUMNS", "110")
    monkeypatch.setenv("NO_COLOR", "1")
    args = _command(cmdline)
    for i, arg in enumerate(args):
        if arg in FILES:
            p = tmp_path / arg
            p.write_text(FILES[arg], encoding="utf-8")
            args[i] = str(p)
        elif arg.endswith((".yaml", ".yml")) and not (REPO / arg).exists():
            pytest.fail(f"README example `{cmdline}` names {arg}, which is neither in the repository nor in "
                        "tests/test_readme.py FILES")
    r = CliRunner().invoke(app, args)
    assert r.exit_code == _expected_exit(shown), (cmdline, r.output)
    assert "Traceback" not in r.output
    real = re.sub(r"\s+", " ", r.output.replace(str(tmp_path) + os.sep, ""))
    # the first printed line (or, for an error, the message up to an elision) must be real output
    first = next((s for s in shown if s.strip() and not s.strip().startswith("...")), None)
    if first is not None:
        head = re.sub(r"\s+", " ", first.split("…")[0]).strip()
        assert head[:60] in real, (cmdline, head, r.output[:2000])


def _yaml_block_after(heading: str) -> str:
    section = README.split(heading, 1)[1]
    lang, body = next(b for b in code_blocks(section) if b[0] == "yaml")
    return body


def test_scenario_format_example_runs_and_meets_its_own_expectations():
    raw = yaml.safe_load(_yaml_block_after("## Scenario format"))
    assert raw.get("expect"), "the scenario-format example should show an expect: block"
    report = gradscope.run(raw)
    assert evaluate(report, dict(raw["expect"])) == []


def test_python_api_example_runs(tmp_path, monkeypatch):
    code = next(body for lang, body in code_blocks(README.split("## Python API", 1)[1]) if lang == "python")
    monkeypatch.chdir(REPO)
    code = code.replace('"run.npz"', repr(str(tmp_path / "run.npz")))
    exec(compile(code, "README.md (Python API)", "exec"), {})
    assert (tmp_path / "run.npz").exists()


def test_api_functions_are_not_shadowed_by_their_submodules():
    import importlib

    importlib.import_module("gradscope.compare")  # binds the submodule on the package, unless guarded
    assert callable(gradscope.compare) and gradscope.compare.__module__ == "gradscope.compare"
    assert callable(gradscope.run) and callable(gradscope.load_scenario)
