"""The SSRF guard's decisions on URLs and resolved addresses."""

from __future__ import annotations

import re

import pytest

from app.rules.webhook_targets import Target, parse_target, refusal


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("192.168.1.20", "private"),
        ("172.16.0.1", "private"),
        ("fd00::1", "private"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to refuse, not to bind
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not globally routable"),
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
    ],
)
def test_refusal(address: str, reason: str | None) -> None:
    assert refusal(address) == reason


def test_parse_target() -> None:
    assert parse_target("HTTPS://Example.com/x") == Target("https", "example.com", 443)
    assert parse_target("http://example.com/x") == Target("http", "example.com", 80)
    assert parse_target("http://example.com:8080/x") == Target("http", "example.com", 8080)
    assert parse_target("amqp://guest:guest@mq.example.com/vh") == Target("amqp", "mq.example.com", 5672)
    assert parse_target("amqps://mq.example.com/vh") == Target("amqps", "mq.example.com", 5671)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("gopher://example.com", "the URL must be http(s):// (webhooks) or amqp(s):// (RabbitMQ)"),
        ("https:///path", "the URL has no host"),
        ("http://a:b@example.com/", "a webhook URL carries no credentials; the signature authenticates us"),
        ("http://a@example.com/", "a webhook URL carries no credentials; the signature authenticates us"),
        ("https://:b@example.com/", "a webhook URL carries no credentials; the signature authenticates us"),
        ("http://example.com:99999/", "not a valid URL: Port out of range 0-65535"),
    ],
)
def test_an_unusable_url_is_refused_with_its_reason(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(reason)}$"):
        parse_target(url)
