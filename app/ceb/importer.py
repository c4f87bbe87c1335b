"""``sw import``: send folders of CEB XML messages to a running service and tell the truth about the result.

Each file is one POST /api/v1/messages. Sending again is safe (the intake is idempotent), so transport
errors, 429 and 503 are retried a few times. The summary counts messages (answered with a receipt, refused
with a CEB900, or failed) and records (stored, replayed, rejected by returnStatus and problem code).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.ceb import codec, safe_xml

RETRY_STATUSES = frozenset({429, 502, 503, 504})
RETRIES = 3
_CODE = re.compile(r"^\[([A-Z0-9_]+)\]")


@dataclass
class Outcome:
    """What one file came to."""

    path: Path
    kind: str  # "receipt" | "refused" | "failed"
    stored: int = 0
    replayed: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    reason: str = ""


@dataclass
class ImportSummary:
    files: int = 0
    receipts: int = 0
    refused: int = 0
    failed: int = 0
    stored: int = 0
    replayed: int = 0
    rejected: int = 0
    rejections: Counter[str] = field(default_factory=Counter)  # "returnStatus [CODE]" -> records
    refusals: Counter[str] = field(default_factory=Counter)  # "returnStatus [CODE]" or "HTTP 413 …" -> messages
    first_file: dict[str, Path] = field(default_factory=dict)

    @property
    def clean(self) -> bool:
        return self.refused == 0 and self.failed == 0 and self.rejected == 0

    def add(self, outcome: Outcome) -> None:
        self.files += 1
        if outcome.kind == "receipt":
            self.receipts += 1
        elif outcome.kind == "refused":
            self.refused += 1
        else:
            self.failed += 1
        self.stored += outcome.stored
        self.replayed += outcome.replayed
        self.rejected += sum(outcome.rejected.values())
        self.rejections.update(outcome.rejected)
        if outcome.reason:
            self.refusals[outcome.reason] += 1
        for reason in [*outcome.rejected, outcome.reason]:
            if reason:
                self.first_file.setdefault(reason, outcome.path)


def collect_files(paths: Iterable[Path]) -> list[Path]:
    """Files as given, and every ``*.xml`` (any case) under each folder, recursively; sorted, no repeats."""
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if candidate.is_file() and candidate.suffix.lower() == ".xml":
                    found.setdefault(candidate, None)
        elif path.is_file():
            found.setdefault(path, None)
    return list(found)


def _reason(record: dict[str, str]) -> str:
    status = record.get("returnStatus", "?")
    match = _CODE.match(record.get("returnInfo", ""))
    return f"{status} [{match.group(1)}]" if match else status


def read_answer(path: Path, response: httpx.Response) -> Outcome:
    """Turn the service's answer into an outcome (receipts are read with the hardened parser)."""
    media = response.headers.get("content-type", "")
    if "xml" in media and response.status_code in (200, 400, 403):
        try:
            receipts = codec.parse_receipts(response.content)
        except safe_xml.XmlRejected as exc:
            return Outcome(path, "failed", reason=f"HTTP {response.status_code} unreadable answer: {exc}")
        if receipts.message == "CEB900Message":
            reason = _reason(receipts.records[0]) if receipts.records else "CEB900"
            return Outcome(path, "refused", reason=reason)
        rejected = Counter(_reason(r) for r in receipts.records if r.get("returnStatus", "").startswith("-"))
        accepted = sum(1 for r in receipts.records if not r.get("returnStatus", "").startswith("-"))
        replayed = int(response.headers.get("Records-Replayed", "0") or 0)
        stored = int(response.headers.get("Records-Stored", accepted - replayed) or 0)
        return Outcome(path, "receipt", stored=stored, replayed=replayed, rejected=rejected)
    code = ""
    if "json" in media:
        try:
            code = str(response.json().get("code", ""))
        except ValueError:
            code = ""
    return Outcome(path, "failed", reason=f"HTTP {response.status_code} {code}".strip())


async def send_file(
    client: httpx.AsyncClient, path: Path, key: str, retries: int = RETRIES, pause: float = 0.5
) -> Outcome:
    try:
        body = await asyncio.to_thread(path.read_bytes)
    except OSError as exc:
        return Outcome(path, "failed", reason=f"unreadable file: {exc.strerror}")
    headers = {"Content-Type": "application/xml", "X-API-Key": key}
    attempts = retries + 1
    for attempt in range(1, attempts + 1):
        try:
            response = await client.post("/api/v1/messages", content=body, headers=headers)
        except httpx.TransportError as exc:
            if attempt == attempts:
                return Outcome(path, "failed", reason=f"transport error: {type(exc).__name__}")
        else:
            if response.status_code not in RETRY_STATUSES or attempt == attempts:
                return read_answer(path, response)
        await asyncio.sleep(pause * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


async def send_all(
    files: list[Path],
    base_url: str,
    key: str,
    concurrency: int,
    on_done: Callable[[Outcome], None] = lambda _: None,
    *,
    retries: int = RETRIES,
    request_timeout: float = 60.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ImportSummary:
    """Send every file with at most ``concurrency`` requests in flight."""
    summary = ImportSummary()
    queue: asyncio.Queue[Path] = asyncio.Queue()
    for path in files:
        queue.put_nowait(path)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = httpx.AsyncClient(base_url=base_url, timeout=request_timeout, limits=limits, transport=transport)
    async with client:

        async def worker() -> None:
            while True:
                try:
                    path = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                outcome = await send_file(client, path, key, retries)
                summary.add(outcome)
                on_done(outcome)

        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return summary
