"""The CEB622 a ceb-xml subscription receives for customs' receipts carries the inventory number customs
assigned (invtNo) and is valid against CEB622.xsd."""

from __future__ import annotations

from app.ceb import safe_xml
from app.config import Settings
from tests.conftest import serving
from tests.factories import file_parties, post_triple, purchase
from tests.notify.receiver import receiving
from tests.notify.test_webhook_delivery import FAST_RETRIES, PLATFORM, worker_of
from tests.notify.test_webhook_delivery import drain as drain_deliveries
from tests.test_dispatch import drain as drain_dispatches

NS = "{http://www.chinaport.gov.cn/ceb}"


async def test_the_feed_s_ceb622_carries_invt_no_and_is_valid(settings: Settings) -> None:
    async with (
        serving(settings, supervision_rate_regular=0.0, **FAST_RETRIES) as (app, http),
        receiving() as receiver,
    ):
        parties = await file_parties(http)
        created = await http.post(
            f"/api/v1/enterprises/{PLATFORM}/subscriptions",
            json={"url": receiver.url, "events": ["inventory_receipt"], "format": "ceb-xml"},
            headers=parties.platform,
        )
        assert created.status_code == 201, created.text
        for answer in await post_triple(http, parties, purchase()):
            assert answer.status_code == 201, answer.text
        await drain_dispatches(app)
        async with worker_of(app) as worker:
            await drain_deliveries(app, worker, at_least=3)
        messages = [safe_xml.parse(a.body) for a in receiver.unique()]
        assert [m.tag for m in messages] == [f"{NS}CEB622Message"] * 3  # 120, 399, 800
        numbers = {m.findtext(f"{NS}InventoryReturn/{NS}invtNo") for m in messages}
        assert len(numbers) == 1
        [number] = numbers
        assert number is not None
        assert len(number) == 18
        for message in messages:
            assert safe_xml.validate(message, "CEB622.xsd") == []
