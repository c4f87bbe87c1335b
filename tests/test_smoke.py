from __future__ import annotations

import httpx

from tests.factories import file_parties, post_triple, purchase


async def test_matched_triple(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    responses = await post_triple(client, parties, purchase())
    assert [r.status_code for r in responses] == [201, 201, 201], [r.text for r in responses]
    last = responses[-1].json()
    assert last["recordStatus"] == "DECLARED", last
    assert last["discrepancies"] == []
