"""Hostile input, measured: the XML attack corpus and the JSON corpus on every route, each refused with a 4xx
(never a 5xx), nothing read from disk or fetched (a loopback listener counts connection attempts), with the
worst response time and memory growth of any case reported (targets < 1 s, < 50 MiB; figures, not asserted).
``full`` sends every JSON case to every route; ``quick`` the heavy ones (megabytes) to one document route only.

Also the rows of the tenancy matrix (``full`` only: the normal suite runs it) and of the signed callbacks: the
same checks as the normal suite's (tests/test_reliability_tenancy.py, tests/test_reliability_signatures.py), run
here so that the table has them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from app.ceb import codec
from tests.ceb.conftest import post_xml, receipts
from tests.ceb.test_hostile_xml import ATTACKS, _inject, _valid_order
from tests.conftest import soak_level
from tests.factories import Parties, file_parties
from tests.figures import record_figure
from tests.test_reliability_hostile_json import (
    ROUTES,
    case_body,
    check_refused,
    matrix,
    peak_rss_kib,
    reset_peak_rss,
    rss_kib,
    send,
    stored_state,
)
from tests.test_reliability_signatures import run_signature_checks
from tests.test_reliability_tenancy import run_tenancy_matrix

pytestmark = pytest.mark.soak
FULL = soak_level() == "full"

PASSWD = Path("/etc/passwd")


@dataclass
class Worst:
    """The slowest case and the one that grew the process most."""

    seconds: float = 0.0
    slowest: str = ""
    growth_kib: int = 0
    hungriest: str = ""
    cases: int = 0
    peaks: bool = field(default_factory=reset_peak_rss)  # whether VmHWM can be reset (else RSS after only)

    async def measure(self, name: str, call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        self.peaks = reset_peak_rss()  # (no gc.collect(): it takes 0.1-0.5 s in this process)
        before = rss_kib()
        started = time.perf_counter()
        response = await call()
        elapsed = time.perf_counter() - started
        growth = max((peak_rss_kib() if self.peaks else 0), rss_kib()) - before
        self.cases += 1
        if elapsed > self.seconds:
            self.seconds, self.slowest = elapsed, name
        if growth > self.growth_kib:
            self.growth_kib, self.hungriest = growth, name
        return response

    def summary(self) -> str:
        rss = "peak RSS" if self.peaks else "RSS"
        return (
            f"max response {self.seconds:.2f} s ({self.slowest}); "
            f"max {rss} growth {self.growth_kib / 1024:.1f} MiB ({self.hungriest})"
        )


class LoopbackListener:
    """A TCP listener on 127.0.0.1 that counts every connection made to it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def __enter__(self) -> LoopbackListener:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def url(self, name: str) -> bytes:
        return f"http://127.0.0.1:{self.port}/{name}".encode()


@pytest.fixture
def listener() -> Iterator[LoopbackListener]:
    with LoopbackListener() as running:
        yield running


def _network_attacks(listener: LoopbackListener) -> dict[str, bytes]:
    """Every way an XML document could make the parser reach out, pointed at the listener."""
    include = b'<xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="' + listener.url("x.xml") + b'"/>'
    return {
        "external DTD over HTTP": _inject(b'<!DOCTYPE CEB311Message SYSTEM "' + listener.url("evil.dtd") + b'">', b""),
        "parameter entity over HTTP": _inject(
            b'<!DOCTYPE CEB311Message [<!ENTITY % p SYSTEM "' + listener.url("p.dtd") + b'"> %p;]>', b""
        ),
        "external entity over HTTP": _inject(
            b'<!DOCTYPE CEB311Message [<!ENTITY net SYSTEM "' + listener.url("e.txt") + b'">]>', b"&net;"
        ),
        "XInclude over HTTP": _valid_order().replace(b"<ceb:buyerName>", b"<ceb:buyerName>" + include, 1),
    }


def _secrets() -> list[str]:
    lines = [line for line in PASSWD.read_text().splitlines() if line.strip()] if PASSWD.exists() else []
    return [*lines[:3], "root:x:0:0", "/bin/bash", "/usr/sbin/nologin"]


