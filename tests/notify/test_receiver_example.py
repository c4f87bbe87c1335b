"""The receiver example of docs/webhooks.md, run as it stands (its exact text) in a uvicorn process: it takes
our signed deliveries, processes each event once whatever is sent again, and refuses a forged one."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import httpx

from app.config import Settings
from tests.conftest import serving
from tests.factories import file_parties, post_triple, purchase
from tests.live import clean_env, free_port
from tests.notify.test_webhook_delivery import FAST_RETRIES, PLATFORM, drain, subscribe, worker_of

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def receiver_source() -> str:
    [block] = re.findall(r"```python\n(# receiver\.py.*?)```", DOCS.read_text(encoding="utf-8"), re.DOTALL)
    return block


async def test_the_documented_receiver_verifies_and_dedupes(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "receiver.py").write_text(receiver_source(), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}/hooks"
    async with serving(settings, **FAST_RETRIES) as (app, http):
        parties = await file_parties(http)
        subscription = await subscribe(http, parties.platform, url)
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "uvicorn", "receiver:app", "--host", "127.0.0.1", "--port", str(port)),
            cwd=tmp_path,
            env=clean_env(WEBHOOK_SECRET=str(subscription["secret"])),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            async with httpx.AsyncClient() as probe:
                for _ in range(1200):
                    try:
                        await probe.get(url)  # 405: it is up
                        break
                    except httpx.TransportError:
                        assert process.returncode is None, "the receiver exited"
                        await asyncio.sleep(0.1)
                forged = await probe.post(
                    url,
                    content=b"{}",
                    headers={"webhook-id": "msg_x", "webhook-timestamp": "1", "webhook-signature": "v1,AAAA"},
                )
                assert forged.status_code == 401
            for answer in await post_triple(http, parties, purchase()):
                assert answer.status_code == 201
            base = f"/api/v1/enterprises/{PLATFORM}/subscriptions/{subscription['id']}"
            async with worker_of(app) as worker:
                await drain(app, worker)
                delivered = (await http.get(f"{base}/deliveries", headers=parties.platform)).json()["items"]
                assert {d["status"] for d in delivered} == {"delivered"}
                # everything once more: the receiver answers 2xx and processes nothing twice
                again = await http.post(f"{base}/replay", json={"after": "0.0"}, headers=parties.platform)
                assert again.json()["queued"] == len(delivered)
                await drain(app, worker)
        finally:
            process.terminate()
            raw, _ = await asyncio.wait_for(process.communicate(), timeout=15)
            output = raw.decode()
    processed = [line.split()[1] for line in output.splitlines() if line.startswith("processed ")]
    assert sorted(processed) == sorted(f"msg_{d['id'].replace('-', '')}" for d in delivered)
