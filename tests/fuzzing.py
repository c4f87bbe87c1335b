"""The machinery of the API fuzzing: tests/test_fuzz_api.py (normal suite) and tests/soak/test_fuzz_soak.py.

Schemathesis over every operation of the app, in process (ASGI), with positive and negative data:
no 5xx, every status / content type / header / body as the OpenAPI document declares it, schema-violating
requests refused with a 4xx, 405s that name every allowed method, auth never ignored.

The schema is the one the app serves. Each operation gets a fresh app on the test database, which
schemathesis runs in its own event-loop thread (it starts the lifespan there, so the engine lives on that
loop), with the example parties and goods filed first so that authenticated calls reach real code paths
and not only 401 / 403.

Two built-in checks are adapted to documented contracts rather than taken as they are:
- ``positive_data_acceptance`` is left out: the server enforces rules a JSON Schema cannot state (check
  digits of enterprise codes, sums of amounts, filed enterprises, cursors it issued, CEB XML inside a
  string), so a schema-valid request may rightly be a 4xx. A 5xx or an undeclared status still fails.
- ``negative_data_rejection`` runs inside ``invalid_data_refused``, which also knows that a batch answers 200
  with one result per item (a schema-violating item must be refused in its own result) and that whitespace
  around values is ignored (docs/xml.md), so a value is as long as what is left once it is trimmed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jsonschema_rs
import pytest
import schemathesis
from anyio.from_thread import start_blocking_portal
from fastapi import FastAPI
from pydantic import SecretStr
from schemathesis import Case, CheckContext, Response
from schemathesis.core.failures import FailureGroup, ServerError
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from app.config import Settings
from app.main import create_app
from app.schemas import examples
from app.schemas.goods import EXAMPLE_GOODS
from tests.conftest import ADMIN, _wipe

# The document the app serves; building it touches no database.
OPENAPI = create_app(
    Settings(  # type: ignore[call-arg]
        database_url="sqlite+aiosqlite:///:memory:", admin_token=SecretStr("unused"), _env_file=None
    )
).openapi()

# Documents are transmitted by enterprises (an admin may not), each by its own kind of firm.
ENTERPRISE_ROUTES = {
    "/api/v1/orders": "3120960A01",
    "/api/v1/orders/batch": "3120960A01",
    "/api/v1/payments": "3120960P01",
    "/api/v1/payments/batch": "3120960P01",
    "/api/v1/waybills": "3120960L01",
    "/api/v1/waybills/batch": "3120960L01",
    "/api/v1/messages": "3120960A01",  # the XML examples start with a CEB311 order
}
BATCH_ITEMS = {
    f"/api/v1/{route}/batch": jsonschema_rs.Draft202012Validator(
        {"$ref": f"#/components/schemas/{model}", "components": OPENAPI["components"]}
    )
    for route, model in (("orders", "OrderIn"), ("payments", "PaymentIn"), ("waybills", "WaybillIn"))
}

BODY_VALIDATORS: dict[str, Any] = {}
NON_BODY = (ParameterLocation.PATH, ParameterLocation.QUERY, ParameterLocation.HEADER, ParameterLocation.COOKIE)


@dataclass
class Tally:
    """What one fuzzing test did: cases per operation, statuses, and the operations where a check failed."""

    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: set[str] = field(default_factory=set)  # operations with a 5xx
    violations: set[str] = field(default_factory=set)  # operations with any other failed check

    def line(self) -> str:
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(self.statuses.items()))
        return f"schemathesis: {len(self.cases)} operations, {self.cases.total()} cases ({statuses})"


class CurrentApp:
    """The ASGI app schemathesis calls: the current test's app, built from its ``settings``."""

    app: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.app is not None, "no app: the `keys` fixture builds one"
        await self.app(scope, receive, send)


CURRENT = CurrentApp()


def make_schema() -> Any:
    """The app's schema, for ``@schema.parametrize()``."""
    config: dict[str, Any] = {
        "base-url": "http://testserver",  # where the checks that send again (auth, methods) go
        # A batch's items are the single-document schemas, whose coverage phase already runs on their own
        # routes (about 900 cases): the batch routes get the fuzzing phase only.
        "operations": [{"include-path-regex": "/batch$", "phases": {"coverage": {"enabled": False}}}],
    }
    schema = schemathesis.openapi.from_dict(OPENAPI, config=schemathesis.Config.from_dict(config))
    schema.app = CURRENT
    return schema


def _json_body_validator(operation: Any) -> Any:
    """The JSON request-body schema of an operation (formats checked too), or None."""
    key = operation.label
    if key not in BODY_VALIDATORS:
        definition = OPENAPI["paths"][operation.path][operation.method.lower()]
        body = definition.get("requestBody", {}).get("content", {}).get("application/json")
        BODY_VALIDATORS[key] = body and jsonschema_rs.Draft202012Validator(
            {**body["schema"], "components": OPENAPI["components"]}, validate_formats=True
        )
    return BODY_VALIDATORS[key]


