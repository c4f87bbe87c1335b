"""Connecting a webhook to the addresses the SSRF guard checked, not to what DNS says a moment later.

An HTTP client resolves a URL's host itself when it connects, so a host whose DNS answers a public address to the
guard and a private one to the connect (DNS rebinding) would get past the guard. Here the connection pool's
network backend is replaced: it connects only to the addresses pinned for the host in the current context
(``pinned``), and refuses a host that has none. The URL is left as it is, so the ``Host`` header, the TLS
server name (SNI) and the certificate check all keep the host name, and pooled connections stay per host.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
from collections.abc import Iterable, Iterator, Mapping

import httpcore
from httpcore import AsyncNetworkBackend, AsyncNetworkStream

from app.tls import client_tls_context

_PINNED: contextvars.ContextVar[Mapping[str, tuple[str, ...]]] = contextvars.ContextVar("pinned_addresses")


@contextlib.contextmanager
def pinned(host: str, addresses: tuple[str, ...]) -> Iterator[None]:
    """While inside, a connection to ``host`` goes to ``addresses`` (in order until one answers)."""
    token = _PINNED.set({**_PINNED.get({}), host.lower(): addresses})
    try:
        yield
    finally:
        _PINNED.reset(token)


class PinnedBackend(AsyncNetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        addresses = _PINNED.get({}).get(host.strip("[]").lower())
        if not addresses:
            raise httpcore.ConnectError(f"no checked address for {host}: not connecting")
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._backend.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are not sent over unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class LanePool(httpcore.AsyncConnectionPool):
    """Connection pools side by side, each request given to the next in turn. httpcore's pool looks over
    every one of its connections (a poll() of each idle socket) whenever a request starts or ends, so one pool
    of 64 busy connections costs 128 socket checks per request: it was most of the delivery worker's CPU.
    Lanes of a few connections each keep that scan short; a slow endpoint still holds only its own
    connections, and the lanes' limits add up to the client's."""

    def __init__(self, connections: int, lanes: int, keepalive_expiry_s: float = 5.0) -> None:
        super().__init__(network_backend=PinnedBackend())  # (its own pool stays empty: the lanes do the work)
        self._lanes = [
            httpcore.AsyncConnectionPool(
                ssl_context=client_tls_context(),
                max_connections=-(-connections // lanes),
                max_keepalive_connections=-(-connections // lanes),
                keepalive_expiry=keepalive_expiry_s,
                network_backend=PinnedBackend(),
            )
            for _ in range(lanes)
        ]
        self._turn = itertools.count()

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        return await self._lanes[next(self._turn) % len(self._lanes)].handle_async_request(request)

    async def aclose(self) -> None:
        for lane in self._lanes:
            await lane.aclose()
