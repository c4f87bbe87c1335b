"""Embedded mode (``sw serve``) on a SQLite file, alone: single-document accept with the matcher, the dispatcher,
the mock agencies and the webhook delivery inside the one process, then the backlog it left drained.

    python -m bench.embedded_probe [--seconds 12] [--concurrency 32] [--baseline] [--drain] [--py-spy FILE.txt]
                                   [--env SW_X=Y ...]

The same load as bench/run.py's embedded run (bench/loadgen.py in its own process, the bench workload's single
documents, closed loop), without the rest of the bench: a before/after check for a change to the embedded loop
or the SQLite settings. Prints one JSON line: accept docs/s and latency, the server's CPU ms per accepted
document over the window (``process_time`` of the uvicorn process: survives a busy machine better than rates),
how long the backlog took to drain after the load stopped, and the load average. ``--baseline`` also measures
bench/baseline_app.py on a SQLite file of its own; ``--drain`` (with ``--env SW_EMBEDDED_MATCHER=false``) has one
standalone matcher drain the backlog the run left, as bench/run.py does; ``--py-spy`` records the server during
the window (``py-spy`` must be installed: it is not a dependency of the project).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import workload
from bench.cpu import _stat
from bench.procs import Children, free_port, wait_http, wait_until

PY = sys.executable


def _uvicorn(app: str, port: int) -> list[str]:
    return [
        PY, "-m", "uvicorn", app, "--factory", "--host", "127.0.0.1", "--port", str(port),
        "--workers", "1", "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


def _pending(path: Path) -> int:
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as conn:
        return int(conn.execute("SELECT count(*) FROM submission WHERE state = 'pending'").fetchone()[0])


async def _loadgen(children: Children, work: Path, name: str, spec: dict[str, Any], env: dict[str, str]) -> Any:
    spec_path, out_path = work / f"{name}.spec.json", work / f"{name}.result.json"
    spec_path.write_text(json.dumps(spec))
    child = children.start(f"loadgen-{name}", [PY, "-m", "bench.loadgen", str(spec_path), str(out_path)], env)
    while child.alive():  # noqa: ASYNC110 - a child process, not an event of this loop
        await asyncio.sleep(0.1)
    children.stop(child)
    if not out_path.exists():
        raise RuntimeError(f"load generator {name} failed:\n{child.tail()}")
    return json.loads(out_path.read_text())


def _summary(run: dict[str, Any]) -> dict[str, Any]:
    m = run["measured"]
    return {
        "docs_per_s": m["docs_per_s"],
        "p50_ms": m["latency_ms"].get("p50"),
        "p99_ms": m["latency_ms"].get("p99"),
        "statuses": run["statuses"],
        "acked": run["distinct_keys_acked"],
    }


async def probe(args: argparse.Namespace, children: Children, work: Path) -> dict[str, Any]:
    from bench.baseline_app import create_table
    from bench.run import _migrate

    admin = "probe-admin-token-0123456789abcdef"
    app_db, base_db = work / "single-window.db", work / "baseline.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SW_", "BENCH_"))} | {
        "PYTHONUNBUFFERED": "1",
        "SW_ADMIN_TOKEN": admin,
        "SW_RATE_LIMIT_INTAKE": "0",
        "SW_RATE_LIMIT_QUERIES": "0",
        "SW_MOCK_LATENCY_MS": "20",
        "SW_SUPERVISION_RATE_REGULAR": "0",
        "SW_RISK_INSPECT_ON_WARNING": "false",
        "SW_MOCK_SEED": "0",
        "SW_DATABASE_URL": f"sqlite+aiosqlite:///{app_db}",
        "BENCH_DATABASE_URL": f"sqlite+aiosqlite:///{base_db}",
    }
    env |= dict(item.split("=", 1) for item in args.env)
    await asyncio.to_thread(_migrate, env["SW_DATABASE_URL"])
    spec = {
        "mode": "single",
        "start": 0,
        "seed": 0,
        "concurrency": args.concurrency,
        "warmup_s": 2,
        "duration_s": args.seconds,
        "timeout_s": 120,
    }
    result: dict[str, Any] = {"load_average_start": list(os.getloadavg()), "env": args.env}
    if args.baseline:
        await create_table(env["BENCH_DATABASE_URL"])
        port = free_port()
        baseline = children.start("baseline", _uvicorn("bench.baseline_app:create_app", port), env)
        await wait_http(f"http://127.0.0.1:{port}/healthz", baseline, 60)
        run = await _loadgen(
            children,
            work,
            "baseline",
            spec
            | {"base_url": f"http://127.0.0.1:{port}", "prefix": "QZS", "purchases": 3000, "keys": {}}
            | {"cycle": True},
            env,
        )
        children.stop(baseline)
        result["baseline"] = _summary(run)
    port = free_port()
    service = children.start("service", _uvicorn("app.main:create_app", port), env)
    base = f"http://127.0.0.1:{port}"
    await wait_http(f"{base}/readyz", service, 90)
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:
        keys = await workload.file_everything(client, admin)
    pid = service.pid
    assert pid is not None
    spy: asyncio.subprocess.Process | None = None
    if args.py_spy:
        spy = await asyncio.create_subprocess_exec(
            *[shutil.which("py-spy") or "py-spy", "record", "-p", str(pid), "-f", "raw", "-o", args.py_spy],
            *["-d", str(int(args.seconds) + 2), "-r", "50", "--nonblocking"],
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
    cpu_before, t0 = _stat(pid), time.monotonic()
    purchases = max(200, int(args.seconds * 300))
    run = await _loadgen(
        children, work, "single", spec | {"base_url": base, "prefix": "QAS", "purchases": purchases, "keys": keys}, env
    )
    cpu_after, wall = _stat(pid), time.monotonic() - t0
    pending_at_end = _pending(app_db)
    matcher_on = env.get("SW_EMBEDDED_MATCHER", "true").lower() not in ("false", "0")
    drain_s = await wait_until(lambda: _async_true(_pending(app_db) == 0), "drain", 600, 0.05) if matcher_on else 0.0
    cpu_drained = _stat(pid)
    if spy is not None:
        await asyncio.wait_for(spy.wait(), 60)
    if not (cpu_before and cpu_after and cpu_drained):
        raise RuntimeError("the server exited during the run")
    children.stop(service)
    if args.drain:
        result["drain"] = await _drain(children, app_db, env)
    with contextlib.closing(sqlite3.connect(app_db)) as conn:
        stored = int(conn.execute("SELECT count(*) FROM document").fetchone()[0])
        states = dict(conn.execute("SELECT state || '/' || coalesce(outcome, ''), count(*) FROM submission GROUP BY 1"))
    accepted = run["distinct_keys_acked"]
    result["accept"] = _summary(run)
    result["accept"]["server_cpu_ms_per_doc_acked"] = round((cpu_after[1] - cpu_before[1]) * 1000 / accepted, 3)
    result["accept"]["server_cores_busy"] = round((cpu_after[1] - cpu_before[1]) / wall, 2)
    result["pending_at_end"] = pending_at_end
    result["drain_after_s"] = round(drain_s, 2)
    result["server_cpu_ms_per_doc_incl_drain"] = round((cpu_drained[1] - cpu_before[1]) * 1000 / accepted, 3)
    result["stored"], result["submissions"] = stored, states
    if stored != accepted:
        result["error"] = f"{accepted} acknowledged, {stored} stored"
    result["load_average_end"] = list(os.getloadavg())
    if args.baseline:
        result["ratio"] = round(result["accept"]["docs_per_s"] / result["baseline"]["docs_per_s"], 3)
    return result


async def _drain(children: Children, app_db: Path, env: dict[str, str]) -> dict[str, Any]:
    """The backlog left by the run drained by one standalone matcher (``sw matcher``), as bench/run.py does."""
    from bench.pipeline import drain_rate

    samples = [(time.monotonic(), _pending(app_db))]
    matcher = children.start("matcher", [PY, "-m", "app.matcher"], env)
    pid = matcher.pid
    if pid is None:
        raise RuntimeError("the matcher did not start")
    while samples[-1][1] > 0:
        if not matcher.alive() or time.monotonic() - samples[0][0] > 600:
            raise RuntimeError(f"the matcher did not drain the backlog:\n{matcher.tail()}")
        await asyncio.sleep(0.05)
        samples.append((time.monotonic(), _pending(app_db)))
    cpu = _stat(pid)
    children.stop(matcher)
    rate = drain_rate(samples)
    backlog = samples[0][1]
    return rate | {"matcher_cpu_ms_per_doc_incl_start": round(cpu[1] * 1000 / backlog, 3) if cpu and backlog else None}


async def _async_true(value: bool) -> bool:
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--baseline", action="store_true")
    parser.add_argument("--drain", action="store_true", help="with SW_EMBEDDED_MATCHER=false: drain the backlog after")
    parser.add_argument("--py-spy", default=None)
    parser.add_argument("--env", action="append", default=[], help="SW_X=Y for the server (repeatable)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, databases)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sw-embedded-probe-"))
    children = Children(work)
    try:
        result = asyncio.run(probe(args, children, work))
    finally:
        children.stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    result["work"] = str(work) if args.keep else None
    print(json.dumps(result))


if __name__ == "__main__":
    main()
