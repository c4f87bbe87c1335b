"""CEB XML codec benchmark: parse + XSD validate + map, on one core.

    uv run python -m bench.xml_codec [--seconds 2]

For a single-order CEB311 message and a 100-order message it prints messages/s and records/s per core
(one thread, CPU time), for the codec alone (hardened parse, XSD, map to dicts) and for the codec plus the
wire-model validation every record also goes through at intake; then each stage on its own, to show what
bounds the rate. Target from the issue: >= 5,000 single-order messages/s on one core.

Signed messages (issue 11): a single-order message signed with SM2-SM3 and with RSA-SHA256 (2048 bits),
verified as the door does it (parse, XSD, map, signature profile and digest, then the signature with the filed
key) and the signature check alone; the bare SM2 / RSA verification; and the cost of signing a CEB621 (render,
sign, serialize) as the dispatcher does. Target: >= 1,000 SM2-SM3 verified messages/s per core.
``--only signed`` runs just these.
"""

from __future__ import annotations

import argparse
import copy
import platform
import time
import uuid
from collections.abc import Callable
from typing import Any

from lxml import etree

from app.ceb import codec, safe_xml, samples, signature
from app.ceb.kinds import CEB_NS, ORDER
from app.crypto import certificates, keys
from app.crypto.identity import SigningIdentity
from app.crypto.keys import PublicKey
from app.schemas import examples
from app.services.inventory_signing import signed_inventory_message
from app.services.messages import read_message

TARGET_SINGLE = 5000
TARGET_SM2_VERIFIED = 1000
RECORD = f"{{{CEB_NS}}}{ORDER.record}"


def _order(n: int) -> dict[str, Any]:
    order = copy.deepcopy(examples.ORDER)
    order.update(
        guid=str(uuid.UUID(int=n)).upper(),
        appType="1",
        appTime="20261123101800",
        appStatus="2",
        orderNo=f"BENCH{n:08d}",
        payTransactionId=f"PAYBENCH{n:08d}",
    )
    return order


def messages() -> dict[str, tuple[bytes, int]]:
    transfer = samples.transfer_for(examples.PLATFORM)
    single = codec.render_message("order", [_order(0)], transfer)
    hundred = codec.render_message("order", [_order(n) for n in range(100)], transfer)
    return {"single-order": (single, 1), "100-order": (hundred, 100)}


