"""The bundled default scenario as parse_yaml reads it: what `gradscope run` with no file loads, without
importing PyYAML (~15 ms of every default run).

Written from gradscope/scenarios/<SOURCE> by `python -m gradscope.default_scenario`; a test parses the YAML
file and compares (tests/test_scenario.py), so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any

SOURCE = "deep-sigmoid.yaml"
RAW: dict[str, Any] = {'name': 'deep-sigmoid',
 'description': 'Eight sigmoid hidden layers with Xavier init and cross-entropy; the gradient vanishes '
                'toward the input',
 'seed': 0,
 'seeds': 16,
 'network': {'input_dim': 32,
             'depth': 8,
             'width': 64,
             'output_dim': 10,
             'activation': 'sigmoid',
             'init': 'xavier_uniform'},
 'loss': 'cross_entropy',
 'data': {'kind': 'gaussian', 'batch_size': 128},
 'expect': {'verdict': 'vanishing',
            'findings': ['vanishing-gradient'],
            'min_gradient_spread': 1000,
            'layers': [{'layer': 1, 'status': 'vanishing', 'max_gradient_ratio': 0.001}]}}
LINES: dict[tuple[Any, ...], int] = {('name',): 5,
 ('description',): 6,
 ('seed',): 7,
 ('seeds',): 8,
 ('network',): 9,
 ('network', 'input_dim'): 10,
 ('network', 'depth'): 11,
 ('network', 'width'): 12,
 ('network', 'output_dim'): 13,
 ('network', 'activation'): 14,
 ('network', 'init'): 15,
 ('loss',): 16,
 ('data',): 17,
 ('data', 'kind'): 18,
 ('data', 'batch_size'): 19,
 ('expect',): 20,
 ('expect', 'verdict'): 21,
 ('expect', 'findings'): 22,
 ('expect', 'findings', 0): 22,
 ('expect', 'min_gradient_spread'): 23,
 ('expect', 'layers'): 24,
 ('expect', 'layers', 0): 25,
 ('expect', 'layers', 0, 'layer'): 25,
 ('expect', 'layers', 0, 'status'): 25,
 ('expect', 'layers', 0, 'max_gradient_ratio'): 25}


def _write() -> None:
    import pprint
    from pathlib import Path

    from .scenario import bundled_path, parse_yaml

    raw, lines = parse_yaml(bundled_path(SOURCE).read_text(encoding="utf-8"), SOURCE)
    path = Path(__file__)
    text = path.read_text(encoding="utf-8")
    head, tail = text.split("RAW: dict[str, Any] = ", 1)
    tail = tail.split("\n\n\ndef _write", 1)[1]
    body = (f"RAW: dict[str, Any] = {pprint.pformat(raw, width=110, sort_dicts=False)}\n"
            f"LINES: dict[tuple[Any, ...], int] = {pprint.pformat(lines, width=110, sort_dicts=False)}")
    path.write_text(f"{head}{body}\n\n\ndef _write{tail}", encoding="utf-8")
    print(f"wrote {path} from {SOURCE}")


if __name__ == "__main__":
    _write()
