"""Every message type we produce, rendered from the bench workload and from hostile input, validates (pure: no
database). The writers check each message themselves (``app/ceb/conformance.py``); these tests also read each
one back against its XSD, so that a writer that stopped checking would still be caught."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from app.ceb import codec, safe_xml
from app.ceb.after_release import RequestKind, render_request_receipts, request_element
from app.ceb.codec import MessageRejected
from app.rules.after_release import INVENTORY_FIELDS, ReturnedLines, inventory_number, returned_lines
from app.rules.inventory import DeclarationParty, GoodsRecord, compose_inventory
from app.schemas.documents import OrderIn, PaymentIn, WaybillIn
from app.services.accept import acceptance_receipt
from app.services.intake import ItemResult
from app.services.inventory_message import inventory_message
from app.services.messages import _return_row, read_message
from bench import workload
from tests.ceb.conftest import ceb, message, transfer
from tests.ceb.test_hostile_xml import ATTACKS
from tests.factories import purchase

NOW = datetime(2026, 11, 23, 2, 20, tzinfo=UTC)
PARTY = DeclarationParty(
    agent_code="3120960A02",
    agent_name="东京优选海外旗舰店",
    assure_code="3120960A02",
    customs_code="1501",
    port_code="1501",
    trade_mode="9610",
    traf_mode="5",
    traf_no="CA1234",
    voyage_no="20261123",
)
GOODS = {
    item.item_no: GoodsRecord(
        item_no=item.item_no,
        gcode=item.gcode,
        gname=item.name,
        unit1=item.unit1,
        qty1_factor=Decimal(item.qty1_factor),
        unit2=item.unit2,
        qty2_factor=Decimal(item.qty2_factor) if item.qty2_factor else None,
        country=item.country,
        positive_list=True,
    )
    for items in workload.CATALOGUE.values()
    for item in items
}


def valid(body: bytes, *, signature_optional: bool = False) -> str:
    """The root's name, after checking the message against its XSD."""
    root = safe_xml.parse(body)
    name = root.tag.rsplit("}", 1)[-1]
    problems = safe_xml.validate(root, codec.XSD_BY_MESSAGE[name], signature_optional=signature_optional)
    assert problems == [], (name, problems)
    return name


def answered(body: bytes) -> bytes:
    """The receipt (or CEB900) the service answers a message with, as ``receive_message`` builds it: each valid
    record accepted, each invalid one refused."""
    try:
        parsed, items = read_message(body)
    except MessageRejected as rejected:
        return codec.render_message_return(rejected)
    results = []
    for item in items:
        if item.document is None:
            assert item.error is not None
            results.append(ItemResult(item.index, item.error.status, error=item.error))
        else:
            receipt = acceptance_receipt(parsed.kind.doc_type, item.document, item.index + 1, NOW, replayed=False)
            results.append(ItemResult(item.index, 202, receipt=receipt, seq=item.index + 1))
    rows = [_return_row(parsed, item, result) for item, result in zip(items, results, strict=True)]
    return codec.render_receipts(parsed.kind, rows)


def test_every_message_of_the_bench_workload_and_its_answers_conform() -> None:
    seen: set[str] = set()
    for purchase_ in workload.purchases("CF", 0, 150):
        for doc_type, document in purchase_.documents().items():
            body = codec.render_message(doc_type, [document], transfer(str(document[workload.OWNER_FIELD[doc_type]])))
            seen.add(valid(body))
            seen.add(valid(answered(body)))
        if purchase_.mismatch is None:
            composed = compose_inventory(
                guid=str(uuid.uuid4()).upper(),
                cop_no=uuid.uuid4().hex[:20],
                app_time="20261123102000",
                decl_date="20261123",
                order=OrderIn.model_validate(purchase_.order),
                payment=PaymentIn.model_validate(purchase_.payment),
                waybill=WaybillIn.model_validate(purchase_.waybill),
                goods=GOODS,
                party=PARTY,
            )
            assert composed.refusals == []
            inventory = composed.inventory
            seen.add(valid(inventory_message(uuid.uuid4(), inventory), signature_optional=True))
            answers = [
                {**inventory, "preNo": "B20261123000000001", "returnStatus": status, "returnTime": NOW, "returnInfo": i}
                for status, i in (("120", "入库"), ("399", "审结"), ("800", "放行"))
            ]
            seen.add(valid(codec.render_inventory_receipts(answers)))
            seen |= after_release_messages(inventory)
    for batch in list(workload.batches(workload.document_stream("CB", 0, 120)))[:12]:
        body = batch.xml_body()
        seen.add(valid(body))
        seen.add(valid(answered(body)))
    assert seen == {
        "CEB311Message",
        "CEB312Message",
        "CEB411Message",
        "CEB412Message",
        "CEB511Message",
        "CEB512Message",
        "CEB621Message",
        "CEB622Message",
        "CEB623Message",
        "CEB624Message",
        "CEB625Message",
        "CEB626Message",
    }


