"""YAML scenario text: safe loading with a line for every key, bounded before any value is built.

Its own module so that what does not read YAML (the bundled default scenario, a dict given to the API,
`--version`, `--help`) does not import PyYAML (~15 ms: its reader compiles a large regular expression).
"""

from __future__ import annotations

from typing import Any

import yaml

from .errors import ScenarioError, cut, shown
from .scenario import MAX_FILE_BYTES, MAX_NESTING, MAX_NODES


def _line_map(node: yaml.Node | None, path: tuple[Any, ...] = (), out: dict | None = None) -> dict:
    """{key path tuple: 1-based line} for every mapping key and sequence item of a composed YAML tree."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue  # a complex key is refused by validation (keys are names)
            p = (*path, key_node.value)
            out[p] = key_node.start_mark.line + 1
            _line_map(value_node, p, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            p = (*path, i)
            out[p] = item.start_mark.line + 1
            _line_map(item, p, out)
    return out


_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML was built with it
_INT_TAG = "tag:yaml.org,2002:int"
_MAX_INT_CHARS = 4000  # below Python's int/str conversion limit (4300 digits)


def _yaml_problem(exc: yaml.YAMLError) -> tuple[str, int | None]:
    """One line of a PyYAML/libyaml error (no multi-line context dump) and its 1-based line, if any."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or exc.context or "malformed YAML"
        if isinstance(exc, yaml.constructor.ConstructorError):
            what = f"{what} (only plain YAML is allowed: scenarios are safe-loaded, tags like !!python are refused)"
        return " ".join(what.split()), (mark.line + 1 if mark is not None else None)
    if isinstance(exc, yaml.reader.ReaderError):
        return (f"character {shown(chr(exc.character)) if isinstance(exc.character, int) else '?'} at position "
                f"{exc.position} is not allowed in YAML ({exc.reason})"), None
    return " ".join(str(exc).split()), None


def _check_nesting(text: str, source: str) -> None:
    """Refuse YAML nested deeper than MAX_NESTING, from the event stream (no tree, no recursion yet)."""
    loader = _SAFE_LOADER(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > MAX_NESTING:
                    mark = event.start_mark
                    raise ScenarioError(f"the YAML is nested more than {MAX_NESTING} levels deep; a scenario "
                                        "needs a handful", source=source,
                                        line=mark.line + 1 if mark is not None else None)
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
    except yaml.MarkedYAMLError as exc:  # libyaml's scanner (PyYAML ≥ 6.0.4) stops at 1000 levels on its own
        if "nesting depth" not in str(exc.problem):
            raise
        mark = exc.problem_mark
        raise ScenarioError(f"the YAML is nested more than {MAX_NESTING} levels deep; a scenario needs a handful",
                            source=source, line=mark.line + 1 if mark is not None else None) from None
    finally:
        loader.dispose()


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_node_graph(root: yaml.Node, source: str) -> None:
    """Refuse recursive aliases (`a: &a [*a]`), trees over MAX_NODES nodes once aliases are expanded
    ("billion laughs") and integers too long to convert; iterative, each distinct node visited once."""
    size: dict[int, int] = {}
    entered: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        if leaving:
            size[key] = min(1 + sum(size[id(c)] for c in _children(node)), MAX_NODES + 1)
            if size[key] > MAX_NODES:
                raise ScenarioError(f"the YAML expands to more than {MAX_NODES:,} values (through its aliases); "
                                    "a scenario needs far fewer", source=source, line=node.start_mark.line + 1)
            continue
        if key in size:
            continue
        if key in entered:
            raise ScenarioError("a recursive alias: this node contains itself (e.g. `a: &a [*a]`)",
                                source=source, line=node.start_mark.line + 1)
        if isinstance(node, yaml.ScalarNode) and node.tag == _INT_TAG and len(node.value) > _MAX_INT_CHARS:
            raise ScenarioError(f"an integer of {len(node.value):,} digits; no key takes numbers that long",
                                source=source, line=node.start_mark.line + 1)
        entered.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node))


def _check_duplicate_keys(node: yaml.Node, source: str, path: tuple[str, ...] = ()) -> None:
    """Refuse a key given twice in one mapping (YAML would silently keep the last one), naming its key path
    and line. Runs after _check_node_graph, so the tree is finite, shallow and of bounded size."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            ident = (key_node.tag, key_node.value)
            line = key_node.start_mark.line + 1
            if ident in seen:
                raise ScenarioError(f"duplicate key: {shown(key_node.value)} is already given on line {seen[ident]}; "
                                    "YAML would silently keep only the last value, so give each key once",
                                    source=source, path=".".join(cut(p) for p in (*path, key_node.value)),
                                    line=line)
            seen[ident] = line
            _check_duplicate_keys(value_node, source, (*path, key_node.value))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicate_keys(item, source, (*path, str(i)))


def parse_yaml(text: str, source: str) -> tuple[Any, dict]:
    """Safe-load YAML text; returns (data, line map). YAML errors become ScenarioError with the line.

    Bounded: nesting depth, recursive aliases and alias expansion are checked before any value is built.
    """
    if len(text) > MAX_FILE_BYTES:
        raise ScenarioError(f"{len(text):,} characters, over the {MAX_FILE_BYTES:,}-character limit of a "
                            "scenario", source=source)
    try:
        _check_nesting(text, source)
        loader = _SAFE_LOADER(text)
        try:
            node = loader.get_single_node()  # one parse: the node tree gives the lines, then the values
            if node is not None:
                _check_node_graph(node, source)
                _check_duplicate_keys(node, source)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        what, line = _yaml_problem(exc)
        raise ScenarioError(f"invalid YAML: {what}", source=source, line=line) from None
    except (ValueError, OverflowError) as exc:  # a value YAML accepts but Python cannot convert
        raise ScenarioError(f"invalid YAML value: {cut(str(exc), 120)}", source=source) from None
    return data, _line_map(node)
