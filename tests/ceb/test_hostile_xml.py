"""Hostile XML: every attack is refused with HTTP 400 and a CEB900 without reading or fetching anything.

No timings here: that an attack costs no work is shown by where it is stopped (the code says which defence
refused it: a DTD before anything in it is expanded, libxml2's depth and size limits), and by the answer
staying small. How long each takes is a figure of the soak suite (tests/soak/test_hostile_input.py, "max parse").
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from app.ceb import codec, safe_xml
from tests.ceb.conftest import ceb, message, post_xml, receipts
from tests.factories import Parties, purchase

PASSWD = Path("/etc/passwd")
HEAD = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _valid_order() -> bytes:
    return message("order", [ceb(purchase()[0])])


def _inject(doctype: bytes, reference: bytes) -> bytes:
    """A real CEB311 message with a DOCTYPE in front and an entity reference in the buyer's name."""
    body = _valid_order()
    body = body.replace(HEAD, HEAD + doctype + b"\n", 1)
    return body.replace(b"<ceb:buyerName>", b"<ceb:buyerName>" + reference, 1)


def _billion_laughs() -> bytes:
    levels = [b'<!ENTITY lol0 "lol">']
    for n in range(1, 10):
        levels.append(b'<!ENTITY lol%d "%s">' % (n, b"".join(b"&lol%d;" % (n - 1) for _ in range(10))))
    return _inject(b"<!DOCTYPE CEB311Message [" + b"".join(levels) + b"]>", b"&lol9;")


def _quadratic_blowup() -> bytes:
    entity = b"A" * 50_000
    body = _inject(b'<!DOCTYPE CEB311Message [<!ENTITY a "' + entity + b'">]>', b"")
    return body.replace(b"<ceb:note>", b"<ceb:note>").replace(
        b"<ceb:buyerName>", b"<ceb:buyerName>" + b"&a;" * 50_000, 1
    )


def _external_entity() -> bytes:
    return _inject(b'<!DOCTYPE CEB311Message [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>', b"&xxe;")


def _parameter_entity() -> bytes:
    return _inject(b'<!DOCTYPE CEB311Message [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>', b"")


def _external_dtd(url: str) -> bytes:
    return _inject(b'<!DOCTYPE CEB311Message SYSTEM "' + url.encode() + b'">', b"")


def _xinclude(where: bytes) -> bytes:
    include = b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="file:///etc/passwd" parse="text"/>'
    body = _valid_order()
    if where == b"field":
        return body.replace(b"<ceb:buyerName>", b"<ceb:buyerName>" + include, 1)
    extension = (
        b"<ceb:ExtendMessage><ceb:name>x</ceb:name><ceb:version>1</ceb:version><ceb:Message>"
        + include
        + b"</ceb:Message></ceb:ExtendMessage></ceb:CEB311Message>"
    )
    return body.replace(b"</ceb:CEB311Message>", extension)


def _deep_nesting() -> bytes:
    body = _valid_order()
    deep = b"<ceb:note>" * 100_000 + b"x" + b"</ceb:note>" * 100_000
    return body.replace(b"</ceb:OrderHead>", deep + b"</ceb:OrderHead>", 1)


def _huge_text_node() -> bytes:
    # libxml2 refuses a text node over 10,000,000 bytes unless huge_tree is on (it is off); the body is
    # still under the default 10 MiB limit, so it is the parser that refuses it.
    body = _valid_order()
    return body.replace(b"<ceb:note>", b"", 1).replace(
        b"</ceb:consigneeAddress>", b"</ceb:consigneeAddress><ceb:note>" + b"x" * 10_000_100 + b"</ceb:note>", 1
    )


ATTACKS = {
    "billion laughs": (_billion_laughs, "-1", "XML_DOCTYPE_FORBIDDEN"),
    "quadratic blow-up": (_quadratic_blowup, "-1", "XML_DOCTYPE_FORBIDDEN"),
    "external entity file:///etc/passwd": (_external_entity, "-1", "XML_DOCTYPE_FORBIDDEN"),
    "parameter entity file:///etc/passwd": (_parameter_entity, "-1", "XML_DOCTYPE_FORBIDDEN"),
    "external DTD file": (lambda: _external_dtd("file:///etc/passwd"), "-1", "XML_DOCTYPE_FORBIDDEN"),
    "XInclude in a field": (lambda: _xinclude(b"field"), "-1", "XML_XINCLUDE_FORBIDDEN"),
    "XInclude in ExtendMessage": (lambda: _xinclude(b"extension"), "-1", "XML_XINCLUDE_FORBIDDEN"),
    "100,000-deep nesting": (_deep_nesting, "-1", "XML_NOT_WELL_FORMED"),
    "huge text node": (_huge_text_node, "-1", "XML_NOT_WELL_FORMED"),
    "unknown encoding": (
        lambda: _valid_order().replace(b'encoding="UTF-8"', b'encoding="X-NO-SUCH-CHARSET"', 1),
        "-1",
        "XML_NOT_WELL_FORMED",
    ),
}


