"""Where a measured window's CPU went on this machine: the processes under test, PostgreSQL, the rest.

Read from /proc (Linux): per process, user + system time (``/proc/<pid>/stat``); PostgreSQL as the sum over every
process named ``postgres`` (its backends come and go with connections: one that started inside the window counts
in full, one that ended inside it is lost — the harness keeps its connections open across a window); the machine
from ``/proc/stat``. Used to say what bounds a stage on two cores: a stage's throughput can never exceed the
cores divided by the machine CPU that one document costs.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, float] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    return name, (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


def _postgres() -> dict[int, float]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None and stat[0] == "postgres":
            found[int(entry.name)] = stat[1]
    return found


def family(pid: int) -> list[int]:
    """``pid`` and every process descended from it (a uvicorn with ``--workers`` runs its workers as children)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        parents.setdefault(int(text[text.rindex(")") + 2 :].split()[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def _machine() -> tuple[float, float]:
    """(busy, all) CPU seconds of the whole machine since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / _TICK, sum(values) / _TICK


@dataclass
class CpuWindow:
    """``start`` before a window, ``stop`` after it: CPU seconds by party over the window."""

    pids: dict[str, list[int]] = field(default_factory=dict)
    _start: dict[str, float] = field(default_factory=dict)
    _postgres: dict[int, float] = field(default_factory=dict)
    _machine: tuple[float, float] = (0.0, 0.0)

    def start(self, pids: dict[str, Iterable[int]]) -> None:
        self.pids = {label: list(p) for label, p in pids.items()}
        self._start = {label: self._sum(p) for label, p in self.pids.items()}
        self._postgres = _postgres()
        self._machine = _machine()

    def stop(self, docs: int) -> dict[str, float]:
        """CPU milliseconds per document by party (``machine`` is every core's busy time, ``cores`` how many of
        the machine's cores were busy on average)."""
        busy, total = _machine()
        busy, total = busy - self._machine[0], total - self._machine[1]
        seconds = {label: self._sum(p) - self._start[label] for label, p in self.pids.items()}
        now = _postgres()
        seconds["postgres"] = sum(cpu - self._postgres.get(pid, 0.0) for pid, cpu in now.items())
        seconds["other"] = max(0.0, busy - sum(seconds.values()))
        result = {f"{label}_cpu_ms_per_doc": round(s * 1000 / docs, 3) for label, s in seconds.items()} if docs else {}
        cores = os.cpu_count() or 1
        result["machine_cpu_ms_per_doc"] = round(busy * 1000 / docs, 3) if docs else 0.0
        result["cores_busy"] = round(busy / total * cores, 2) if total else 0.0
        return result

    @staticmethod
    def _sum(pids: Iterable[int]) -> float:
        return sum(stat[1] for pid in pids if (stat := _stat(pid)) is not None)
