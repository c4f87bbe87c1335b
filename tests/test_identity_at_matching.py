"""A buyer ID failing GB 11643, or a telephone that is not one, stops the purchase at matching (MISMATCHED,
with its own reason code), before anything is declared to an agency."""

from __future__ import annotations

import httpx

from tests.conftest import ADMIN
from tests.factories import file_parties, post_triple, purchase

WRONG_DIGIT = "330106199001011234"  # 33010619900101123 takes X


async def test_wrong_check_digit_is_a_discrepancy_not_a_declaration(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    triple = purchase(order={"buyerIdNumber": WRONG_DIGIT}, payment={"payerIdNumber": WRONG_DIGIT})
    receipt = (await post_triple(client, parties, triple))[-1]
    assert receipt.status_code == 201, receipt.text
    assert receipt.json()["recordStatus"] == "MISMATCHED"
    [issue] = receipt.json()["discrepancies"]
    assert (issue["code"], issue["field"], issue["severity"]) == ("BUYER_ID_INVALID", "order.buyerIdNumber", "error")
    record = (await client.get(f"/api/v1/records/{receipt.json()['recordId']}", headers=ADMIN)).json()
    assert record["status"] == "MISMATCHED"
    assert record["agencies"] == {}


async def test_a_telephone_that_is_no_number_is_a_discrepancy(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    triple = purchase(order={"consigneeTelephone": "1380013"}, waybill={"consigneeTelephone": "1380013"})
    receipt = (await post_triple(client, parties, triple))[-1].json()
    assert receipt["recordStatus"] == "MISMATCHED"
    assert [(d["code"], d["field"]) for d in receipt["discrepancies"]] == [
        ("TELEPHONE_INVALID", "order.consigneeTelephone")
    ]


async def test_a_valid_identity_declares(client: httpx.AsyncClient) -> None:
    parties = await file_parties(client)
    receipt = (await post_triple(client, parties, purchase(own_buyer=True)))[-1].json()
    assert receipt["recordStatus"] == "DECLARED"
    assert receipt["discrepancies"] == []
