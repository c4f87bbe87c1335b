"""The codec without HTTP: round trips (hypothesis), what real senders write, and the rendered receipts."""

from __future__ import annotations

import string
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.ceb import codec, return_codes, safe_xml
from app.ceb import signature as ceb_signature
from app.ceb.codec import MessageRejected, ReturnRow
from app.ceb.kinds import KINDS, DocType
from app.errors import DomainError
from app.schemas import examples
from app.services.intake import validate_document
from app.services.messages import read_message
from tests.ceb.conftest import ceb, message, transfer
from tests.service_keys import service_identity

# --- strategies: valid documents of each type ---------------------------------------------------

# Characters XML 1.0 can carry: no surrogates, no control characters but tab, CR and LF, and not the two
# noncharacters U+FFFE / U+FFFF (which the schemas refuse with the control characters: app/schemas/ceb_types.py).
_CHARS = st.characters(
    codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\ufffe\uffff"
) | st.sampled_from(" \t\n\r中文")


def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_CHARS, min_size=1, max_size=max_size).map(str.strip).filter(bool)


def _optional(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


_CODE = st.text(string.ascii_uppercase + string.digits, min_size=1, max_size=18)
_DIGITS3 = st.from_regex(r"\A[0-9]{3}\Z")
_AMOUNT = st.integers(0, 5).flatmap(
    lambda places: st.decimals(min_value=0, max_value=Decimal("99999999999999"), places=places)
)
_POSITIVE = _AMOUNT.filter(lambda d: d > 0)
_TIME = st.datetimes().map(lambda moment: moment.strftime("%Y%m%d%H%M%S")).filter(lambda t: len(t) == 14)
_GUID = st.uuids().map(lambda u: str(u).upper())
_COMMON = {
    "guid": _GUID,
    "appType": st.sampled_from(["1", "2", "3"]),
    "appTime": _TIME,
    "appStatus": st.sampled_from(["1", "2"]),
}

_LINE = st.fixed_dictionaries(
    {
        "itemName": _text(250),
        "gmodel": _text(510),
        "unit": _DIGITS3,
        "qty": _POSITIVE,
        "price": _AMOUNT,
        "totalPrice": _AMOUNT,
        "currency": st.just("142"),
        "country": _DIGITS3,
    },
    optional={
        "itemNo": _text(30),
        "itemDescribe": _text(1000),
        "barCode": _text(50),
        "note": _text(1000),
    },
)

ORDERS = st.fixed_dictionaries(
    {
        **_COMMON,
        "orderType": st.just("I"),
        "orderNo": _text(60),
        "ebpCode": _CODE,
        "ebpName": _text(100),
        "ebcCode": _CODE,
        "ebcName": _text(100),
        "goodsValue": _AMOUNT,
        "freight": _AMOUNT,
        "discount": _AMOUNT,
        "taxTotal": _AMOUNT,
        "acturalPaid": _AMOUNT,
        "currency": st.just("142"),
        "buyerRegNo": _text(60),
        "buyerName": _text(60),
        "buyerTelephone": _text(30),
        "buyerIdType": st.just("1"),
        "buyerIdNumber": _text(60),
        "consignee": _text(100),
        "consigneeTelephone": _text(50),
        "consigneeAddress": _text(200),
        "orderList": st.lists(_LINE, min_size=1, max_size=3).map(
            lambda lines: [line | {"gnum": n} for n, line in enumerate(lines, 1)]
        ),
    },
    optional={
        "payCode": _CODE,
        "payName": _text(100),
        "payTransactionId": _text(60),
        "batchNumbers": _text(100),
        "consigneeDistrict": st.from_regex(r"\A[0-9]{6}\Z"),
        "note": _text(1000),
    },
)
PAYMENTS = st.fixed_dictionaries(
    {
        **_COMMON,
        "payCode": _CODE,
        "payName": _text(100),
        "payTransactionId": _text(60),
        "orderNo": _text(60),
        "ebpCode": _CODE,
        "ebpName": _text(100),
        "payerIdType": st.just("1"),
        "payerIdNumber": _text(60),
        "payerName": _text(60),
        "amountPaid": _AMOUNT,
        "currency": st.just("142"),
        "payTime": _TIME,
    },
    optional={"telephone": _text(60), "note": _text(1000)},
)
WAYBILLS = st.fixed_dictionaries(
    {
        **_COMMON,
        "logisticsCode": _CODE,
        "logisticsName": _text(100),
        "logisticsNo": _text(60),
        "orderNo": _text(60),
        "currency": st.just("142"),
        "weight": _AMOUNT,
        "packNo": st.just(1),
        "consignee": _text(100),
        "consigneeAddress": _text(200),
        "consigneeTelephone": _text(50),
    },
    optional={
        "billNo": _text(37),
        "freight": _AMOUNT,
        "insuredFee": _AMOUNT,
        "goodsInfo": _text(200),
        "note": _text(1000),
    },
)
STRATEGIES: dict[DocType, st.SearchStrategy[dict[str, Any]]] = {
    "order": ORDERS,
    "payment": PAYMENTS,
    "waybill": WAYBILLS,
}


def _validated(doc_type: DocType, data: dict[str, Any]) -> Any:
    try:
        return validate_document(doc_type, data)
    except DomainError as error:  # the strategies aim at valid documents; report any that are not
        raise AssertionError(f"generated an invalid {doc_type}: {error.extra.get('errors')}") from error


@pytest.mark.parametrize("doc_type", ["order", "payment", "waybill"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_parse_of_render_is_the_document(doc_type: DocType, data: st.DataObject) -> None:
    documents = [_validated(doc_type, d) for d in data.draw(st.lists(STRATEGIES[doc_type], min_size=1, max_size=3))]
    stored = [d.model_dump(mode="json", exclude_none=True) for d in documents]  # what the database keeps
    body = codec.render_message(doc_type, stored, transfer("3120960A01"))
    parsed = codec.parse_message(body)  # the XSD accepts what we render
    assert parsed.kind is KINDS[doc_type]
    again = [validate_document(doc_type, record) for record in parsed.records]
    assert again == documents  # parse(render(x)) == x
    # ... and JSON -> XML -> JSON: the stored JSON form comes back exactly, number spelling included.
    assert [d.model_dump(mode="json", exclude_none=True) for d in again] == stored


def test_numbers_written_as_senders_write_them() -> None:
    order = ceb(examples.ORDER)
    body = message("order", [order])
    for spelling in ("246.12", "246.12000", " 246.12 ", "246.120"):
        variant = body.replace(b"<ceb:acturalPaid>246.12<", f"<ceb:acturalPaid>{spelling}<".encode())
        _, [item] = read_message(variant)
        assert item.document is not None
        assert item.document.acturalPaid == Decimal("246.12")  # type: ignore[union-attr]
    with pytest.raises(MessageRejected) as refused:
        codec.parse_message(body.replace(b"<ceb:acturalPaid>246.12<", b"<ceb:acturalPaid>246.123456<"))
    assert refused.value.return_status == "-2"
    big = body.replace(b"<ceb:goodsValue>200.00<", b"<ceb:goodsValue>19050<")
    assert codec.parse_message(big).records[0]["goodsValue"] == "19050"
    assert codec.parse_message(big.replace(b">19050<", b">19050.00000<")).records[0]["goodsValue"] == "19050.00000"


def test_empty_optional_elements_count_as_absent_and_required_ones_fail() -> None:
    body = message("order", [ceb(examples.ORDER)])
    body = body.replace(b"<ceb:consignee>", b"<ceb:batchNumbers/><ceb:consignee>")
    body = body.replace(b"<ceb:payCode>3120960P01</ceb:payCode>", b"<ceb:payCode>  </ceb:payCode>")
    [record] = codec.parse_message(body).records
    assert "batchNumbers" not in record
    assert "payCode" not in record
    with pytest.raises(MessageRejected) as refused:
        codec.parse_message(body.replace(b"<ceb:orderType>I</ceb:orderType>", b"<ceb:orderType></ceb:orderType>"))
    assert "orderType" in refused.value.return_info


def test_values_the_xsd_lets_through_are_judged_by_the_wire_models() -> None:
    order = ceb(examples.ORDER) | {"appTime": "20261399999999", "currency": "abc"}
    _, [item] = read_message(message("order", [order]))
    assert item.error is not None
    assert item.error.code == "VALIDATION_FAILED"
    paths = {e["path"] for e in item.error.extra["errors"]}
    assert {"appTime", "currency"} <= paths


def test_ints_and_the_waybill_extension() -> None:
    waybill = ceb(examples.WAYBILL) | {"ebpCode": "3120960A01"}
    body = codec.render_message("waybill", [waybill], transfer("3120960L01"))
    assert b"ebpCode" not in body  # no CEB511 field for the JSON extension
    [record] = codec.parse_message(body).records
    assert record["packNo"] == 1
    assert record["guid"] == waybill["guid"]


def test_rendering_writes_plain_decimals() -> None:
    payment = ceb(examples.PAYMENT) | {"amountPaid": "2.4612E+2"}
    body = codec.render_message("payment", [payment], transfer("3120960P01"))
    assert b"<ceb:amountPaid>246.12</ceb:amountPaid>" in body
    assert codec._plain("1E+2") == "100"
    assert codec._plain("0.10000000") == "0.1"
    assert codec._plain("200.00") == "200.00"


def test_receipts_follow_their_xsd_and_name_the_record() -> None:
    kind = KINDS["order"]
    keys = {"ebpCode": "X1", "ebcCode": "X2"}
    rows = [
        ReturnRow("AAAAAAAA-0000-0000-0000-000000000000", keys | {"orderNo": "N1"}, "2", "ok"),
        ReturnRow("BBBBBBBB-0000-0000-0000-000000000000", keys | {"orderNo": "N2"}, "-1", "x" * 5000),
    ]
    parsed = codec.parse_receipts(codec.render_receipts(kind, rows))
    assert parsed.problems == []
    assert parsed.message == "CEB312Message"
    assert [r["orderNo"] for r in parsed.records] == ["N1", "N2"]
    assert len(parsed.records[1]["returnInfo"]) == 1000  # cut to the receipt's C..1000
    body = codec.render_receipts(kind, rows)
    assert body.startswith(
        b'<?xml version="1.0" encoding="UTF-8"?>\n<CEB312Message xmlns="http://www.chinaport.gov.cn/ceb"'
    )

    info = codec.return_codes.return_info("CODE", "detail \x01 with a control character")
    rendered = codec.render_receipts(kind, [ReturnRow(rows[0].guid, rows[0].keys, "-900000", info)])
    assert codec.parse_receipts(rendered).problems == []


def test_message_return_keeps_to_its_xsd_whatever_the_root() -> None:
    long_root = b"<" + b"R" * 300 + b' guid="' + b"G" * 400 + b'"/>'
    with pytest.raises(MessageRejected) as refused:
        codec.parse_message(long_root)
    parsed = codec.parse_receipts(codec.render_message_return(refused.value))
    assert parsed.problems == []
    assert parsed.records[0]["oriMessageType"] == "Unknown"  # not a message type: the official schema's word
    assert parsed.records[0]["oriCopMsgId"] == "G" * 255


def test_message_return_for_each_refusal() -> None:
    for code in ("XML_NOT_WELL_FORMED", "XML_DOCTYPE_FORBIDDEN", "XML_SCHEMA_INVALID", "COP_CODE_MISMATCH"):
        rejected = MessageRejected(code, "because", ["line 3: " + "y" * 6000], message_type="CEB311Message")
        parsed = codec.parse_receipts(codec.render_message_return(rejected))
        assert parsed.problems == []
        [record] = parsed.records
        assert record["returnStatus"].startswith("-")
        assert record["returnInfo"].startswith(f"[{code}] because: line 3:")
        assert len(record["returnInfo"]) <= 5000
        assert record["oriMessageType"] == "CEB311Message"


def test_inventory_xsds_for_the_declaration_issue() -> None:
    head = "".join(
        f"<ceb:{name}>{value}</ceb:{name}>"
        for name, value in [
            ("guid", "4CDE1CFD-EDED-46B1-946C-B8022E42FC94"),
            ("appType", "1"),
            ("appTime", "20261123120000"),
            ("appStatus", "2"),
            ("orderNo", "GW20261123000101"),
            ("ebpCode", "3120960A01"),
            ("ebpName", "环球购"),
            ("ebcCode", "3120960A02"),
            ("ebcName", "东京优选"),
            ("logisticsNo", "SD7700012345CN"),
            ("logisticsCode", "3120960L01"),
            ("logisticsName", "顺达"),
            ("assureCode", "3120960A02"),
            ("ieFlag", "I"),
            ("declTime", "20261123"),
            ("customsCode", "2244"),
            ("portCode", "2244"),
            ("buyerIdType", "1"),
            ("buyerIdNumber", "33010619900101123X"),
            ("buyerName", "王小明"),
            ("buyerTelephone", "13800138000"),
            ("consigneeAddress", "杭州"),
            ("agentCode", "3120960A02"),
            ("agentName", "东京优选"),
            ("tradeMode", "9610"),
            ("trafMode", "5"),
            ("country", "116"),
            ("freight", "0"),
            ("insuredFee", "0"),
            ("currency", "142"),
            ("packNo", "1"),
            ("grossWeight", "0.35"),
            ("netWeight", "0.3"),
        ]
    )
    line = "".join(
        f"<ceb:{n}>{v}</ceb:{n}>"
        for n, v in [
            ("gnum", "1"),
            ("gcode", "3304990099"),
            ("gname", "精华液"),
            ("gmodel", "50ml"),
            ("country", "116"),
            ("currency", "142"),
            ("qty", "1"),
            ("unit", "142"),
            ("qty1", "0.05"),
            ("unit1", "035"),
            ("price", "200"),
            ("totalPrice", "200"),
        ]
    )
    body = (
        '<ceb:CEB621Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="4CDE1CFD-EDED-46B1-946C-B8022E42FC95"'
        f' version="1.0"><ceb:Inventory><ceb:InventoryHead>{head}</ceb:InventoryHead>'
        f"<ceb:InventoryList>{line}</ceb:InventoryList></ceb:Inventory>"
        "<ceb:BaseTransfer><ceb:copCode>3120960A02</ceb:copCode><ceb:copName>东京优选</ceb:copName>"
        "<ceb:dxpMode>DXP</ceb:dxpMode><ceb:dxpId>DXPENT0000458763</ceb:dxpId></ceb:BaseTransfer>"
        "{signature}</ceb:CEB621Message>"
    )
    signed = safe_xml.parse(body.format(signature="").encode())
    generated = service_identity()
    ceb_signature.sign(signed, generated.identity.key, generated.identity.certificate)
    assert safe_xml.validate(signed, "CEB621.xsd") == []
    unsigned = safe_xml.validate(safe_xml.parse(body.format(signature="").encode()), "CEB621.xsd")
    assert unsigned
    assert "Missing child element" in unsigned[0].message
    receipt = (
        '<CEB622Message xmlns="http://www.chinaport.gov.cn/ceb" guid="4CDE1CFD-EDED-46B1-946C-B8022E42FC96" '
        'version="1.0"><InventoryReturn><guid>4CDE1CFD-EDED-46B1-946C-B8022E42FC94</guid>'
        "<customsCode>2244</customsCode><copNo>C1</copNo><preNo>B20261123000000001</preNo>"
        "<returnStatus>800</returnStatus><returnTime>20261123120000123</returnTime>"
        "<returnInfo>放行</returnInfo></InventoryReturn></CEB622Message>"
    )
    assert codec.parse_receipts(receipt.encode()).problems == []


def test_the_benchmark_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from bench import xml_codec

    monkeypatch.setattr("sys.argv", ["xml_codec", "--seconds", "0.02"])
    xml_codec.main()
    output = capsys.readouterr().out
    assert "single-order" in output
    assert "100-order" in output
    assert "messages/s" in output


def test_every_receipt_code_is_documented() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "xml.md").read_text(encoding="utf-8")
    for code, (status, _) in return_codes.MESSAGE_CODES.items():
        assert f"`{code}`" in text, code
        assert f"`{status}`" in text, status
    for code, status in return_codes.RECORD_CODES.items():
        assert f"`{status}`" in text, status
        assert f"({code}" in text or f"`{code}`" in text or f"[{code}]" in text, code
    assert f"`{return_codes.UNKNOWN_REJECTION}`" in text
