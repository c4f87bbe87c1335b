"""A TCP proxy on loopback that resets connections (RST, SO_LINGER 0) between the dispatcher and an agency.

Two kinds, drawn per request from one seeded generator:

- ``before`` — the request never reaches the agency: the client's connection is reset as its request starts;
- ``after``  — the agency received the request and answered, and the answer is replaced by a reset (the
  "did it land?" case at the transport level: the agency has acted, the dispatcher cannot know).

HTTP/1.1 with keep-alive sends one request at a time per connection, so a chunk from the client that starts
with a method is the start of a request, and one from the agency that starts with ``HTTP/1.1`` is the start
of an answer — all the parsing a reset needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
from collections import Counter

METHODS = (b"GET ", b"POST ", b"PUT ", b"PATCH ", b"DELETE ")


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class ResettingProxy:
    def __init__(self, upstream_port: int, reset_before: float, reset_after: float, seed: int = 0) -> None:
        self.upstream_port = upstream_port
        self.reset_before, self.reset_after = reset_before, reset_after
        self.rng = random.Random(seed)
        self.counts: Counter[str] = Counter()
        self.server: asyncio.Server | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> ResettingProxy:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.server.wait_closed()

    async def _connection(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            agency_r, agency_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            _reset(client_w)
            self._tasks.discard(task)
            return
        doomed = asyncio.Event()  # the request in progress is to lose its answer

        async def requests() -> None:
            while chunk := await client_r.read(65536):
                if chunk.startswith(METHODS):
                    self.counts["requests"] += 1
                    if self.rng.random() < self.reset_before:
                        self.counts["reset before the agency"] += 1
                        raise ConnectionResetError
                    if self.rng.random() < self.reset_after:
                        doomed.set()
                agency_w.write(chunk)
                await agency_w.drain()

        async def answers() -> None:
            while chunk := await agency_r.read(65536):
                if chunk.startswith(b"HTTP/1.1 ") and doomed.is_set():
                    self.counts["reset after the agency answered"] += 1
                    raise ConnectionResetError
                client_w.write(chunk)
                await client_w.drain()

        pumps = [asyncio.create_task(requests()), asyncio.create_task(answers())]
        injected = True  # also when the proxy closes under an open connection
        try:
            done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            injected = any(not p.cancelled() and isinstance(p.exception(), ConnectionResetError) for p in done)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in (client_w, agency_w):
                if injected:
                    _reset(writer)
                else:  # one side closed (keep-alive expiry): close the other side the ordinary way
                    writer.close()
            self._tasks.discard(task)
