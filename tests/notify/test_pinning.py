"""DNS rebinding: the webhook goes to the address the SSRF guard checked, even when the name answers
differently when asked again. The resolver (the outer edge: DNS) answers 127.0.0.1 — where the receiver
listens — the first time and 127.0.0.2 — where nothing does — every time after; an HTTP client that looked
the name up again on connect would reach nothing."""

from __future__ import annotations

import socket
import uuid
from typing import Any

import pytest

from app.notify.webhook import post_webhook, webhook_client
from app.services.webhook_delivery import Claimed
from tests.notify.receiver import receiving

NAME = "hooks.rebinding.test"


class RebindingResolver:
    def __init__(self) -> None:
        self.asked = 0
        self.real = socket.getaddrinfo

    def __call__(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if (host.decode() if isinstance(host, bytes) else host) != NAME:  # anyio passes IDNA-encoded bytes
            return self.real(host, port, *args, **kwargs)
        self.asked += 1
        return self.real("127.0.0.1" if self.asked == 1 else "127.0.0.2", port, *args, **kwargs)


def claimed(url: str) -> Claimed:
    return Claimed(uuid.uuid4(), uuid.uuid4(), url, None, ["whsec_test"], "status_changed", b"{}", "application/json")


@pytest.mark.parametrize("allow_private", [True, False])
async def test_the_connection_goes_to_the_checked_address_not_a_second_answer(
    monkeypatch: pytest.MonkeyPatch, allow_private: bool
) -> None:
    resolver = RebindingResolver()
    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    async with receiving() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        client = webhook_client()
        try:
            result = await post_webhook(
                client, claimed(f"http://{NAME}:{port}/hooks"), allow_private=allow_private, timeout_s=10
            )
        finally:
            await client.aclose()
    if not allow_private:
        # The guard itself refuses the loopback answer: nothing is sent anywhere.
        assert result.error is not None
        assert "loopback" in result.error
        assert receiver.arrivals == []
        assert resolver.asked == 1
        return
    assert result.delivered, result.error
    assert resolver.asked == 1  # looked up once, by the guard
    assert [a.host for a in receiver.arrivals] == [f"{NAME}:{port}"]  # the name kept in the Host header


async def test_a_host_without_checked_addresses_is_not_connected_to() -> None:
    """The pinning backend refuses what the guard did not check (a request sent around post_webhook)."""
    async with receiving() as receiver:
        client = webhook_client()
        try:
            with pytest.raises(Exception, match="no checked address"):
                async with client.post(receiver.url, {}, b"{}"):
                    pass
        finally:
            await client.aclose()
    assert receiver.arrivals == []
