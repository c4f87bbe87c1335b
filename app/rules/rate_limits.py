"""Rate limits per enterprise and route class: which class a request is in, and the fixed window it counts in.

A window is ``window_s`` seconds of the epoch clock (every process and Redis agree on it to the clocks'
skew): the n-th request of an enterprise in a window is refused when n exceeds its limit, until the window
ends. Fixed windows can let through up to twice the limit across a window's edge; for stopping a runaway
sender that is enough, and it costs one counter per enterprise and class.

>>> route_class("POST", "/api/v1/orders/batch"), route_class("GET", "/api/v1/records"), route_class("PATCH", "/x")
('intake', 'queries', None)
>>> current_window(125.5, 60)
Window(index=2, retry_after_s=55)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

RouteClass = Literal["intake", "queries"]
INTAKE_PATHS = ("/api/v1/orders", "/api/v1/payments", "/api/v1/waybills", "/api/v1/messages")


def route_class(method: str, path: str) -> RouteClass | None:
    """Documents sent (each intake route and its /batch) are ``intake``; reads are ``queries``; filing acts
    (keys, delegations, goods records …) are not limited."""
    if method == "POST" and any(path == p or path.startswith(p + "/") for p in INTAKE_PATHS):
        return "intake"
    if method in ("GET", "HEAD"):
        return "queries"
    return None


@dataclass(frozen=True)
class Window:
    index: int
    retry_after_s: int  # until the next window starts, rounded up


def current_window(now_s: float, window_s: int) -> Window:
    index = math.floor(now_s / window_s)
    return Window(index, max(1, math.ceil((index + 1) * window_s - now_s)))


def allowed(count: int, limit: int) -> bool:
    """``count`` is this request's number in the window, itself included; a limit of 0 means none."""
    return limit == 0 or count <= limit
