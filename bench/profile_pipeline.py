"""Profiles of the staged pipeline's two CPU paths, in-process, on a PostgreSQL database of its own:

    python -m bench.profile_pipeline [--docs 400] [--batch 1000] [--top 25]

1. **accept**: single-document POSTs (the bench workload, one after another) through the ASGI app
   (httpx ASGITransport, no server, no matcher), beside the same POSTs to the bare baseline app;
2. **match**: one micro-batch of ``--batch`` accepted documents (accepted by batches first, no matcher), applied by
   one ``run_round`` of the match stage (app/services/match_stage.py) with ``match_batch_size = --batch``.

For each: wall time and this process's CPU (``time.process_time``) per document, SQL statements per document
(SQLAlchemy's ``before_cursor_execute``), and the top entries of cProfile by own time and by cumulative time.
PostgreSQL's own CPU is not in these figures (it runs in its own processes). Used for docs/performance.md
("The staged pipeline").
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from sqlalchemy import event, text

from bench import workload
from bench.cpu import CpuWindow
from bench.loadgen import Request, build_requests
from bench.run import _migrate, admin_execute, database_url


def _top(profile: cProfile.Profile, sort: str, top: int, only: str | None = None) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    if only is None:
        stats.strip_dirs().sort_stats(sort).print_stats(top)
    else:
        stats.sort_stats(sort).print_stats(only, top)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[start : start + top + 1])


WAITING = "waiting in epoll (idle, not CPU)"
AREAS = (
    ("select.epoll", WAITING),
    ("/app/mock_agencies/", "mock agencies (the edge: not the service's)"),
    ("/app/", "app (this project)"),
    ("/sqlalchemy/", "SQLAlchemy"),
    ("/asyncpg/", "asyncpg"),
    ("/pydantic", "pydantic"),
    ("/fastapi/", "FastAPI"),
    ("/starlette/", "Starlette"),
    ("/httpx/", "httpx (the in-process client: not the service's)"),
    ("/httpcore/", "httpx (the in-process client: not the service's)"),
    ("/anyio/", "anyio"),
    ("/asyncio/", "asyncio"),
    ("/json/", "json"),
    ("greenlet", "greenlet (SQLAlchemy's async bridge)"),
    ("socket", "sockets (syscalls)"),
)


def _areas(profile: cProfile.Profile) -> list[tuple[str, float]]:
    """Own time summed by library, as shares of the profiled time spent running (epoll waits left out)."""
    totals: dict[str, float] = {}
    stats = pstats.Stats(profile)
    for (filename, _line, name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = f"{filename}:{name}"
        area = next((label for needle, label in AREAS if needle in key), "other (stdlib, builtins)")
        totals[area] = totals.get(area, 0.0) + tottime
    totals.pop(WAITING, None)
    whole = sum(totals.values()) or 1.0
    return sorted(((area, 100 * t / whole) for area, t in totals.items()), key=lambda x: -x[1])


class StatementCounter:
    def __init__(self, engine: Any) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *_: Any) -> None:
        self.count += 1


async def _measure(
    label: str,
    n_docs: int,
    plain: Callable[[], Awaitable[None]],
    profiled: Callable[[], Awaitable[None]],
    top: int,
    counter: StatementCounter | None,
    backends: Callable[[], Awaitable[list[int]]] | None = None,
    repeat: int = 1,
) -> dict[str, Any]:
    """``plain`` without the profiler (the CPU and wall figures: cProfile inflates Python-heavy code most),
    then ``profiled`` — the same amount of like work — under cProfile. With ``backends``, also the CPU of
    those PostgreSQL backend processes (this database's connections: other databases' work is left out).
    ``plain`` runs ``repeat`` times (``n_docs`` each): the figures are over all of them."""
    statements = counter.count if counter else 0
    window = CpuWindow()
    if backends is not None:
        window.start({"backends": await backends()})
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(repeat):
        await plain()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    plain_docs = n_docs * repeat
    postgres = window.stop(plain_docs).get("backends_cpu_ms_per_doc") if backends is not None else None
    result = {
        "label": label,
        "docs": plain_docs,
        "wall_ms_per_doc": round(wall * 1000 / plain_docs, 3),
        "cpu_ms_per_doc": round(cpu * 1000 / plain_docs, 3),
        "statements_per_doc": round((counter.count - statements) / plain_docs, 2) if counter else None,
        "postgres_backends_cpu_ms_per_doc": postgres,
    }
    profile = cProfile.Profile()
    cpu = time.process_time()
    profile.enable()
    await profiled()
    profile.disable()
    if dump := os.environ.get("SW_PROFILE_DUMP"):  # a folder: each profile as a pstats file, for callers/callees
        profile.dump_stats(os.path.join(dump, re.sub(r"\W+", "_", label).strip("_") + ".prof"))
    result["cpu_ms_per_doc_profiled"] = round((time.process_time() - cpu) * 1000 / n_docs, 3)
    result["own_time_by_library_pct"] = {area: round(pct, 1) for area, pct in _areas(profile)}
    print(f"\n=== {label}: {result}")
    print(f"--- by own time (tottime), top {top}")
    print(_top(profile, "tottime", top))
    print(f"--- by cumulative time, top {top}")
    print(_top(profile, "cumulative", top))
    print(f"--- the project's own functions (app/, bench/) by cumulative time, top {top}")
    print(_top(profile, "cumulative", top, only=r"/(app|bench)/"))
    return result


async def _post_all(client: httpx.AsyncClient, requests: list[Request]) -> None:
    for r in requests:
        response = await client.post(r.path, content=r.body, headers=r.headers)
        if response.status_code >= 300:
            raise RuntimeError(f"{r.path}: {response.status_code} {response.text[:300]}")


async def profile(db_name: str, docs: int, batch: int, top: int, matcher_gc: bool = False, repeat: int = 1) -> None:
    from app.config import Settings
    from app.main import create_app
    from app.matcher import tune_gc
    from app.services.match_stage import run_round
    from bench.baseline_app import create_app as create_baseline
    from bench.baseline_app import create_table

    url = database_url(db_name, "postgresql+asyncpg")
    admin = "prof-" + secrets.token_urlsafe(16)
    await asyncio.to_thread(_migrate, url)
    await create_table(url)
    settings = Settings(
        database_url=url,
        admin_token=SecretStr(admin),
        embedded_matcher=False,
        embedded_dispatcher=False,
        # The fan-out and delivery workers read the feed the rounds write: their CPU is not the match stage's.
        embedded_delivery=False,
        match_batch_size=batch,
        _env_file=None,
    )
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sw") as client:
            keys = await workload.file_everything(client, admin)
            counter = StatementCounter(app.state.engine)
            spec = {"mode": "single", "keys": keys, "prefix": "PA", "start": 0, "purchases": 2 * docs // 3 + 40}
            requests = build_requests(spec)
            await _post_all(client, requests[:60])  # warm-up: imports, caches, the pool
            plain, profiled = requests[60 : 60 + docs], requests[60 + docs : 60 + 2 * docs]
            await _measure(
                "accept, single-document POST (service)",
                docs,
                lambda: _post_all(client, plain),
                lambda: _post_all(client, profiled),
                top,
                counter,
            )
            if matcher_gc:  # the collector settings of ``sw matcher`` (app/matcher.py), for the match profiles
                tune_gc()
            # The match stage: the accept profile's documents as a warm-up, then two micro-batches of ``batch``
            # (accepted by batches): one plain, one profiled.
            sessionmaker = app.state.sessionmaker
            await run_round(sessionmaker, settings.model_copy(update={"match_batch_size": 5000}))
            purchases = (repeat + 1) * batch // 3 + 60
            spec = {"mode": "batch_json", "keys": keys, "prefix": "PM", "start": 0, "purchases": purchases}
            await _post_all(client, build_requests(spec))
            claimed: list[int] = []

            async def one_round() -> None:
                claimed.append((await run_round(sessionmaker, settings)).claimed)

            async def backends() -> list[int]:
                async with sessionmaker() as session:
                    query = "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                    return list(await session.scalars(text(query)))

            label = f"match, one micro-batch of {batch}"
            await _measure(label, batch, one_round, one_round, top, counter, backends, repeat)
            # The low-rate case: the matcher looks every 50 ms, so at ~100 documents/s a round holds ~5.
            small = 8
            spec = {"mode": "single", "keys": keys, "prefix": "PS", "start": 0, "purchases": 2 * small // 3 + 4}
            await _post_all(client, build_requests(spec)[: 2 * small])
            few = settings.model_copy(update={"match_batch_size": small})

            async def small_round() -> None:
                claimed.append((await run_round(sessionmaker, few)).claimed)

            await _measure(
                f"match, one micro-batch of {small}", small, small_round, small_round, top, counter, backends
            )
            print(f"claimed per round: {claimed}")
            # The dispatch stage: the declarations the rounds above made, delivered to the in-process mock
            # agencies (their CPU is shown apart: "mock agencies"), half plain and half profiled.
            await _profile_dispatch(app, settings, top, counter)
    os.environ["BENCH_DATABASE_URL"] = url
    base = create_baseline()
    async with LifespanManager(base):
        transport = httpx.ASGITransport(app=base)
        async with httpx.AsyncClient(transport=transport, base_url="http://bl") as client:
            spec = {"mode": "single", "keys": {}, "prefix": "PB", "start": 0, "purchases": 2 * docs // 3 + 40}
            requests = build_requests(spec)
            await _post_all(client, requests[:60])
            plain, profiled = requests[60 : 60 + docs], requests[60 + docs : 60 + 2 * docs]
            await _measure(
                "baseline, single-document POST",
                docs,
                lambda: _post_all(client, plain),
                lambda: _post_all(client, profiled),
                top,
                None,
            )


async def _profile_dispatch(app: Any, settings: Any, top: int, counter: StatementCounter) -> None:
    from sqlalchemy import func, select, update

    from app.db import utcnow
    from app.models import Dispatch
    from app.worker import Dispatcher

    sessionmaker = app.state.sessionmaker
    dispatcher = Dispatcher(app.state.engine, sessionmaker, settings, app.state.adapters)
    async with sessionmaker() as session:
        ids = list(await session.scalars(select(Dispatch.id).where(Dispatch.status == "pending").order_by(Dispatch.id)))
    half = set(ids[len(ids) // 2 :])
    if not half:
        print("\n=== dispatch: nothing to deliver")
        return
    async with sessionmaker() as session, session.begin():  # park the second half for the profiled run
        later = utcnow() + timedelta(days=3650)
        await session.execute(update(Dispatch).where(Dispatch.id.in_(half)).values(next_attempt_at=later))

    async def deliver_all() -> None:
        while await dispatcher.run_once():
            pass
        mock = getattr(app.state, "mock_agencies", None)
        if mock is not None:
            await mock.wait_for_callbacks()

    async def deliver_parked() -> None:
        async with sessionmaker() as session, session.begin():
            await session.execute(update(Dispatch).where(Dispatch.id.in_(half)).values(next_attempt_at=utcnow()))
        await deliver_all()

    declarations = len(ids) // 2 // 4 or 1  # four agencies per declaration
    await _measure("dispatch, declarations to four agencies", declarations, deliver_all, deliver_parked, top, counter)
    async with sessionmaker() as session:
        left = await session.scalar(select(func.count()).select_from(Dispatch).where(Dispatch.status != "delivered"))
    print(f"dispatches not delivered: {left}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=400)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument(
        "--matcher-gc", action="store_true", help="profile the match stage with the collector settings of sw matcher"
    )
    parser.add_argument("--repeat", type=int, default=1, help="plain micro-batches of --batch to measure")
    args = parser.parse_args()
    db_name = f"sw_prof_{os.getpid()}"
    asyncio.run(admin_execute(f'CREATE DATABASE "{db_name}"'))
    try:
        asyncio.run(profile(db_name, args.docs, args.batch, args.top, args.matcher_gc, args.repeat))
    finally:
        asyncio.run(admin_execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