def _secrets() -> list[str]:
    lines = [line for line in PASSWD.read_text().splitlines() if line.strip()] if PASSWD.exists() else []
    return [*lines[:3], "root:x:0:0", "/bin/bash", "/usr/sbin/nologin"]


@pytest.mark.parametrize("name", list(ATTACKS))
async def test_attack_is_refused_with_a_ceb900(client: httpx.AsyncClient, parties: Parties, name: str) -> None:
    build, status, code = ATTACKS[name]
    body = build()
    with pytest.raises(codec.MessageRejected) as refused:
        codec.parse_message(body)
    assert (refused.value.code, refused.value.return_status) == (code, status)

    response = await post_xml(client, body, parties.platform)
    assert response.status_code == 400, response.text[:300]
    [answer] = receipts(response, "CEB900Message")
    assert answer["returnStatus"] == status
    assert answer["returnInfo"].startswith(f"[{code}]"), answer
    assert len(response.content) < 10_000  # the body is not echoed back
    for secret in _secrets():
        assert secret not in response.text, name
    page = await client.get("/api/v1/records", headers=parties.platform)
    assert page.json()["items"] == []


async def test_an_external_dtd_over_the_network_is_never_fetched(client: httpx.AsyncClient, parties: Parties) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.3)
        port = listener.getsockname()[1]
        for url in (f"http://127.0.0.1:{port}/evil.dtd",):
            body = _external_dtd(url)
            response = await post_xml(client, body, parties.platform)
            assert response.status_code == 400
            assert receipts(response)[0]["returnInfo"].startswith("[XML_DOCTYPE_FORBIDDEN]")
            entity = _inject(b'<!DOCTYPE CEB311Message [<!ENTITY net SYSTEM "' + url.encode() + b'">]>', b"&net;")
            assert (await post_xml(client, entity, parties.platform)).status_code == 400
        with pytest.raises(TimeoutError):
            listener.accept()  # nobody connected


async def test_a_long_value_inside_the_body_limit_breaks_the_schema(
    client: httpx.AsyncClient, parties: Parties
) -> None:
    body = _valid_order().replace(b"<ceb:buyerName>", b"<ceb:buyerName>" + "长".encode() * 1_000_000, 1)
    response = await post_xml(client, body, parties.platform)
    assert response.status_code == 400
    [answer] = receipts(response, "CEB900Message")
    assert answer["returnStatus"] == "-2"
    assert "buyerName" in answer["returnInfo"]
    assert len(answer["returnInfo"]) <= 5000


async def test_a_body_over_the_limit_is_refused_before_parsing(client: httpx.AsyncClient, parties: Parties) -> None:
    body = _valid_order() + b" " * (10 * 1024 * 1024)
    response = await post_xml(client, body, parties.platform)
    assert response.status_code == 413
    assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


def test_processing_instructions_and_comments_are_dropped_without_splitting_values() -> None:
    order = ceb(purchase()[0])
    body = message("order", [order])
    body = body.replace(b"<ceb:orderType>I</ceb:orderType>", b"<?evil instruction?><ceb:orderType>I</ceb:orderType>")
    number = order["orderNo"].encode()
    body = body.replace(b">" + number + b"<", b">" + number[:3] + b"<!-- split -->" + number[3:] + b"<", 1)
    parsed = codec.parse_message(body)
    assert parsed.records[0]["orderNo"] == order["orderNo"]


def test_the_parser_is_built_hardened() -> None:
    root = safe_xml.parse(b"<a>&amp;&#x4e2d;</a>")
    assert root.text == "&中"
    with pytest.raises(safe_xml.XmlRejected) as refused:
        safe_xml.parse(b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>')
    assert refused.value.kind == "doctype"
    with pytest.raises(safe_xml.XmlRejected) as undeclared:
        safe_xml.parse(b"<a>&e;</a>")
    assert undeclared.value.kind == "not_well_formed"
    assert undeclared.value.problems[0].line == 1
    with pytest.raises(FileNotFoundError):
        safe_xml.schema("../../../../etc/passwd")


def test_no_external_subset_or_parameter_entity_is_ever_read(tmp_path: Path) -> None:
    # lxml's collect_ids=False sets libxml2's loadsubset flag and so reads the external DTD from disk;
    # the parser must not. A file libxml2 would fail to parse tells whether it was read.
    garbage = tmp_path / "garbage.dtd"
    garbage.write_text("this is not a DTD")
    for doctype in (
        f'<!DOCTYPE a SYSTEM "{garbage.as_uri()}">',
        f'<!DOCTYPE a PUBLIC "-//X//Y" "{garbage.as_uri()}">',
        f'<!DOCTYPE a [<!ENTITY % p SYSTEM "{garbage.as_uri()}"> %p;]>',
    ):
        with pytest.raises(safe_xml.XmlRejected) as refused:
            safe_xml.parse(f"{doctype}<a>x</a>".encode())
        assert refused.value.kind == "doctype"
        assert [p.message for p in refused.value.problems] == ["a DOCTYPE is not allowed in a CEB message"], doctype
