"""The service signs what it declares; without a key it says so, and never sends an unsigned CEB621."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from app.config import Settings
from app.models import Dispatch
from tests.conftest import ADMIN, serving
from tests.factories import file_parties, post_triple, purchase
from tests.test_dispatch import dispatcher


async def test_without_a_signing_key_nothing_unsigned_goes_out(settings: Settings) -> None:
    unsigned = {"signing_key_path": None, "signing_certificate_path": None, "signing_dev_keys": False}
    async with serving(settings, dispatch_max_attempts=1, **unsigned) as (app, client):
        parties = await file_parties(client)
        receipt = (await post_triple(client, parties, purchase()))[-1].json()
        path = f"/api/v1/records/{receipt['recordId']}/declaration"
        as_xml = await client.get(path, headers=ADMIN | {"Accept": "application/xml"})
        assert as_xml.status_code == 503, as_xml.text
        assert as_xml.json()["code"] == "SIGNING_NOT_CONFIGURED"
        await dispatcher(app).run_once()
        async with app.state.sessionmaker() as session:
            customs = await session.scalar(
                select(Dispatch).where(
                    Dispatch.record_id == uuid.UUID(receipt["recordId"]), Dispatch.agency == "customs"
                )
            )
        assert customs is not None
        assert customs.status == "dead"
        assert "not signed" in (customs.last_error or "")
