"""Webhook delivery figures: events delivered per second to a local receiver (target ≥ 2,000/s) and, paced at
half that rate, the time from a status change to its delivery (p99; target ≤ 1 s).

    ./scripts/uv run --frozen python -m bench.webhooks                     # the full size (run it alone)
    ./scripts/uv run --frozen python -m bench.webhooks --events 500 --paced-s 3   # a small look

The receiver (bench/webhook_receiver.py) is a uvicorn process of its own on 127.0.0.1; the fan-out and the
delivery worker run in this process, exactly as ``sw deliver`` runs them. The feed events are written
straight into ``record_event`` (status changes of records the subscribed platform owns), so that what is
measured is the notify stage alone, not the pipeline in front of it. ``--database-url`` picks the database
(default: a fresh SQLite file; a PostgreSQL URL must name an empty database).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpcore
import httpx

from app.config import Settings
from app.crypto.secret_box import SecretBox
from app.db import create_engine, create_sessionmaker, utcnow
from app.migrate import upgrade
from app.models import Enterprise, MatchRecord, RecordEvent, Subscription
from app.notify.webhook import webhook_client
from app.notify.worker import DeliveryWorker
from app.webhooks import sign_with_each
from bench.loadgen import latency_summary
from bench.procs import Child, free_port, wait_http

PLATFORM = "3120960A01"


async def seed_records(settings: Settings, records: int, receiver_url: str) -> list[uuid.UUID]:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            now = utcnow()
            session.add(Enterprise(code=PLATFORM, name="bench platform", roles=["ebp", "ebc"], status="active"))
            ids = [uuid.uuid4() for _ in range(records)]
            session.add_all(
                MatchRecord(
                    id=i, ebp_code=PLATFORM, ebc_code=PLATFORM, order_no=f"BENCH{n:08d}", status="CLEARED",
                    missing=[], discrepancies=[], created_at=now, updated_at=now,
                )
                for n, i in enumerate(ids)
            )  # fmt: skip
            subscription_id = uuid.uuid4()
            session.add(
                Subscription(
                    id=subscription_id, enterprise_code=PLATFORM, url=receiver_url, events=["status_changed"],
                    format="json", status="active",
                    secret=SecretBox(settings.webhook_secret_key_list()).seal("whsec_bench", str(subscription_id)),
                    consecutive_failures=0, created_at=now, updated_at=now,
                )
            )  # fmt: skip
        return ids
    finally:
        await engine.dispose()


async def write_events(sessionmaker: Any, record_ids: list[uuid.UUID], count: int, start: int = 0) -> None:
    """``count`` status changes, spread over the records in turn (one transaction)."""
    async with sessionmaker() as session, session.begin():
        session.add_all(
            RecordEvent(
                record_id=record_ids[(start + n) % len(record_ids)], kind="status_changed", actor="bench",
                at=utcnow(), detail={"from": "CLEARED", "to": "CLEARED", "event": "bench"},
            )
            for n in range(count)
        )  # fmt: skip


def delivery_check(arrivals: list[list[str]], expected: int) -> dict[str, Any]:
    """What the receiver got, judged: every event once at least (``missing``), a second arrival only with a
    webhook-id already seen (``duplicates``: retries, never a new id for an old event), and each record's
    events first arriving in feed order (``out_of_order``: records where one did not)."""
    first: dict[str, tuple[str, tuple[int, int]]] = {}
    for webhook_id, record_id, position in arrivals:
        if webhook_id not in first:
            tx, event_id = position.split(".")
            first[webhook_id] = (record_id, (int(tx), int(event_id)))
    by_record: dict[str, list[tuple[int, int]]] = {}
    for record_id, position in first.values():
        by_record.setdefault(record_id, []).append(position)
    positions = [position for _, position in first.values()]
    return {
        "unique": len(first),
        "missing": expected - len(first),
        "duplicates": len(arrivals) - len(first),
        "events_twice": len(positions) - len(set(positions)),  # one event under two webhook-ids
        "out_of_order": sum(1 for p in by_record.values() if p != sorted(p)),
    }


async def receiver_stats(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    answer = await client.get(url.replace("/hooks", "/stats"))
    stats: dict[str, Any] = answer.json()
    return stats


async def receiver_arrivals(client: httpx.AsyncClient, url: str) -> list[list[str]]:
    arrivals: list[list[str]] = (await client.get(url.replace("/hooks", "/arrivals"))).json()["arrivals"]
    return arrivals


async def until_delivered(client: httpx.AsyncClient, url: str, count: int, timeout_s: float) -> float:
    """Seconds until the receiver holds ``count`` unique events."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if (await receiver_stats(client, url))["unique"] >= count:
            return time.monotonic() - started
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{count} events not delivered within {timeout_s} s")


