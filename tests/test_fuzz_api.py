"""Schemathesis over every operation of the app, in process (ASGI), with positive and negative data:
no 5xx, every status / content type / header / body as the OpenAPI document declares it, schema-violating
requests refused with a 4xx, 405s that name every allowed method, auth never ignored.

The machinery (the app per operation, the parties, the adapted checks) is in tests/fuzzing.py; the soak suite
(tests/soak/test_fuzz_soak.py) runs it with more examples per operation.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, settings
from schemathesis import Case

from app.config import Settings
from tests.conftest import ADMIN, serving
from tests.fuzzing import OPENAPI, Tally, app_with_parties, check_case, make_schema, print_past_capture

schema = make_schema()
TALLY = Tally()


@pytest.fixture
def keys(settings: Settings) -> Iterator[dict[str, dict[str, str]]]:
    """A fresh app for the current operation, with the example parties filed: their key headers by code."""
    yield from app_with_parties(settings)


@pytest.fixture(scope="module", autouse=True)
def _report(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if TALLY.cases:
        print_past_capture(request, TALLY.line())


@schema.parametrize()
@settings(max_examples=20, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
def test_every_operation_conforms(case: Case, keys: dict[str, dict[str, str]]) -> None:
    check_case(case, keys, TALLY)


async def test_a_failed_request_gives_its_connection_back(settings: Settings) -> None:
    """Found by the fuzzing: a handler's error left its unit of work open (connection checked out, transaction
    and on SQLite the write lock held) until garbage collection. Without the embedded matcher, whose idle look
    for work checks a connection out now and then, the pool has nothing else checked out to count."""
    async with serving(settings, embedded_matcher=False) as (app, client):
        for _ in range(5):
            response = await client.get("/api/v1/enterprises/3120960X99", headers=ADMIN)
            assert response.status_code == 404
        assert app.state.engine.pool.checkedout() == 0


# What the fuzzing found, pinned down (the fuzzing itself draws other cases when the schema changes).


async def test_a_405_names_every_method_of_the_resource(client: httpx.AsyncClient) -> None:
    response = await client.request("OPTIONS", "/api/v1/enterprises", headers=ADMIN)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"  # not only the methods of the first route that matched


async def test_a_query_parameter_given_twice_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/admin/dispatches?agency=customs&agency=tax", headers=ADMIN)
    assert (response.status_code, response.json()["code"]) == (400, "MALFORMED_URL")


async def test_a_number_is_not_a_date_time(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/records?updatedSince=1700000000", headers=ADMIN)
    assert response.status_code == 422  # not read as seconds since 1970
    assert response.json()["errors"][0]["path"] == "query/updatedSince"


@pytest.mark.parametrize(
    ("method", "path"),
    [("patch", "/api/v1/enterprises/{code}"), ("post", "/api/v1/officials"), ("get", "/api/v1/goods")],
)
def test_malformed_requests_are_declared(method: str, path: str) -> None:
    responses = OPENAPI["paths"][path][method]["responses"]
    assert "400" in responses, "MALFORMED_BODY / MALFORMED_URL"
    if method != "get":
        assert "413" in responses