def _trimmed(value: Any) -> Any:
    """What the server reads: whitespace around values is ignored (docs/xml.md), lengths apply to the rest."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return [_trimmed(item) for item in value]
    if isinstance(value, dict):
        return {name: _trimmed(item) for name, item in value.items()}
    return value


def _unsendable_query(case: Case) -> bool:
    """A query value generated as an object (or a list of them) cannot be sent as one: form serialisation sends
    its member names, e.g. ``[{"v": {}}]`` goes as ``itemNo=v``, a valid string. What the server got says
    nothing about its handling of the invalid value generated."""
    values = (case.query or {}).values()
    return any(isinstance(v, dict) or (isinstance(v, list) and any(isinstance(i, dict) for i in v)) for v in values)


def invalid_data_refused(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """``negative_data_rejection``, held to three documented contracts it cannot know of (and blind to query
    values that cannot be sent as generated, ``_unsendable_query``):
    a batch answers 200 with a result per item, so a schema-violating item must be refused in its own result;
    whitespace around values is ignored, so " x" of ``maxLength`` + 1 characters is not too long; and a body
    past the size limit is refused with 413 before anything reads it."""
    meta, body = case.meta, case.body
    negative = meta is not None and meta.generation.mode.is_negative
    if negative and response.status_code == 413:
        # Refused before it was read: a body past SW_MAX_BODY_BYTES (a generated string of 64 KiB and more).
        # schemathesis' list of refusals leaves 413 out; the soak's 150 examples an operation drew one.
        return True
    if negative and response.status_code < 400 and meta is not None:
        if case.operation.path in BATCH_ITEMS and isinstance(body, dict) and isinstance(body.get("items"), list):
            validator = BATCH_ITEMS[case.operation.path]
            invalid = [i for i, item in enumerate(body["items"]) if not validator.is_valid(_trimmed(item))]
            if invalid:
                results = {r["index"]: r for r in response.json()["items"]}
                accepted = [i for i in invalid if results[i]["status"] < 400]
                assert not accepted, f"schema-violating batch items were accepted: {accepted}"
                return True
        # Besides the query only the key header may be "negative", and check_case has put the key back.
        sent_as_valid = (ParameterLocation.QUERY, ParameterLocation.HEADER)
        if _unsendable_query(case) and not any(
            meta.is_negative_at(location) for location in meta.components if location not in sent_as_valid
        ):
            return True
        validator = _json_body_validator(case.operation)
        only_the_body = not any(meta.is_negative_at(location) for location in NON_BODY)
        if validator and only_the_body and _trimmed(body) != body and validator.is_valid(_trimmed(body)):
            return True
    return negative_data_rejection(ctx, response, case)


def _file_parties() -> dict[str, dict[str, str]]:
    """The four example enterprises with a key each, and the example goods record; key headers by code."""
    keys: dict[str, dict[str, str]] = {}
    with asgi.get_client(CURRENT) as http:  # starts the app's lifespan on schemathesis' loop
        for enterprise in examples.ENTERPRISES:
            filed = http.post("/api/v1/enterprises", json=enterprise, headers=ADMIN)
            assert filed.status_code == 201, filed.text
            key = http.post(f"/api/v1/enterprises/{enterprise['code']}/keys", json={}, headers=ADMIN)
            assert key.status_code == 201, key.text
            keys[enterprise["code"]] = {"X-API-Key": key.json()["key"]}
        goods = http.post("/api/v1/goods", json=EXAMPLE_GOODS, headers=ADMIN)
        assert goods.status_code == 201, goods.text
    return keys


async def _wipe_and_dispose(app: FastAPI) -> None:
    await _wipe(app)
    await app.state.engine.dispose()


def app_with_parties(settings: Settings) -> Iterator[dict[str, dict[str, str]]]:
    """For a ``keys`` fixture: a fresh app for the current operation, with the example parties filed; their
    key headers by code."""
    CURRENT.app = app = create_app(settings)
    try:
        yield _file_parties()
    finally:
        asgi.shutdown_lifespans()  # the app's shutdown (schemathesis' plugin may have done it already)
        CURRENT.app = None
        with start_blocking_portal() as portal:
            portal.call(_wipe_and_dispose, app)


def check_case(case: Case, keys: dict[str, dict[str, str]], tally: Tally) -> None:
    """Send one generated case with the right key and run every check on the answer."""
    path = case.operation.path
    tally.cases[case.operation.label] += 1
    code = ENTERPRISE_ROUTES.get(path)
    excluded = [positive_data_acceptance, negative_data_rejection]
    headers = keys[code] if code else ADMIN
    # The key goes into the case as well, so that the checks judge the headers as sent (a mutation that drops
    # the key is still honoured: schemathesis then leaves it out); ``headers=`` marks it as given explicitly,
    # so that ``ignored_auth`` probes without it and with a wrong one after each 2xx.
    case.headers.update(headers)
    if isinstance(case.query, dict) and isinstance(case.query.get("wait"), int) and case.query["wait"] > 1:
        # A long poll of an empty feed holds the answer ``wait`` seconds: more than this client's read timeout.
        case.query["wait"] = 1
    try:
        response = case.call_and_validate(
            headers=headers, excluded_checks=excluded, additional_checks=[invalid_data_refused]
        )
    except FailureGroup as failed:
        server = any(isinstance(f, ServerError) for f in failed.exceptions)
        (tally.server_errors if server else tally.violations).add(case.operation.label)
        raise
    tally.statuses[response.status_code] += 1


def print_past_capture(request: pytest.FixtureRequest, line: str) -> None:
    """A line in the terminal output even when pytest captures it."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(f"\n{line}")
