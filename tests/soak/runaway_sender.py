"""A platform's runaway loop, as a process of its own: ``python -m tests.soak.runaway_sender HOST PORT KEY
EBP_CODE CONNECTIONS``.

Posts orders of its own platform as fast as ``CONNECTIONS`` keep-alive connections allow, never backing off on
a 429, until SIGTERM; then prints one JSON line: the order numbers acknowledged, the answers by status, and the
429s that lacked ``Retry-After`` or the RATE_LIMITED problem. Prints ``running`` once its first answer came back.

The requests are written as prepared bytes on raw sockets (only the order number changes, at a fixed place
and length), so that the flood costs this process little CPU: on a shared machine the sender must not stand in
for the service's own cost of refusing it.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter

from tests.factories import purchase

PLACEHOLDER = "RUNAWAY#ORDER#NUMBER"  # 20 characters, as every order number made below


def _request(host: str, port: int, key: str, body: bytes) -> bytes:
    head = (
        f"POST /api/v1/orders HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def run(host: str, port: int, key: str, ebp_code: str, connections: int) -> dict[str, object]:
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    order = purchase(order_no=PLACEHOLDER, own_buyer=True)[0] | {"ebpCode": ebp_code}
    template = _request(host, port, key, json.dumps(order, ensure_ascii=False).encode())
    statuses: Counter[int] = Counter()
    acknowledged: list[str] = []
    malformed_refusals: list[str] = []
    running = asyncio.Event()

    async def loop(worker: int) -> None:
        n = 0
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                statuses[-1] += 1
                continue
            try:
                while not stop.is_set():
                    n += 1
                    order_no = f"RUN{ebp_code[-5:]}{worker:03d}{n:09d}"
                    writer.write(template.replace(PLACEHOLDER.encode(), order_no.encode(), 1))
                    status, headers, body = await _answer(reader)
                    statuses[status] += 1
                    if status in (200, 201, 202):
                        acknowledged.append(order_no)
                    elif status == 429 and (
                        not headers.get("retry-after", "").isdigit() or b'"RATE_LIMITED"' not in body
                    ):
                        malformed_refusals.append(body[:200].decode(errors="replace"))
                    running.set()
            except (OSError, asyncio.IncompleteReadError):
                statuses[-1] += 1  # the server closed an idle keep-alive connection while we were paused
            finally:
                writer.close()

    async def announce() -> None:
        await running.wait()
        print("running", flush=True)

    await asyncio.gather(announce(), *(loop(worker) for worker in range(connections)))
    return {
        "acknowledged": acknowledged,
        "statuses": {str(k): v for k, v in statuses.items()},
        "malformedRefusals": malformed_refusals,
    }


def main() -> None:
    host, port, key, ebp_code, connections = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    print(json.dumps(asyncio.run(run(host, port, key, ebp_code, int(connections)))), flush=True)


if __name__ == "__main__":
    main()