def rate(work: Callable[[], object], seconds: float) -> float:
    """Calls per CPU second of this process (one thread: one core)."""
    for _ in range(3):
        work()
    calls = 0
    cpu_start = time.process_time()
    wall_end = time.perf_counter() + seconds
    while time.perf_counter() < wall_end:
        for _ in range(10):
            work()
        calls += 10
    return calls / (time.process_time() - cpu_start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    parser.add_argument("--only", choices=["codec", "signed"], help="run one part")
    args = parser.parse_args()
    print(
        f"CEB XML codec benchmark — Python {platform.python_version()}, lxml {etree.__version__}, "
        f"libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))}, one core (CPU time)"
    )
    if args.only != "codec":
        signed_messages(args.seconds)
    if args.only == "signed":
        return
    print(f"{'message':<14}{'stage':<44}{'messages/s':>12}{'records/s':>12}")
    results: dict[tuple[str, str], float] = {}
    for name, (body, records) in messages().items():
        root = safe_xml.parse(body)
        stages: list[tuple[str, Callable[[], object]]] = [
            ("codec: parse + XSD + map (parse_message)", lambda body=body: codec.parse_message(body)),
            ("codec + wire models (read_message)", lambda body=body: read_message(body)),
            ("  hardened parse only", lambda body=body: safe_xml.parse(body)),
            ("  XSD validation only", lambda root=root: safe_xml.validate(root, ORDER.xsd)),
            ("  map to dicts only", lambda root=root: [codec._record(ORDER, e) for e in root.iterchildren(RECORD)]),
        ]
        for stage, work in stages:
            per_second = rate(work, args.seconds)
            results[(name, stage)] = per_second
            print(f"{name:<14}{stage:<44}{per_second:>12,.0f}{per_second * records:>12,.0f}")
    single = results[("single-order", "codec: parse + XSD + map (parse_message)")]
    verdict = "meets" if single >= TARGET_SINGLE else "is below"
    print(f"\nsingle-order codec rate {single:,.0f} messages/s {verdict} the target of {TARGET_SINGLE:,}/s per core")


def signed_messages(seconds: float) -> None:
    """Verification per core for SM2-SM3 and RSA signed single-order messages, and the cost of signing a CEB621."""
    print(f"{'signed message':<22}{'stage':<52}{'per second':>12}{'ms each':>9}")
    body, _ = messages()["single-order"]
    inventory = inventory_of_example()
    results: dict[tuple[str, str], float] = {}
    for algorithm in ("SM2", "RSA"):
        key = keys.generate(algorithm)  # type: ignore[arg-type]
        identity = SigningIdentity(key, certificates.self_signed(key, "bench", "bench"), "bench")
        root = safe_xml.parse(body)
        signature.sign(root, key, identity.certificate)
        signed = bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
        public = identity.certificate.public_key
        read = signature.read_signature(safe_xml.parse(signed))
        assert read is not None
        assert read.verified_by(public)
        hash_name = "sm3" if algorithm == "SM2" else "sha256"
        primitive = key.sign(read.signed_info, hash_name)  # type: ignore[arg-type]
        name = f"{algorithm} single-order"
        stages: list[tuple[str, Callable[[], object]]] = [
            ("verified at the door (parse_message + verify)", lambda s=signed, k=public: _door(s, k)),
            ("signature alone (parse, profile, C14N, digest, verify)", lambda s=signed, k=public: _check(s, k)),
            (
                f"  {algorithm} verify primitive alone",
                lambda p=public, r=read, v=primitive, h=hash_name: p.verify(r.signed_info, v, h),
            ),
            ("sign a CEB621 (render + sign + serialize)", lambda i=identity: signed_inventory_message(inventory, i)),
            ("  render a CEB621 unsigned (for comparison)", lambda: codec.render_inventory(inventory, _TRANSFER)),
        ]
        for stage, work in stages:
            per_second = rate(work, seconds)
            results[(algorithm, stage)] = per_second
            print(f"{name:<22}{stage:<52}{per_second:>12,.0f}{1000 / per_second:>9.2f}")
    door = results[("SM2", "verified at the door (parse_message + verify)")]
    verdict = "meets" if door >= TARGET_SM2_VERIFIED else "is below"
    print(f"\nSM2-SM3 verified messages {door:,.0f}/s per core {verdict} the target of {TARGET_SM2_VERIFIED:,}/s\n")


_TRANSFER = {"copCode": "3120960A02", "copName": "东京优选", "dxpMode": "DXP", "dxpId": "3120960A02"}


def _door(body: bytes, key: PublicKey) -> bool:
    message = codec.parse_message(body)
    assert message.signature is not None
    return message.signature.verified_by(key)


def _check(body: bytes, key: PublicKey) -> bool:
    found = signature.read_signature(safe_xml.parse(body))
    return found is not None and found.verified_by(key)


def inventory_of_example() -> dict[str, Any]:
    """A CEB621 inventory of the example order, as the declaration stage composes it (the mock agencies'
    test package has one; built here from the example documents)."""
    order = _order(0)
    waybill = examples.WAYBILL
    line = order["orderList"][0]
    head = {
        "guid": order["guid"], "appType": "1", "appTime": "20261123102000", "appStatus": "2",
        "orderNo": order["orderNo"], "ebpCode": order["ebpCode"], "ebpName": order["ebpName"],
        "ebcCode": order["ebcCode"], "ebcName": order["ebcName"], "logisticsNo": waybill["logisticsNo"],
        "logisticsCode": waybill["logisticsCode"], "logisticsName": waybill["logisticsName"],
        "copNo": order["orderNo"], "assureCode": order["ebcCode"], "ieFlag": "I", "declTime": "20261123",
        "customsCode": "1501", "portCode": "1501", "buyerIdType": "1", "buyerIdNumber": order["buyerIdNumber"],
        "buyerName": order["buyerName"], "buyerTelephone": order["buyerTelephone"],
        "consigneeAddress": order["consigneeAddress"], "agentCode": order["ebcCode"], "agentName": order["ebcName"],
        "tradeMode": "9610", "trafMode": "5", "country": "116", "freight": "0", "insuredFee": "0",
        "currency": "142", "packNo": 1, "grossWeight": "0.35", "netWeight": "0.05",
    }  # fmt: skip
    lines = [
        {
            "gnum": 1, "itemNo": line["itemNo"], "itemName": line["itemName"], "gcode": "3304990099",
            "gname": line["itemName"], "gmodel": line["gmodel"], "country": "116", "currency": "142",
            "qty": "1", "unit": "142", "qty1": "0.05", "unit1": "035", "price": "200.00", "totalPrice": "200.00",
        }
    ]  # fmt: skip
    return head | {"inventoryList": lines}


if __name__ == "__main__":
    main()
