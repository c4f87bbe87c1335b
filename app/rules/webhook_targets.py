"""Where a subscription may point (pure): the SSRF guard's decisions, without the DNS lookup itself.

A webhook URL is chosen by an enterprise but called from inside our network, so an address that reaches our
own hosts — loopback, link-local (cloud metadata at 169.254.169.254), private ranges, multicast, reserved —
would let it probe or drive them. The caller resolves the host and asks about every address it got; one
refused address refuses the URL (DNS may answer differently on the next lookup).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

WEBHOOK_SCHEMES = ("http", "https")
AMQP_SCHEMES = ("amqp", "amqps")


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int


def parse_target(url: str) -> Target:
    """The scheme, host and port of a subscription URL; ``ValueError`` with a reason when it is not usable.

    >>> parse_target("https://erp.example.com/hooks")
    Target(scheme='https', host='erp.example.com', port=443)
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from exc
    scheme = parts.scheme.lower()
    if scheme not in WEBHOOK_SCHEMES + AMQP_SCHEMES:
        raise ValueError("the URL must be http(s):// (webhooks) or amqp(s):// (RabbitMQ)")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    if scheme in WEBHOOK_SCHEMES and (parts.username or parts.password):
        raise ValueError("a webhook URL carries no credentials; the signature authenticates us")
    default = {"http": 80, "https": 443, "amqp": 5672, "amqps": 5671}[scheme]
    return Target(scheme, parts.hostname, port or default)


def refusal(address: str) -> str | None:
    """Why a resolved address may not be called, or None when it is a public unicast address.

    >>> refusal("127.0.0.1"), refusal("169.254.169.254"), refusal("10.1.2.3"), refusal("93.184.216.34")
    ('loopback', 'link-local', 'private', None)
    >>> refusal("::ffff:127.0.0.1")
    'loopback'
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for reason, refused in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("multicast", ip.is_multicast),
        ("unspecified", ip.is_unspecified),
        ("reserved", ip.is_reserved),
        ("private", ip.is_private),
    ):
        if refused:
            return reason
    # 100.64.0.0/10 (carrier-grade NAT) is neither private nor global in the ipaddress module.
    return None if ip.is_global else "not globally routable"
