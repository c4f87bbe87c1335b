"""Our XSDs, the codec's field tables and the JSON wire models describe the same records."""

from __future__ import annotations

import pytest
from lxml import etree

from app.ceb import kinds, safe_xml, samples
from app.ceb.kinds import DECIMAL_FIELDS, INT_FIELDS, KINDS, XSD_BY_MESSAGE
from app.schemas.documents import OrderIn, OrderLine, PaymentIn, WaybillIn

XS = "{http://www.w3.org/2001/XMLSchema}"
TRANSPORT = {"guid", "appType", "appTime", "appStatus"}  # required in CEB XML, defaulted in JSON


def _sequence(xsd: str, type_name: str) -> list[etree._Element]:
    root = safe_xml.parse((safe_xml.XSD_DIR / xsd).read_bytes())
    for complex_type in root.iter(f"{XS}complexType"):
        if complex_type.get("name") == type_name:
            sequence = complex_type.find(f"{XS}sequence")
            assert sequence is not None
            return [e for e in sequence if e.tag == f"{XS}element"]
    raise AssertionError(f"{type_name} not in {xsd}")


@pytest.mark.parametrize("xsd", sorted(set(XSD_BY_MESSAGE.values())))
def test_every_xsd_compiles_from_local_files(xsd: str) -> None:
    assert safe_xml.schema(xsd) is not None
    text = (safe_xml.XSD_DIR / xsd).read_text(encoding="utf-8")
    assert "http://" not in text.replace("http://www.w3.org/2001/XMLSchema", "").replace(
        "http://www.chinaport.gov.cn/ceb", ""
    ).replace("http://www.w3.org/2000/09/xmldsig#", ""), "schemaLocation must stay local"


@pytest.mark.parametrize(
    ("xsd", "type_name", "fields", "model", "extensions"),
    [
        ("CEB311.xsd", "OrderHeadType", kinds.ORDER_HEAD, OrderIn, {"orderList"}),
        ("CEB311.xsd", "OrderListType", kinds.ORDER_LIST, OrderLine, set()),
        ("CEB411.xsd", "PaymentHeadType", kinds.PAYMENT_HEAD, PaymentIn, set()),
        ("CEB511.xsd", "LogisticsHeadType", kinds.LOGISTICS_HEAD, WaybillIn, {"ebpCode"}),
    ],
)
def test_xsd_field_table_and_wire_model_agree(
    xsd: str, type_name: str, fields: tuple[str, ...], model: type, extensions: set[str]
) -> None:
    elements = _sequence(xsd, type_name)
    assert tuple(e.get("name") for e in elements) == fields  # the order the codec writes
    model_fields = model.model_fields  # type: ignore[attr-defined]
    assert set(model_fields) - extensions == set(fields)
    for element in elements:
        name = element.get("name")
        optional_in_xml = element.get("minOccurs") == "0"
        required_in_json = model_fields[name].is_required()
        if name in TRANSPORT:
            assert not optional_in_xml, name
        else:
            assert optional_in_xml == (not required_in_json), name
        type_name_of = (element.get("type") or "").removeprefix("ceb:")
        assert (type_name_of in ("N19_5", "N19_5opt")) == (name in DECIMAL_FIELDS), name
        assert (type_name_of in ("N4", "N9")) == (name in INT_FIELDS), name


def test_kinds_name_their_receipts_and_xsds() -> None:
    for kind in KINDS.values():
        assert XSD_BY_MESSAGE[kind.message] == kind.xsd
        assert XSD_BY_MESSAGE[kind.receipt_message] == kind.receipt_xsd
        elements = _sequence(kind.receipt_xsd, f"{kind.receipt_record}Type")
        names = [e.get("name") for e in elements]
        assert names == ["guid", *kind.receipt_keys, "returnStatus", "returnTime", "returnInfo"]


def test_sample_files_in_docs_are_current() -> None:
    for name, body in samples.sample_files().items():
        path = samples.SAMPLES_DIR / name
        assert path.read_bytes() == body, f"docs/samples/{name} is stale: run `sw docs`"
        assert safe_xml.validate(safe_xml.parse(body), name.split("-")[0] + ".xsd") == []


def test_the_xsd_folder_holds_exactly_our_files() -> None:
    shipped = {p.name for p in safe_xml.XSD_DIR.glob("*.xsd")}
    assert shipped == {*XSD_BY_MESSAGE.values(), "ceb-common.xsd", "xmldsig-core-schema.xsd"}