async def bare_rate(url: str, events: int, concurrency: int) -> float:
    """Events per second of the bare baseline: the same receiver fed with no database and no queue, by the
    cheapest sender the client stack affords — httpcore's connection pools (under httpx), in lanes of four
    connections (one pool of 64 scans all its sockets per request: 2 ms of CPU a request, not 0.3),
    ``concurrency`` requests in flight, each a prepared body signed as the worker signs it: the ceiling this
    machine sets for the delivery worker."""
    at = utcnow().isoformat()
    bodies = [
        json.dumps(
            {"type": "status_changed", "timestamp": at,
             "data": {"position": f"0.{n}", "kind": "status_changed", "recordId": f"bare-{n % 200}", "at": at,
                      "detail": {"from": "CLEARED", "to": "CLEARED", "event": "bench"}}},
            separators=(",", ":"),
        ).encode()
        for n in range(events)
    ]  # fmt: skip
    numbers = iter(range(events))
    lanes = [httpcore.AsyncConnectionPool(max_connections=4) for _ in range(-(-concurrency // 4))]

    async def lane() -> None:
        for n in numbers:  # one iterator shared by the lanes: each event sent once
            webhook_id, timestamp = f"msg_bare{n:08d}", int(time.time())
            headers = [
                (b"webhook-id", webhook_id.encode()),
                (b"webhook-timestamp", str(timestamp).encode()),
                (b"webhook-signature", sign_with_each(["whsec_bench"], webhook_id, timestamp, bodies[n]).encode()),
                (b"content-type", b"application/json"),
            ]
            async with lanes[n % len(lanes)].stream("POST", url, headers=headers, content=bodies[n]) as answer:
                async for _ in answer.aiter_stream():
                    pass
            if answer.status != 204:
                raise RuntimeError(f"the receiver answered {answer.status}")

    try:
        started = time.monotonic()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        seconds = time.monotonic() - started
    finally:
        for pool in lanes:
            await pool.aclose()
    async with httpx.AsyncClient() as client:
        await client.post(url.replace("/hooks", "/reset"))
    return events / seconds


def bench_settings(args: argparse.Namespace, work: Path) -> Settings:
    database_url = args.database_url or f"sqlite+aiosqlite:///{work / 'webhooks.db'}"
    return Settings(  # type: ignore[call-arg]
        database_url=database_url,
        webhook_allow_private=True,
        webhook_concurrency=args.concurrency,
        webhook_subscription_in_flight=args.subscription_in_flight,
        webhook_subscription_in_flight_max=max(args.subscription_in_flight, args.subscription_in_flight_max),
        _env_file=None,
    )


async def run(args: argparse.Namespace, work: Path, settings: Settings) -> dict[str, Any]:
    database_url = settings.database_url
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks"
    receiver = Child(
        "receiver",
        [sys.executable, "-m", "uvicorn", "bench.webhook_receiver:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        dict(os.environ), work,
    ).start()  # fmt: skip
    engine = create_engine(settings)
    sessionmaker = create_sessionmaker(engine)
    client = webhook_client()
    worker = DeliveryWorker(sessionmaker, settings, client)
    try:
        await wait_http(url.replace("/hooks", "/stats"), receiver)
        record_ids = await seed_records(settings, args.records, url)
        bare = await bare_rate(url, args.events, args.concurrency)
        async with httpx.AsyncClient(timeout=10) as http:
            # Throughput: a backlog of events, then the worker started; the clock runs until the last arrives.
            await write_events(sessionmaker, record_ids, args.events)
            running = asyncio.create_task(worker.run())
            seconds = await until_delivered(http, url, args.events, timeout_s=600)
            rate = args.events / seconds
            backlog_check = delivery_check(await receiver_arrivals(http, url), args.events)
            # Latency: events written at half that rate (or --paced-rate), in ticks of 10 ms.
            await http.post(url.replace("/hooks", "/reset"))
            paced = args.paced_rate or rate / 2
            written, started = 0, time.monotonic()
            while (elapsed := time.monotonic() - started) < args.paced_s:
                due = int(elapsed * paced) - written
                if due > 0:
                    await write_events(sessionmaker, record_ids, due, start=written)
                    written += due
                await asyncio.sleep(0.01)
            await until_delivered(http, url, written, timeout_s=120)
            paced_check = delivery_check(await receiver_arrivals(http, url), written)
            latencies = (await http.get(url.replace("/hooks", "/latencies"))).json()["latency_ms"]
            worker.stop()
            await running
    finally:
        await client.aclose()
        await engine.dispose()
        receiver.stop()
    return {
        "database": "postgresql" if database_url.startswith("postgresql") else "sqlite",
        "events": args.events,
        "records": args.records,
        "concurrency": args.concurrency,
        "subscription_in_flight": args.subscription_in_flight,
        "subscription_in_flight_max": settings.webhook_subscription_in_flight_max,
        "events_per_s": round(rate, 1),
        "bare_events_per_s": round(bare, 1),
        "ratio_to_bare": round(rate / bare, 3),
        "throughput_target_met": rate >= 2000,
        "paced_events_per_s": round(paced, 1),
        "paced_events": written,
        "status_change_to_delivered_ms": latency_summary(sorted(latencies)),
        "check": {"backlog": backlog_check, "paced": paced_check},
    }


def measure(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="backlog delivered for the throughput figure")
    parser.add_argument("--records", type=int, default=2_000, help="records the events spread over")
    parser.add_argument("--paced-s", type=float, default=30.0, help="how long the paced (latency) phase runs")
    parser.add_argument("--paced-rate", type=float, default=None, help="events/s of that phase (default: half)")
    parser.add_argument("--concurrency", type=int, default=64, help="SW_WEBHOOK_CONCURRENCY of the worker")
    parser.add_argument(
        "--subscription-in-flight", type=int, default=4, help="SW_WEBHOOK_SUBSCRIPTION_IN_FLIGHT (one subscription)"
    )
    parser.add_argument(
        "--subscription-in-flight-max", type=int, default=32, help="SW_WEBHOOK_SUBSCRIPTION_IN_FLIGHT_MAX"
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="sw-bench-webhooks-") as tmp:
        settings = bench_settings(args, Path(tmp))
        upgrade(settings)  # before the event loop: Alembic runs its own
        return asyncio.run(run(args, Path(tmp), settings))


def main() -> int:
    print(json.dumps(measure(), indent=2))
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