async def test_xml_attack_corpus(client: httpx.AsyncClient, listener: LoopbackListener) -> None:
    parties = await file_parties(client)
    corpus = {name: (build(), code) for name, (build, _, code) in ATTACKS.items()}
    corpus |= {name: (body, "XML_DOCTYPE_FORBIDDEN") for name, body in _network_attacks(listener).items()}
    corpus["XInclude over HTTP"] = (corpus["XInclude over HTTP"][0], "XML_XINCLUDE_FORBIDDEN")
    worst, parse_max, parse_slowest, rejected = Worst(), 0.0, "", 0
    for name, (body, code) in corpus.items():
        started = time.perf_counter()
        with pytest.raises(codec.MessageRejected) as refused:
            codec.parse_message(body)
        parse = time.perf_counter() - started
        if parse > parse_max:
            parse_max, parse_slowest = parse, name
        assert refused.value.code == code, name

        response = await worst.measure(name, lambda body=body: post_xml(client, body, parties.platform))  # type: ignore[misc]
        assert response.status_code == 400, (name, response.text[:300])
        [answer] = receipts(response, "CEB900Message")
        assert answer["returnInfo"].startswith(f"[{code}]"), (name, answer)
        assert all(secret not in response.text for secret in _secrets()), name
        rejected += 1

    oversized = _valid_order() + b" " * (10 * 1024 * 1024)
    response = await worst.measure("body over 10 MiB", lambda: post_xml(client, oversized, parties.platform))
    assert (response.status_code, response.json()["code"]) == (413, "PAYLOAD_TOO_LARGE")
    rejected += 1
    assert (await client.get("/api/v1/records", headers=parties.platform)).json()["items"] == []
    time.sleep(0.1)  # a connection the parser made would have been accepted by now  # noqa: ASYNC251
    assert listener.connections == 0

    record_figure(
        f"XML attack corpus ({rejected} cases: entities, DTDs, XInclude, file and loopback URLs, depth, size)",
        f"rejected {rejected}/{rejected} (400 CEB900 / 413); file content in answers 0; loopback connections "
        f"{listener.connections}; max parse {parse_max:.3f} s ({parse_slowest}); {worst.summary()}",
        "100 %; 0; 0; < 1 s; < 50 MiB",
    )


@pytest.mark.timeout(1800)
async def test_json_hostile_corpus_on_every_route(app: FastAPI, client: httpx.AsyncClient) -> None:
    parties: Parties = await file_parties(client)
    before = await stored_state(client)
    accepted_before = await _accepted(app)
    worst, largest, failures, server_errors, refused = Worst(), 0, [], 0, 0
    # full: every case on every route; quick: the heavy cases on one document route only.
    pairs = matrix(heavy_everywhere=FULL, soak_only=True)
    for route, name in pairs:
        body = case_body(route, name)
        label = f"{name} → {route.method} {route.path}"
        response = await worst.measure(label, lambda route=route, body=body: send(client, route, parties, body))  # type: ignore[misc]
        del body
        largest = max(largest, len(response.content))
        server_errors += response.status_code >= 500
        try:
            check_refused(response, route, name)
            refused += 1
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0])
    assert failures == [], "\n".join(failures)
    assert await stored_state(client) == before
    accepted = await _accepted(app) - accepted_before  # nothing accepted either, to be refused later
    assert accepted == 0, f"{accepted} hostile documents accepted as submissions"
    record_figure(
        f"JSON hostile corpus ({len({n for _, n in pairs})} cases, {len(ROUTES)} JSON routes, {len(pairs)} requests"
        f"{'' if FULL else '; heavy cases on one document route'})",
        f"refused {refused}/{len(pairs)} (4xx, {server_errors} × 5xx, nothing stored, {accepted} accepted); "
        f"largest answer {largest / 1024:.1f} KiB; "
        f"{worst.summary()}",
        "100 % 4xx; < 1 s; < 50 MiB",
    )


async def _accepted(app: FastAPI) -> int:
    """Submissions accepted so far (intake's queue for the matcher)."""
    async with app.state.engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM submission")))


@pytest.mark.skipif(not FULL, reason="quick: the normal suite runs the same matrix")
async def test_tenancy_matrix(app: FastAPI, client: httpx.AsyncClient) -> None:
    result = await run_tenancy_matrix(app, client)
    assert result.problems == [], "\n".join(result.problems)
    assert result.refused > 100
    assert result.visible_to_readers > 10  # the markers the leak check looks for do show where they may
    record_figure(
        f"tenancy matrix ({result.roles} roles × {result.operations} operations × own/other data)",
        f"{result.requests} requests; leaks {result.leaks}; 5xx {result.server_errors}; plain keys in the database "
        f"{result.plain_keys}; other's data refused with 403/404 in {result.refused} cases, problems "
        f"{len(result.problems)}",
        "0 leaks; 404/403 as documented",
    )


async def test_signed_callbacks(client: httpx.AsyncClient) -> None:
    passed = await run_signature_checks(client)
    record_figure(
        "signed callbacks (valid, 1-byte change, stale ±301 s, replay, concurrent replay, rotation, keys compared "
        "in constant time)",
        f"pass {passed}/{passed}",
        "100 %",
    )
