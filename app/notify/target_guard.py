"""The SSRF guard with its DNS lookup: every address a subscription's host resolves to must be allowed.

Asked at registration and again before each delivery, because the host's DNS can change in between. A
webhook is then sent to exactly the addresses checked (app/notify/pinning.py): the HTTP client does not
look the name up a second time, which would let DNS answer differently between the check and the connect.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from app.rules.webhook_targets import Target, parse_target, refusal

RESOLVE_TIMEOUT_S = 5.0


class TargetRefused(ValueError):
    """The URL may not be called; the message says why, for the enterprise to read."""


def _target(url: str) -> Target:
    try:
        return parse_target(url)
    except ValueError as exc:
        raise TargetRefused(str(exc)) from exc


async def resolve(target: Target) -> tuple[str, ...]:
    """The addresses ``target``'s host stands for: itself when it is an address, else what DNS answers."""
    try:
        return (str(ipaddress.ip_address(target.host)),)
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(target.host, target.port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_S
        )
    except (OSError, TimeoutError) as exc:
        raise TargetRefused(f"the host {target.host} does not resolve") from exc
    return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


def _check(target: Target, addresses: tuple[str, ...]) -> None:
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            raise TargetRefused(
                f"the host {target.host} resolves to {address}, a {reason} address; subscriptions must reach "
                "public addresses (an admin may allow private ones: SW_WEBHOOK_ALLOW_PRIVATE)"
            )


async def allowed_target(url: str, allow_private: bool) -> Target:
    """The URL's target, refused unless every address it resolves to is allowed (not resolved at all when
    private addresses are allowed: a registration then needs no DNS)."""
    target = _target(url)
    if not allow_private:
        _check(target, await resolve(target))
    return target


async def checked_addresses(url: str, allow_private: bool) -> tuple[Target, tuple[str, ...]]:
    """The URL's target and the addresses to connect to — resolved once, each one allowed."""
    target = _target(url)
    addresses = await resolve(target)
    if not allow_private:
        _check(target, addresses)
    return target, addresses
