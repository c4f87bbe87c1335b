"""`sw deliver`: the delivery worker as a process of its own (PostgreSQL mode), fanning out and sending what
the API process wrote."""

from __future__ import annotations

import asyncio
import sys

from app.config import Settings
from tests.conftest import serving
from tests.factories import file_parties, post_triple, purchase
from tests.live import clean_env
from tests.notify.receiver import receiving
from tests.notify.test_webhook_delivery import subscribe


async def test_sw_deliver_sends_what_the_api_wrote(settings: Settings) -> None:
    async with serving(settings, webhook_allow_private=True) as (_, http), receiving() as receiver:
        parties = await file_parties(http)
        await subscribe(http, parties.platform, receiver.url)
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "app", "deliver"),
            env=clean_env(
                SW_DATABASE_URL=settings.database_url, SW_WEBHOOK_ALLOW_PRIVATE="true", SW_WEBHOOK_POLL_S="0.1"
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            for answer in await post_triple(http, parties, purchase()):
                assert answer.status_code == 201
            for _ in range(1200):
                if len(receiver.unique()) >= 5 or process.returncode is not None:
                    break
                await asyncio.sleep(0.05)
        finally:
            process.terminate()
            output, _ = await asyncio.wait_for(process.communicate(), timeout=15)
        assert len(receiver.unique()) >= 5, output.decode()[-2000:]
