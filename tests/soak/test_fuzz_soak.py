"""Schemathesis over every operation at soak sizes: the machinery of the normal suite's fuzzing
(tests/fuzzing.py, tests/test_fuzz_api.py), with more examples per operation.

``full``: the coverage phase (every boundary and negative variant of each parameter) and 150 fuzzed examples per
operation. Not in ``quick``: the normal suite already runs the coverage phase and 20 examples per operation, and
most of the time goes to the fresh app each operation gets.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from schemathesis import Case

from app.config import Settings
from tests.conftest import soak_level
from tests.figures import record_figure
from tests.fuzzing import OPENAPI, Tally, app_with_parties, check_case, make_schema, print_past_capture

FULL = soak_level() == "full"
pytestmark = [pytest.mark.soak, pytest.mark.skipif(not FULL, reason="quick: the normal suite fuzzes every operation")]

EXAMPLES = 150
schema = make_schema()
TALLY = Tally()
OPERATIONS = {
    f"{method.upper()} {path}": bool(operation.get("parameters") or operation.get("requestBody"))
    for path, operations in OPENAPI["paths"].items()
    for method, operation in operations.items()
}


@pytest.fixture
def keys(settings: Settings) -> Iterator[dict[str, dict[str, str]]]:
    yield from app_with_parties(settings)


@pytest.fixture(scope="module", autouse=True)
def _figure(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if not TALLY.cases:
        return
    print_past_capture(request, TALLY.line())
    failed = TALLY.server_errors | TALLY.violations
    # An operation without parameters or body (GET /healthz) has one case to generate.
    per_operation = min(n for label, n in TALLY.cases.items() if OPERATIONS.get(label, True))
    record_figure(
        f"schemathesis, ASGI, every operation (coverage phase + {EXAMPLES} fuzzed examples/op)",
        f"{len(TALLY.cases)}/{len(OPERATIONS)} operations; {TALLY.cases.total()} cases "
        f"(≥ {per_operation} per operation with inputs); "
        f"server errors {len(TALLY.server_errors)}; schema violations {len(TALLY.violations)}; "
        f"operations failing {len(failed)}",
        "all ops; ≥ 100 cases/op; 0; 0",
    )


@schema.parametrize()
@settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck)
)
def test_every_operation_conforms_at_soak_size(case: Case, keys: dict[str, dict[str, str]]) -> None:
    check_case(case, keys, TALLY)
