"""What the risk counters and the decision add to the match stage's CPU per document: the same stream matched
twice on a fresh SQLite database each, with ``SW_RISK_ENABLED`` on and off, the match rounds driven in
process and timed with ``time.process_time`` (the harness's measure, docs/performance.md). Small on purpose:
``./scripts/uv run --frozen python -m bench.risk_cost [purchases]`` (default 1,500; about a minute).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from app.config import Settings
from app.main import create_app
from app.migrate import upgrade
from app.services.match_stage import run_round
from bench import workload

ADMIN = "bench-admin-token-0123456789"


def settings_for(risk: bool, folder: Path, run: int) -> Settings:
    return Settings(  # type: ignore[call-arg]
        database_url=f"sqlite+aiosqlite:///{folder / f'run-{run}.db'}",
        admin_token=SecretStr(ADMIN),
        embedded_matcher=False,
        embedded_dispatcher=False,
        risk_enabled=risk,
        _env_file=None,
    )


async def matcher_cpu(purchases: int, settings: Settings) -> tuple[float, int]:
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=60) as client:
            keys = await workload.file_everything(client, ADMIN)
            docs = 0
            for batch in workload.batches(workload.document_stream("RC", 0, purchases)):
                body = [doc.body for doc in batch.docs]
                response = await client.post(
                    f"/api/v1/{workload.PATHS[batch.doc_type]}/batch",
                    json={"items": body},
                    headers={"X-API-Key": keys[batch.sender]},
                )
                if response.status_code >= 400:
                    raise RuntimeError(f"{response.status_code} {response.text[:300]}")
                docs += len(batch.docs)
        started = time.process_time()
        while (await run_round(app.state.sessionmaker, settings)).claimed:
            pass
        return time.process_time() - started, docs


def main(purchases: int) -> None:
    # Each way twice, alternating, on a fresh database each, so that warming up or a busy neighbour on the
    # machine does not favour one side; the lower of each pair counts.
    with tempfile.TemporaryDirectory() as folder:
        plan = [settings_for(risk, Path(folder), n) for n, risk in enumerate((False, True, True, False))]
        for settings in plan:
            upgrade(settings)  # migrations run their own event loop: before ours
        runs = [asyncio.run(matcher_cpu(purchases, settings)) for settings in plan]
    docs = runs[0][1]
    off, on = min(runs[0][0], runs[3][0]), min(runs[1][0], runs[2][0])
    print(f"{docs} documents ({purchases} purchases), match stage CPU per document:")
    print(f"  risk off {1e6 * off / docs:8.0f} µs")
    print(f"  risk on  {1e6 * on / docs:8.0f} µs  ({(on - off) / off:+.1%})")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1500)
