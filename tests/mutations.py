"""Hand-picked mutation checks: break a guarded piece of code on purpose and see that its tests fail.

Each mutation replaces one exact snippet of app code (which must occur exactly once), runs the tests that guard
it on the chosen backends ``runs`` times, and restores the file. A mutation is *killed* on a backend when every
run failed; the table written into docs/testing.md (``--write``) is what this run measured, nothing else.

    ./scripts/uv run python -m tests.mutations [--only NAME ...] [--write]

PostgreSQL is used when ``SW_TEST_DATABASE_URL`` names it; otherwise only SQLite runs. The working tree's app/
files must be clean (a mutation is applied in place and always restored).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "testing.md"
BEGIN, END = "<!-- mutations:begin -->", "<!-- mutations:end -->"


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]
    backends: tuple[str, ...] = ("sqlite", "postgres")
    runs: int = 1


INVENTORY = "app/rules/inventory.py"
INVENTORY_TESTS = ("tests/rules/test_inventory.py",)
TAX = "app/rules/tax.py"
TAX_E2E = "tests/test_dispatch.py::test_tax_on_a_half_cent_agrees_with_the_independent_tax_agency"
MOCK_TAX = "app/mock_agencies/rules/tax.py"

MUTATIONS = [
    Mutation(
        "buyer quota lock removed",
        "app/services/declaration.py",
        'await advisory_xact_locks(session, [f"buyer:{b}" for b in buyers], BUYER_LOCKS)',
        "pass",
        ("tests/test_quota_race.py",),
        backends=("postgres",),  # on SQLite the lock is a no-op: BEGIN IMMEDIATE serialises writers
        runs=10,
    ),
    Mutation(
        "SQLite BEGIN IMMEDIATE → deferred BEGIN",
        "app/db.py",
        'conn.exec_driver_sql("BEGIN IMMEDIATE")',
        'conn.exec_driver_sql("BEGIN")',
        ("tests/test_quota_race.py",),
        backends=("sqlite",),
        runs=5,
    ),
    Mutation(
        "inventory country not by trade mode",
        INVENTORY,
        'order.orderList[0].country if party.trade_mode == "9610" else "142"',
        "order.orderList[0].country",
        INVENTORY_TESTS,
        backends=("sqlite",),
    ),
    Mutation(
        "inventory freight always the order's",
        INVENTORY,
        "_text(waybill.freight if waybill.freight is not None else order.freight)",
        "_text(order.freight)",
        INVENTORY_TESTS,
        backends=("sqlite",),
    ),
    Mutation(
        "inventory insuredFee always 0",
        INVENTORY,
        '_text(waybill.insuredFee or Decimal("0"))',
        '_text(Decimal("0"))',
        INVENTORY_TESTS,
        backends=("sqlite",),
    ),
    Mutation(
        "inventory netWeight always 0",
        INVENTORY,
        '"netWeight": _text(waybill.weight)',
        '"netWeight": "0"',
        INVENTORY_TESTS,
        backends=("sqlite",),
    ),
    Mutation(
        "inventory note not cut to 1,000",
        INVENTORY,
        "payment.note[:1000]",
        "payment.note",
        INVENTORY_TESTS,
        backends=("sqlite",),
    ),
    Mutation(
        "inventory barCode default changed",
        INVENTORY,
        'line.barCode or "无"',
        'line.barCode or ""',
        INVENTORY_TESTS,
        backends=("sqlite",),
    ),
    Mutation(
        "tax: banker's rounding (half to even)",
        TAX,
        "return value.quantize(CENT, rounding=ROUND_HALF_UP)",
        'return value.quantize(CENT, rounding="ROUND_HALF_EVEN")',
        ("tests/rules/test_tax.py",),
        backends=("sqlite",),
    ),
    Mutation(
        "tax: banker's rounding, seen end to end by the mock tax agency",
        TAX,
        "return value.quantize(CENT, rounding=ROUND_HALF_UP)",
        'return value.quantize(CENT, rounding="ROUND_HALF_EVEN")',
        (TAX_E2E,),
    ),
    Mutation(
        "tax: VAT not rounded per line (only where shown)",
        TAX,
        "value_added_tax=cents(statutory_vat * RETAIL_SHARE),",
        "value_added_tax=statutory_vat * RETAIL_SHARE,",
        ("tests/rules/test_tax.py",),
        backends=("sqlite",),
    ),
    Mutation(
        "tax: consumption tax not rounded per line",
        TAX,
        "consumption_tax=cents(statutory_consumption * RETAIL_SHARE),",
        "consumption_tax=statutory_consumption * RETAIL_SHARE,",
        ("tests/rules/test_tax.py",),
        backends=("sqlite",),
    ),
    Mutation(
        "mock tax agency: banker's rounding",
        MOCK_TAX,
        "floor(amount * 100 + Fraction(1, 2))",
        "round(amount * 100)",
        ("tests/mock_agencies/test_tax_independent.py",),
        backends=("sqlite",),
    ),
    Mutation(
        "dispatch NOTIFY not sent",
        "app/services/declaration.py",
        'await session.execute(text(f"NOTIFY {DISPATCH_CHANNEL}"))',
        "pass",
        ("tests/test_dispatch.py::test_dispatcher_wakes_on_notify_not_on_its_poll",),
        backends=("postgres",),
    ),
    Mutation(
        "mock agencies: no latency on a single declaration",
        "app/mock_agencies/runtime.py",
        """            await asyncio.sleep(self.settings.mock_latency_ms / 1000)
        key = (idempotency_key""",
        """            pass
        key = (idempotency_key""",
        ("tests/mock_agencies/test_api.py::test_latency_delays_declarations_and_not_stats",),
        backends=("sqlite",),
    ),
    Mutation(
        "SQLite BEGIN IMMEDIATE → deferred BEGIN (the races of the normal suite)",
        "app/db.py",
        'conn.exec_driver_sql("BEGIN IMMEDIATE")',
        'conn.exec_driver_sql("BEGIN")',
        ("tests/test_concurrency.py", "tests/test_filing_and_access.py", "tests/test_dispatch.py"),
        backends=("sqlite",),
        runs=3,
    ),
]


def _git_clean(path: str) -> bool:
    git = ["git", "status", "--porcelain", "--", path]
    out = subprocess.run(git, cwd=ROOT, capture_output=True, text=True)  # noqa: S603 - git on our own tree
    return out.returncode == 0 and not out.stdout.strip()


def _pytest(tests: tuple[str, ...], backend: str) -> tuple[bool, str]:
    env = dict(os.environ)
    if backend == "sqlite":
        env.pop("SW_TEST_DATABASE_URL", None)
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:randomly", "-p", "no:cacheprovider", *tests]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)  # noqa: S603 - our own suite
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    return done.returncode == 0, (lines[-1] if lines else done.stderr.strip()[-200:])


def run(mutation: Mutation, backends: list[str]) -> dict[str, tuple[int, int]]:
    """{backend: (failed runs, runs)} with the mutation applied."""
    if not _git_clean(mutation.path):
        raise SystemExit(f"{mutation.path} has uncommitted changes; commit them first")
    source = (ROOT / mutation.path).read_text()
    if source.count(mutation.old) != 1:
        raise SystemExit(f"{mutation.name}: the snippet occurs {source.count(mutation.old)} times in {mutation.path}")
    results: dict[str, tuple[int, int]] = {}
    (ROOT / mutation.path).write_text(source.replace(mutation.old, mutation.new))
    try:
        for backend in (b for b in mutation.backends if b in backends):
            failed = 0
            for _ in range(mutation.runs):
                passed, summary = _pytest(mutation.tests, backend)
                failed += not passed
                print(f"  {mutation.name} [{backend}]: {summary}", flush=True)
            results[backend] = (failed, mutation.runs)
    finally:
        (ROOT / mutation.path).write_text(source)
    return results


def table(rows: list[tuple[Mutation, dict[str, tuple[int, int]]]]) -> str:
    lines = [
        "| mutation | file | guarding tests | SQLite: failed runs | PostgreSQL: failed runs |",
        "| --- | --- | --- | --- | --- |",
    ]
    for mutation, results in rows:
        cells = []
        for backend in ("sqlite", "postgres"):
            if backend not in mutation.backends:
                cells.append("—")
            elif backend not in results:
                cells.append("not run")
            else:
                failed, runs = results[backend]
                cells.append(f"{failed} of {runs}" + ("" if failed == runs else " **(survived)**"))
        tests = ", ".join(f"`{t}`" for t in mutation.tests)
        lines.append(f"| {mutation.name} | `{mutation.path}` | {tests} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def write(text: str) -> None:
    doc = DOC.read_text()
    pattern = re.compile(re.escape(BEGIN) + ".*?" + re.escape(END), re.S)
    DOC.write_text(pattern.sub(lambda _m: f"{BEGIN}\n{text}\n{END}", doc))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", default=[], help="run only mutations whose name contains one of these")
    parser.add_argument("--write", action="store_true", help="write the table into docs/testing.md")
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgres"] if os.environ.get("SW_TEST_DATABASE_URL", "").startswith("postgres") else [])
    chosen = [m for m in MUTATIONS if not args.only or any(o in m.name for o in args.only)]
    # The guarding tests must pass on the unmutated code first, or a "kill" means nothing.
    for tests in sorted({m.tests for m in chosen}):
        for backend in backends:
            passed, summary = _pytest(tests, backend)
            if not passed:
                raise SystemExit(f"{tests} fail on unmutated code [{backend}]: {summary}")
    rows = [(m, run(m, backends)) for m in chosen]
    text = table(rows)
    print(text)
    survivors = [m.name for m, r in rows if any(f < n for f, n in r.values())]
    if args.write:
        write(text)
    if survivors:
        raise SystemExit(f"survived: {survivors}")


if __name__ == "__main__":
    main()
