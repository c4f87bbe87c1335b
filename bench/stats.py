"""The statistics step: ``sw stats rebuild`` time, and each stats endpoint's and the dashboard's answer time,
over N stored purchases.

    python -m bench.stats [--purchases N] [--url DATABASE_URL] [--repeat R]

Without ``--url`` it uses a fresh SQLite file; with a PostgreSQL URL (an empty database) it migrates it. The
purchases are written straight into ``match_record`` (30 days of them, 20 platforms × 50 sellers, every status,
with the clocks the rollups read), the rollups rebuilt from them (timed), then every endpoint is asked ``R``
times in process (httpx over ASGI: the application's time, not the network's). Prints one JSON line; the issue's
target is ≤ 300 ms per answer at 1 M purchases (printed beside the figures, not asserted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import tempfile
import time
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from sqlalchemy import insert

from app.config import Settings
from app.db import run_in_transaction, utcnow
from app.main import create_app
from app.migrate import upgrade
from app.models import MatchRecord
from app.services.rollups import rebuild
from bench.loadgen import latency_summary

TARGET_MS = 300.0
ADMIN_TOKEN = "bench-stats-admin-token-0123456789"  # noqa: S105 - a throwaway database of its own
ENDPOINTS = (
    "/api/v1/stats/summary",
    "/api/v1/stats/timeseries?metric=purchases&bucket=hour",
    "/api/v1/stats/timeseries?metric=documents&bucket=day",
    "/api/v1/stats/mismatch-reasons?top=10",
    "/api/v1/stats/rejections?top=10",
    "/api/v1/stats/clearance-times",
    "/api/v1/stats/backlog",
    "/api/v1/stats/summary?ebcCode=S000000007",
    "/api/v1/stats/timeseries?metric=purchases&bucket=day&ebcCode=S000000007",
    "/api/v1/stats/inspections",
    "/api/v1/stats/warnings",
)
STATUSES = (
    ("CLEARED", 0.80),
    ("MISMATCHED", 0.05),
    ("REJECTED", 0.02),
    ("AWAITING_DOCUMENTS", 0.05),
    ("DECLARED", 0.05),
    ("INSPECTION", 0.03),
)
REASONS = ("PAYMENT_AMOUNT_MISMATCH", "PAYER_NOT_BUYER", "CONSIGNEE_MISMATCH", "GOODS_NOT_FILED")
BATCH = 5000


def synthetic_record(n: int, rng: random.Random, now: Any) -> dict[str, Any]:
    status = rng.choices([s for s, _ in STATUSES], [w for _, w in STATUSES])[0]
    first = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
    last = first + timedelta(seconds=rng.expovariate(1 / 60))
    matched = (
        last + timedelta(seconds=rng.expovariate(1 / 2)) if status not in ("MISMATCHED", "AWAITING_DOCUMENTS") else None
    )
    accepted = matched + timedelta(seconds=rng.expovariate(1 / 5)) if matched and status != "REJECTED" else None
    settled = accepted + timedelta(seconds=rng.expovariate(1 / 600)) if accepted and status == "CLEARED" else None
    if status == "REJECTED":
        settled = (matched or last) + timedelta(seconds=1)
    discrepancies = [{"code": rng.choice(REASONS)}] if status == "MISMATCHED" else []
    declared = status in ("CLEARED", "REJECTED", "DECLARED", "INSPECTION")
    return {
        "id": uuid.uuid4(),
        "ebp_code": f"P{n % 20:09d}",
        "order_no": f"BS{n:012d}",
        "ebc_code": f"S{n % 50:09d}",
        "buyer_id_number": f"3301061990{n:08d}",
        "status": status,
        "missing": ["waybill"] if status == "AWAITING_DOCUMENTS" else [],
        "discrepancies": discrepancies,
        "matched_at": matched,
        "agencies": {"customs": {"state": "released"}} if status == "CLEARED" else {},
        "rejection": {"cebReturnStatus": "-621005"} if status == "REJECTED" else None,
        "created_at": first,
        "updated_at": settled or accepted or matched or last,
        "documents_first_at": first,
        "documents_last_at": last,
        "customs_accepted_at": accepted,
        "settled_at": settled,
        "tax_total": Decimal(rng.randint(0, 20000)) / 100 if declared else None,
        "trade_mode": "9610" if declared else None,
        "port_code": "2991" if declared else None,
    }


async def measure(settings: Settings, purchases: int, repeat: int) -> dict[str, Any]:
    app = create_app(settings)
    async with LifespanManager(app):
        maker = app.state.sessionmaker
        rng, now = random.Random(14), utcnow()
        for start in range(0, purchases, BATCH):
            rows = [synthetic_record(n, rng, now) for n in range(start, min(purchases, start + BATCH))]
            async with maker() as session, session.begin():
                await session.execute(insert(MatchRecord), rows)
        started = time.perf_counter()
        cells = await run_in_transaction(maker, rebuild)
        rebuild_s = time.perf_counter() - started
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=120) as client:
            admin = {"X-API-Key": ADMIN_TOKEN}
            endpoints: dict[str, Any] = {}
            for path in ENDPOINTS:
                endpoints[path] = await _timed(client, path, admin, repeat)
            form = await client.get("/console/sign-in")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert csrf is not None
            await client.post("/console/sign-in", data={"key": ADMIN_TOKEN, "csrf_token": csrf.group(1)})
            for path in ("/console/dashboard", "/console/dashboard?range=30d"):
                endpoints[path] = await _timed(client, path, {}, repeat)
    slowest = max(e["p90"] for e in endpoints.values())
    return {
        "purchases": purchases,
        "database": settings.database_shown(),
        "rebuild_s": round(rebuild_s, 3),
        "rollup_cells": cells,
        "endpoints_ms": endpoints,
        "slowest_p90_ms": slowest,
        "target_ms": TARGET_MS,
    }


async def _timed(client: httpx.AsyncClient, path: str, headers: dict[str, str], repeat: int) -> dict[str, Any]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(path, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:300]}")
    return latency_summary(times)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--purchases", type=int, default=20_000)
    parser.add_argument("--url", help="an empty database (default: a fresh SQLite file)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite+aiosqlite:///{Path(folder) / 'stats.db'}"
        settings = Settings(  # type: ignore[call-arg]
            database_url=url,
            admin_token=SecretStr(ADMIN_TOKEN),
            embedded_dispatcher=False,
            embedded_matcher=False,
            _env_file=None,
        )
        upgrade(settings)
        result = asyncio.run(measure(settings, args.purchases, args.repeat))
    line = json.dumps(result, ensure_ascii=False)
    print(line)
    if args.out:
        args.out.write_text(line + "\n")
    return result


if __name__ == "__main__":
    main()
