"""Figures the reliability suites measure, printed as one table at the end of the run.

A test calls ``record_figure(check, measured, target)`` after it has asserted its invariant; the
``pytest_terminal_summary`` hook in ``tests/conftest.py`` prints every recorded row as the markdown table of
``spec/reliability.md`` §4 and, when ``SW_FIGURES_FILE`` is set, writes the rows there as JSON (``make soak``
uses that to refresh ``docs/reliability.md``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Figure:
    check: str
    measured: str
    target: str


FIGURES: list[Figure] = []


def record_figure(check: str, measured: str, target: str) -> None:
    FIGURES.append(Figure(check, measured, target))


def figures_table() -> str:
    lines = ["| check | measured | target |", "| --- | --- | --- |"]
    lines += [f"| {f.check} | {f.measured} | {f.target} |" for f in FIGURES]
    return "\n".join(lines)


def write_figures() -> Path | None:
    target = os.environ.get("SW_FIGURES_FILE")
    if not target or not FIGURES:
        return None
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([asdict(f) for f in FIGURES], ensure_ascii=False, indent=2) + "\n")
    return path