def after_release_messages(inventory: dict[str, Any]) -> set[str]:
    """A cancel (CEB623) and a return of every line (CEB625) of ``inventory`` as customs is sent them (unsigned
    here: tests/test_cancel_returns.py checks the signed ones), and customs' answers as CEB624 / CEB626."""
    seen = set()
    kinds: tuple[RequestKind, ...] = ("cancel", "return")
    for kind in kinds:
        fields: dict[str, Any] = {
            "guid": str(uuid.uuid4()).upper(),
            "appType": "1",
            "appTime": "20261201102000",
            "appStatus": "2",
            **{name: inventory.get(name) for name in INVENTORY_FIELDS},
            "preNo": "B20261123000000001",
            "invtNo": inventory_number(str(inventory["customsCode"]), 2026, uuid.uuid4().int),
            "reason": "买家申请退货" if kind == "return" else "订单取消",
        }
        if kind == "return":
            lines = returned_lines(inventory["inventoryList"], None)
            assert isinstance(lines, ReturnedLines)
            fields["invtRefundList"] = lines.lines
        request = request_element(kind, fields, transfer(str(inventory["agentCode"])))
        seen.add(valid(etree.tostring(request, encoding="UTF-8"), signature_optional=True))
        answers = [
            {**fields, "returnStatus": status, "returnTime": NOW, "returnInfo": info}
            for status, info in (("120", "入库"), ("399", "审结"))
        ]
        seen.add(valid(render_request_receipts(kind, answers)))
    return seen


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_answer_to_every_hostile_message_conforms(name: str) -> None:
    build, status, _ = ATTACKS[name]
    body = answered(build())
    assert valid(body) == "CEB900Message"
    assert codec.parse_receipts(body).records[0]["returnStatus"] == status


def test_the_answer_to_a_message_of_another_type_conforms() -> None:
    order = message("order", [purchase()[0]])
    for body in (
        order.replace(b"CEB311Message", b"CEB311MessageExtended"),
        order.replace(b"CEB311Message", b"CEB621Message"),
        order.replace(b"http://www.chinaport.gov.cn/ceb", b"urn:other"),
        b"\xff\xfe<",
        b"",
    ):
        assert valid(answered(body)) == "CEB900Message"


# Text a sender may get wrong: whitespace inside and around, unicode spaces, lengths on both sides of a limit.
_SPACES = st.sampled_from([" ", "  ", "\t", "\n", "\u3000", "\u00a0", ""])
_TEXT = st.builds(
    lambda head, gap, tail, pad: pad + head + gap + tail + pad,
    st.text(alphabet="AB9-", min_size=0, max_size=64),
    _SPACES,
    st.text(alphabet="AB9-", min_size=0, max_size=64),
    _SPACES,
)


@settings(max_examples=150, deadline=None)
@given(order_no=_TEXT, ebp_code=_TEXT, guid_pad=_SPACES, guid_cut=st.integers(0, 3))
def test_whatever_a_sender_writes_the_answer_keeps_to_its_schema(
    order_no: str, ebp_code: str, guid_pad: str, guid_cut: int
) -> None:
    order: dict[str, Any] = ceb(purchase()[0])
    order["orderNo"] = order_no
    order["ebpCode"] = ebp_code
    order["guid"] = guid_pad + order["guid"][guid_cut:]
    answer = answered(message("order", [order, ceb(purchase()[0])]))
    assert valid(answer) in ("CEB312Message", "CEB900Message")
