from __future__ import annotations

import pytest

from app.rules.rate_limits import Window, allowed, current_window, route_class


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/api/v1/orders", "intake"),
        ("POST", "/api/v1/payments/batch", "intake"),
        ("POST", "/api/v1/messages", "intake"),
        ("POST", "/api/v1/ordersx", None),  # only the routes themselves, not a look-alike
        ("GET", "/api/v1/records", "queries"),
        ("HEAD", "/api/v1/goods", "queries"),
        ("POST", "/api/v1/enterprises/3120960A01/keys", None),  # a filing act
        ("PATCH", "/api/v1/goods/3120960A02/X", None),
    ],
)
def test_route_class(method: str, path: str, expected: str | None) -> None:
    assert route_class(method, path) == expected


def test_windows_are_aligned_on_the_epoch_and_say_when_the_next_one_starts() -> None:
    assert current_window(125.5, 60) == Window(index=2, retry_after_s=55)
    assert current_window(120.0, 60) == Window(index=2, retry_after_s=60)
    assert current_window(179.99, 60) == Window(index=2, retry_after_s=1)


def test_allowed_up_to_the_limit_and_zero_is_no_limit() -> None:
    assert allowed(3, 3)
    assert not allowed(4, 3)
    assert allowed(10**9, 0)
