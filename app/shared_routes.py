"""Adding a module's routes to an app without building them again.

A module's ``APIRouter`` builds each route once, at import: its path, its dependency graph, its request and response
models. ``app.include_router`` does not reuse that work: this FastAPI builds every included route once more, per
app, on the app's first request that reaches it (about 100-250 ms of CPU for the whole API, measured). A
process serves one app, so in production that is one slow first request; the test suite builds an app per test,
and it was a fifth of the suite's time. The routers here take no prefix, tags or dependencies at inclusion (all
of that is on the routers themselves), so the built routes are the app's routes as they are.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI


def add_routes(app: FastAPI, router: APIRouter) -> None:
    app.router.routes.extend(router.routes)
