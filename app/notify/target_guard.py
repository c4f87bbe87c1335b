"""The SSRF guard with its DNS lookup: every address a subscription's host resolves to must be allowed.

Asked at registration and again before each delivery, because the host's DNS can change in between.
"""

from __future__ import annotations

import asyncio
import socket

from app.rules.webhook_targets import Target, parse_target, refusal

RESOLVE_TIMEOUT_S = 5.0


class TargetRefused(ValueError):
    """The URL may not be called; the message says why, for the enterprise to read."""


async def allowed_target(url: str, allow_private: bool) -> Target:
    try:
        target = parse_target(url)
    except ValueError as exc:
        raise TargetRefused(str(exc)) from exc
    if allow_private:
        return target
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
        )
    except (OSError, TimeoutError) as exc:
        raise TargetRefused(f"the host {target.host} does not resolve") from exc
    for info in infos:
        address = str(info[4][0])
        reason = refusal(address)
        if reason is not None:
            raise TargetRefused(
                f"the host {target.host} resolves to {address}, a {reason} address; subscriptions must reach "
                "public addresses (an admin may allow private ones: SW_WEBHOOK_ALLOW_PRIVATE)"
            )
    return target
