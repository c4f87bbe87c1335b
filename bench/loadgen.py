"""The load generator: its own process, asyncio (uvloop), N concurrent keep-alive HTTP/1.1 connections.

    python -m bench.loadgen SPEC.json RESULT.json

SPEC (written by bench/run.py)::

    {"base_url": "http://127.0.0.1:8123", "mode": "single" | "batch_json" | "batch_xml",
     "keys": {"<enterprise code>": "<api key>", ...},   # {} for the baseline (no authentication)
     "prefix": "B1S", "start": 0, "purchases": 3000, "seed": 0,
     "concurrency": 32, "warmup_s": 2, "duration_s": 10, "rate": null, "cycle": false, "timeout_s": 120,
     "client": "raw" | "httpx", "started_file": null}

With ``started_file``, the ``time.monotonic()`` at which the clock started (after the bodies are built) is
written there, so that the harness can sample the database over the same window.

The client is a minimal HTTP/1.1 client on asyncio streams (``RawConnection``) unless ``client`` is ``httpx``:
on this two-core machine httpx's own CPU cost per request made the load generator the bottleneck (a fifth of
the baseline's rate at 32 connections, falling as connections were added), which would flatter every ratio.

Every request body is built before the clock starts (bench/workload.py, deterministic from prefix/start/seed).
Closed loop by default: ``concurrency`` connections each send the next request as soon as the previous answer
arrives. With ``rate`` (requests/s) it is open loop: request i is sent at t0 + i/rate whatever the answers
(at most ``concurrency`` in flight). Requests are issued until warmup + duration has passed or the workload is
exhausted; what is in flight then is awaited (and counted for the acknowledgements) but not measured. With
``cycle`` the requests are sent round and round (the baseline: it keeps no keys, so a repeat costs it the same).

Measured: the requests that *completed* inside [t0 + warmup, t0 + warmup + duration]; throughput is their
count (documents: their documents) over that window; latency percentiles are exact nearest-rank percentiles
over their recorded latencies (no histogram buckets).

RESULT: counts by HTTP status, the distinct document keys acknowledged with a 2xx (the harness checks they are
all in the database), replays, the first errors, and the measured throughput and latency.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import workload


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    keys: list[tuple[str, str, str]]


def build_requests(spec: dict[str, Any]) -> list[Request]:
    keys: dict[str, str] = spec.get("keys") or {}
    mode = spec["mode"]
    stream = workload.document_stream(spec["prefix"], spec["start"], spec["purchases"], spec.get("seed", 0))

    def auth(sender: str) -> dict[str, str]:
        return {"X-API-Key": keys[sender]} if keys else {}

    requests: list[Request] = []
    if mode == "single":
        for doc in stream:
            body = json.dumps(doc.body, ensure_ascii=False, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json", **auth(doc.sender)}
            requests.append(Request(f"/api/v1/{workload.PATHS[doc.doc_type]}", headers, body, [doc.key]))
        return requests
    for batch in workload.batches(stream):
        doc_keys = [d.key for d in batch.docs]
        if mode == "batch_json":
            body = json.dumps(batch.json_body(), ensure_ascii=False, separators=(",", ":")).encode()
            headers = {"Content-Type": "application/json", **auth(batch.sender)}
            requests.append(Request(f"/api/v1/{workload.PATHS[batch.doc_type]}/batch", headers, body, doc_keys))
        elif mode == "batch_xml":
            headers = {"Content-Type": "application/xml", **auth(batch.sender)}
            requests.append(Request("/api/v1/messages", headers, batch.xml_body(), doc_keys))
        else:
            raise ValueError(f"unknown mode {mode!r}")
    return requests


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of an ascending list: the smallest value with q % at or below it."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def latency_summary(values_ms: list[float]) -> dict[str, float | int]:
    values = sorted(values_ms)
    if not values:
        return {"count": 0}
    return {
        "count": len(values),
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(values[-1], 3),
        "mean": round(sum(values) / len(values), 3),
    }


@dataclass
class Answer:
    status_code: int
    headers: dict[str, str]  # lower-case names
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)


class TransportError(Exception):
    """The request got no complete answer (connection refused, reset, closed mid-answer, timed out)."""


class RawConnection:
    """One keep-alive HTTP/1.1 connection, just enough for our servers (Content-Length or chunked answers).

    The point is cost: the load generator shares the machine's two cores with what it measures, and httpx's
    client spends several times more CPU per request than the servers under test do for a bare insert (in
    this harness's own runs it capped the baseline at a fifth of what this client reaches)."""

    IDLE_S = 2.0  # uvicorn closes a keep-alive connection idle for 5 s: reconnect well before that

    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.host, self.port, self.timeout_s = host, port, timeout_s
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.last_used = 0.0
        self.reopened = 0  # requests sent again because the server had closed the idle connection

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if self.writer is not None and time.monotonic() - self.last_used > self.IDLE_S:
            self.close()
        reused = self.writer is not None
        try:
            try:
                return await asyncio.wait_for(self._post(path, headers, body), self.timeout_s)
            except asyncio.IncompleteReadError as exc:
                # The server closed a kept-alive connection before answering anything: it had not read the
                # request (uvicorn closes idle connections only). Send it once more on a new connection.
                if not reused or exc.partial:
                    raise
                self.close()
                self.reopened += 1
                return await asyncio.wait_for(self._post(path, headers, body), self.timeout_s)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError) as exc:
            self.close()
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.last_used = time.monotonic()

    async def _post(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        assert self.writer is not None
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
        self.writer.write(head.encode("latin-1") + body)
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        answer_headers: dict[str, str] = {}
        while (line := await self.reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            answer_headers[name.strip().lower()] = value.strip()
        if answer_headers.get("transfer-encoding", "").lower() == "chunked":
            content = bytearray()
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                content += await self.reader.readexactly(size)
                await self.reader.readexactly(2)
            await self.reader.readuntil(b"\r\n")
        else:
            content = bytearray(await self.reader.readexactly(int(answer_headers.get("content-length", "0"))))
        if answer_headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, answer_headers, bytes(content))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class HttpxConnection:
    """The same interface over a shared httpx client (``"client": "httpx"`` in the spec), for comparison."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def post(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        import httpx

        try:
            response = await self.client.post(path, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        names = {k.lower(): v for k, v in response.headers.items()}
        return Answer(response.status_code, names, response.content)

    def close(self) -> None:
        pass


class Run:
    def __init__(self, spec: dict[str, Any], requests: list[Request]) -> None:
        self.spec = spec
        self.requests = requests
        self.next = 0
        self.statuses: Counter[int] = Counter()
        self.acked: set[tuple[str, str, str]] = set()
        self.docs_acked = 0
        self.replayed = 0
        self.item_errors: Counter[str] = Counter()
        self.errors: list[dict[str, Any]] = []
        self.transport_errors = 0
        # (completed at, latency s, documents) of every request answered with a 2xx
        self.done: list[tuple[float, float, int]] = []
        self.httpx_client: Any = None
        self.connections: list[RawConnection] = []

    def connection(self) -> RawConnection | HttpxConnection:
        if self.httpx_client is not None:
            return HttpxConnection(self.httpx_client)
        url = urlsplit(self.spec["base_url"])
        raw = RawConnection(url.hostname or "127.0.0.1", url.port or 80, float(self.spec.get("timeout_s", 120)))
        self.connections.append(raw)
        return raw

    def _error(self, request: Request, status: int, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append({"path": request.path, "status": status, "body": text[:800]})

    def record(self, request: Request, response: Answer) -> None:
        status = response.status_code
        self.statuses[status] += 1
        if status >= 300:
            self._error(request, status, response.text)
            return
        mode = self.spec["mode"]
        if mode == "single":
            self.acked.update(request.keys)
            self.docs_acked += 1
            self.replayed += response.headers.get("idempotent-replayed") == "true"
        elif mode == "batch_json":
            items = response.json()["items"]
            for item in items:
                if 200 <= item["status"] < 300:
                    self.acked.add(request.keys[item["index"]])
                    self.docs_acked += 1
                    self.replayed += bool((item.get("receipt") or {}).get("replayed"))
                else:
                    self.item_errors[str((item.get("problem") or {}).get("code") or item["status"])] += 1
                    self._error(request, item["status"], json.dumps(item, ensure_ascii=False))
        else:
            rejected = int(response.headers.get("records-rejected", "0"))
            if rejected:
                self.item_errors["XML_RECORD_REJECTED"] += rejected
                self._error(request, status, response.text)
                return
            self.acked.update(request.keys)
            self.docs_acked += len(request.keys)
            self.replayed += int(response.headers.get("records-replayed", "0"))

    async def worker(self, stop_at: float) -> None:
        """One connection of the closed loop: the next request as soon as the previous answer is in."""
        connection = self.connection()
        cycle = bool(self.spec.get("cycle"))
        try:
            while (cycle or self.next < len(self.requests)) and time.perf_counter() < stop_at:
                request = self.requests[self.next % len(self.requests)]
                self.next += 1
                await self.send(connection, request)
        finally:
            connection.close()

    async def send(self, connection: RawConnection | HttpxConnection, request: Request) -> None:
        started = time.perf_counter()
        try:
            response = await connection.post(request.path, request.headers, request.body)
        except TransportError as exc:
            self.transport_errors += 1
            self._error(request, 0, str(exc))
            return
        finished = time.perf_counter()
        self.record(request, response)
        if response.status_code < 300:
            self.done.append((finished, finished - started, len(request.keys)))

    async def paced(self, t0: float, stop_at: float, rate: float, cap: int) -> None:
        """Open loop: request i at t0 + i/rate, whatever the answers (at most ``cap`` in flight)."""
        idle: list[RawConnection | HttpxConnection] = []
        in_flight: set[asyncio.Task[None]] = set()
        gate = asyncio.Semaphore(cap)

        async def one(request: Request) -> None:
            connection = idle.pop() if idle else self.connection()
            try:
                await self.send(connection, request)
            finally:
                idle.append(connection)
                gate.release()

        i = 0
        while self.next < len(self.requests):
            due = t0 + i / rate
            if due >= stop_at:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await gate.acquire()
            request = self.requests[self.next]
            self.next += 1
            i += 1
            task = asyncio.create_task(one(request))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        if in_flight:
            await asyncio.gather(*in_flight)
        for connection in idle:
            connection.close()

    async def run(self) -> dict[str, Any]:
        spec = self.spec
        concurrency = int(spec["concurrency"])
        warmup, duration = float(spec.get("warmup_s", 0)), float(spec["duration_s"])
        if spec.get("client") == "httpx":
            import httpx

            limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
            timeout = httpx.Timeout(float(spec.get("timeout_s", 120)), connect=10.0)
            self.httpx_client = httpx.AsyncClient(base_url=spec["base_url"], limits=limits, timeout=timeout)
        try:
            t0 = time.perf_counter()
            if spec.get("started_file"):  # the harness samples the match backlog from now (same monotonic clock)
                Path(spec["started_file"]).write_text(repr(time.monotonic()))  # noqa: ASYNC240 - a few bytes, once
            w0, w1 = t0 + warmup, t0 + warmup + duration
            if spec.get("rate"):
                await self.paced(t0, w1, float(spec["rate"]), concurrency)
            else:
                await asyncio.gather(*(self.worker(w1) for _ in range(concurrency)))
            ended = time.perf_counter()
        finally:
            if self.httpx_client is not None:
                await self.httpx_client.aclose()
        exhausted = self.next >= len(self.requests) and not self.spec.get("cycle")
        window_end = min(w1, ended) if exhausted else w1
        window = max(window_end - w0, 1e-9)
        measured = [(lat, docs) for done_at, lat, docs in self.done if w0 <= done_at <= window_end]
        return {
            "mode": spec["mode"],
            "client": spec.get("client", "raw"),
            "requests_built": len(self.requests),
            "requests_sent": self.next,
            "exhausted": exhausted,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "transport_errors": self.transport_errors,
            "resent_after_idle_close": sum(c.reopened for c in self.connections),
            "item_errors": dict(self.item_errors),
            "errors": self.errors,
            "docs_acked": self.docs_acked,
            "distinct_keys_acked": len(self.acked),
            "replayed": self.replayed,
            "elapsed_s": round(ended - t0, 3),
            "window_s": round(window, 3),
            "measured": {
                "requests": len(measured),
                "docs": sum(docs for _, docs in measured),
                "requests_per_s": round(len(measured) / window, 2),
                "docs_per_s": round(sum(docs for _, docs in measured) / window, 2),
                "latency_ms": latency_summary([lat * 1000 for lat, _ in measured]),
            },
        }


def main() -> None:
    spec_path, result_path = Path(sys.argv[1]), Path(sys.argv[2])
    spec = json.loads(spec_path.read_text())
    built = time.perf_counter()
    requests = build_requests(spec)
    build_s = time.perf_counter() - built
    try:
        import uvloop  # uvicorn[standard] brings it: a cheaper event loop leaves more CPU to the servers

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    result = runner(Run(spec, requests).run())
    result["build_s"] = round(build_s, 3)
    result_path.write_text(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
