"""CEB XML codec benchmark: parse + XSD validate + map, on one core.

    uv run python -m bench.xml_codec [--seconds 2]

For a single-order CEB311 message and a 100-order message it prints messages/s and records/s per core
(one thread, CPU time), for the codec alone (hardened parse, XSD, map to dicts) and for the codec plus the
wire-model validation every record also goes through at intake; then each stage on its own, to show what
bounds the rate. Target from the issue: >= 5,000 single-order messages/s on one core.
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

from app.ceb import codec, safe_xml, samples
from app.ceb.kinds import CEB_NS, ORDER
from app.schemas import examples
from app.services.messages import read_message

TARGET_SINGLE = 5000
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
    args = parser.parse_args()
    print(
        f"CEB XML codec benchmark — Python {platform.python_version()}, lxml {etree.__version__}, "
        f"libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))}, one core (CPU time)"
    )
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


if __name__ == "__main__":
    main()
