"""A hypothesis state machine over the whole exchange: enterprises submit, resubmit, modify and cancel the documents of
a few purchases; a dispatcher takes steps, claims and dies, or crashes (its leases dropped and reaped); agencies fail
for a while (503 before acting, or acting and the answer lost on the way back). After every step the invariants of
ARCHITECTURE.md hold:

- no dispatch is in two states: one row per (record, agency), ``in_flight`` exactly when it holds a lease;
- a ``delivered`` dispatch has a 2xx attempt;
- the agency, deduplicating on the dispatch id, has acted at most once per declaration and agency — and, once it
  stops failing and the outbox drains, exactly once;
- #records == #distinct purchases (that an order or a payment was stored for);
- a replay answers with the stored document (same guid, version, state);
- a declared record is frozen: its documents and declaration never change, and it never leaves the declared states.

The app is driven over HTTP (httpx ASGI transport) and ``Dispatcher.run_once``, in one event loop in a thread
(anyio's blocking portal), since hypothesis' rules are synchronous. The normal suite runs a few short examples
(tests/test_reliability_state_machine.py); the soak suite many longer ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import functools
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test
from sqlalchemy import select, update

from app.adapters.base import AgencyError
from app.config import Settings
from app.db import utcnow
from app.main import create_app
from app.models import Declaration, Dispatch, DispatchAttempt, Document
from app.services.dispatch import build_package, claim_due, reap_expired_leases
from app.worker import Dispatcher
from tests.conftest import ADMIN, WAIT, _wipe, soak_level
from tests.factories import file_parties, purchase
from tests.figures import record_figure

T = TypeVar("T")
DOC_TYPES = ("order", "payment", "waybill")
PATHS = {"order": "/api/v1/orders", "payment": "/api/v1/payments", "waybill": "/api/v1/waybills"}
AGENCIES = ("customs", "inspection", "tax", "fx")
FROZEN = {"DECLARED", "INSPECTION", "CLEARED", "REJECTED"}
PURCHASES = 3
# A change that keeps the purchase matching (order, waybill), and one that breaks it until changed back (payment).
VARIANTS = {"order": {"buyerRegNo": "changed_reg"}, "payment": {"amountPaid": "240.00"}, "waybill": {"goodsInfo": "改"}}
SENDER_ROLE = {"order": "platform", "payment": "payment", "waybill": "logistics"}
STABLE_RECEIPT = ("documentType", "key", "guid", "version", "state", "returnInfo")


class FlakyAgencies(httpx.AsyncBaseTransport):
    """The edge between the dispatcher and the (in-process) mock agencies: fails an agency's next calls on demand,
    either before the agency sees them (503) or after it acted (the answer lost: a read timeout)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.failing: dict[str, tuple[int, str]] = {}
        self.calls: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        agency = request.url.path.split("/")[2]  # /mock/{agency}/declarations
        self.calls[agency] += 1
        left, mode = self.failing.get(agency, (0, ""))
        if left <= 0:
            return await self.inner.handle_async_request(request)
        self.failing[agency] = (left - 1, mode)
        self.failed[mode] += 1
        if mode == "503":
            return httpx.Response(503, json={"code": "AGENCY_UNAVAILABLE"}, request=request)
        landed = await self.inner.handle_async_request(request)
        await landed.aread()
        raise httpx.ReadTimeout("the answer was lost on the way back", request=request)


@dataclass
class DocModel:
    state: str | None = None  # None (never stored) | active | cancelled
    variant: int = 0
    version: int = 0
    receipt: dict[str, Any] = field(default_factory=dict)


@dataclass
class Totals:
    """Across all examples of one run, for the figure."""

    examples: int = 0
    steps: Counter[str] = field(default_factory=Counter)
    delivered: int = 0
    raw_calls: int = 0
    failed_calls: Counter[str] = field(default_factory=Counter)
    replays: int = 0
    frozen_refusals: int = 0


class Exchange(RuleBasedStateMachine):
    portal: BlockingPortal
    base_settings: Settings
    totals: Totals

    def __init__(self) -> None:
        super().__init__()
        self.totals.examples += 1
        app_settings = self.base_settings.model_copy(
            update={
                "supervision_rate_regular": 0.0,
                "dispatch_backoff_base_s": 0.001,
                "dispatch_backoff_cap_s": 0.002,
                "dispatch_max_attempts": 1000,  # failures come and go: nothing may go dead meanwhile
                "dispatch_lease_s": 3600.0,  # leases end only by the `crash` rule
            }
        )
        self.app = create_app(app_settings)
        self.lifespan = self.portal.wrap_async_context_manager(self.call(self._lifespan))
        self.lifespan.__enter__()
        self.client = self.call(self._client)
        self.flaky = FlakyAgencies(httpx.ASGITransport(app=self.app))
        self.agency_client = self.call(self._agency_client)
        for adapter in self.app.state.adapters.values():
            adapter.client = self.agency_client
        self.keys = self.call(self._file_parties)
        self.purchases = [purchase(own_buyer=True) for _ in range(PURCHASES)]
        self.docs = {(p, t): DocModel() for p in range(PURCHASES) for t in DOC_TYPES}
        self.clock = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
        self.frozen: dict[str, Any] = {}  # record id → what it looked like when first seen declared
        self.worker = Dispatcher(
            self.app.state.engine, self.app.state.sessionmaker, self.app.state.settings, self.app.state.adapters
        )

    # --- plumbing ---------------------------------------------------------------------------------------

    def call(self, function: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run ``function`` in the portal's event loop (the app's) and wait for it."""
        return self.portal.call(functools.partial(function, *args, **kwargs))

    async def _lifespan(self) -> LifespanManager:
        return LifespanManager(self.app)  # made in the portal's event loop, which runs the app

    async def _client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        # Each submission is answered with its business result: the app's embedded matcher applies it while
        # the request waits (``Prefer: wait``), so every step sees the state the model predicts.
        return httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60, headers=WAIT)

    async def _agency_client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=self.flaky, timeout=10)

    async def _file_parties(self) -> dict[str, dict[str, str]]:
        parties = await file_parties(self.client)
        return {"platform": parties.platform, "payment": parties.payment, "logistics": parties.logistics}

    def _app_time(self) -> str:
        self.clock += timedelta(seconds=1)
        return self.clock.strftime("%Y%m%d%H%M%S")

    def _document(self, p: int, doc_type: str, variant: int, app_type: str) -> dict[str, Any]:
        document = copy.deepcopy(self.purchases[p][DOC_TYPES.index(doc_type)])
        if variant:
            document |= VARIANTS[doc_type]
        return document | {"appType": app_type, "guid": str(uuid.uuid4()).upper(), "appTime": self._app_time()}

    def _post(self, doc_type: str, document: dict[str, Any]) -> httpx.Response:
        headers = self.keys[SENDER_ROLE[doc_type]]
        response = self.call(self.client.post, PATHS[doc_type], json=document, headers=headers)
        assert response.status_code < 500, response.text
        return response

    def _record(self, p: int) -> dict[str, Any] | None:
        order_no = self.purchases[p][0]["orderNo"]
        response = self.call(self.client.get, "/api/v1/records", params={"orderNo": order_no}, headers=ADMIN)
        items: list[dict[str, Any]] = response.json()["items"]
        assert len(items) <= 1, items
        return items[0] if items else None

    def _frozen(self, p: int) -> bool:
        record = self._record(p)
        return record is not None and record["status"] in FROZEN

    def _stored(self, model: DocModel, response: httpx.Response, *, replay: bool) -> None:
        receipt = response.json()
        assert receipt["replayed"] is replay, receipt
        if replay:
            assert {k: receipt[k] for k in STABLE_RECEIPT} == {k: model.receipt[k] for k in STABLE_RECEIPT}
            self.totals.replays += 1
        model.receipt = receipt
        model.version = receipt["version"]
        assert receipt["state"] == model.state, receipt

    def _refused_as_frozen(self, response: httpx.Response) -> None:
        assert (response.status_code, response.json()["code"]) == (409, "RECORD_ALREADY_DECLARED"), response.text
        self.totals.frozen_refusals += 1

    # --- the enterprises ----------------------------------------------------------------------------------

    @rule(p=st.integers(0, PURCHASES - 1), doc_type=st.sampled_from(DOC_TYPES))
    def submit(self, p: int, doc_type: str) -> None:
        """appType 1: new, the same again (a replay, with a new guid and appTime), or sent again after a cancel."""
        self.totals.steps["submit"] += 1
        model = self.docs[(p, doc_type)]
        frozen = self._frozen(p)
        response = self._post(doc_type, self._document(p, doc_type, model.variant, "1"))
        if model.state == "active":
            assert response.status_code == 200, response.text
            self._stored(model, response, replay=True)
        elif model.state == "cancelled" and frozen:
            self._refused_as_frozen(response)
        else:
            assert response.status_code == (201 if model.state is None else 200), response.text
            model.state = "active"
            self._stored(model, response, replay=False)

    @rule(p=st.integers(0, PURCHASES - 1), order=st.permutations(DOC_TYPES))
    def submit_purchase(self, p: int, order: list[str]) -> None:
        """All three documents of a purchase, in the drawn order (the way a purchase completes)."""
        for doc_type in order:
            self.submit(p, doc_type)

    @precondition(lambda self: any(m.state == "active" for m in self.docs.values()))
    @rule(data=st.data())
    def modify(self, data: st.DataObject) -> None:
        """appType 2: the other variant of the content."""
        self.totals.steps["modify"] += 1
        p, doc_type = data.draw(st.sampled_from(sorted(k for k, m in self.docs.items() if m.state == "active")))
        model = self.docs[(p, doc_type)]
        frozen = self._frozen(p)
        response = self._post(doc_type, self._document(p, doc_type, 1 - model.variant, "2"))
        if frozen:
            self._refused_as_frozen(response)
            return
        assert response.status_code == 200, response.text
        model.variant = 1 - model.variant
        self._stored(model, response, replay=False)

    @precondition(lambda self: any(m.state is not None for m in self.docs.values()))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        """appType 3: cancel (again: a replay)."""
        self.totals.steps["cancel"] += 1
        p, doc_type = data.draw(st.sampled_from(sorted(k for k, m in self.docs.items() if m.state is not None)))
        model = self.docs[(p, doc_type)]
        frozen = self._frozen(p)
        response = self._post(doc_type, self._document(p, doc_type, model.variant, "3"))
        if model.state == "cancelled":
            assert response.status_code == 200, response.text
            self._stored(model, response, replay=True)
        elif frozen:
            self._refused_as_frozen(response)
        else:
            assert response.status_code == 200, response.text
            model.state = "cancelled"
            self._stored(model, response, replay=False)

    # --- the dispatcher ------------------------------------------------------------------------------------

    @rule()
    def worker_step(self) -> None:
        self.totals.steps["worker step"] += 1
        self.call(self.worker.run_once)

    @rule(send=st.booleans())
    def worker_claims_and_dies(self, send: bool) -> None:
        """A worker claims a batch and dies: before sending, or after sending and before recording anything."""
        self.totals.steps["claim, then die"] += 1
        self.call(self._claim_and_die, send)

    async def _claim_and_die(self, send: bool) -> None:
        claims = await claim_due(self.app.state.sessionmaker, self.app.state.settings)
        if not send:
            return
        for claim in claims:
            async with self.app.state.sessionmaker() as session:
                package = await build_package(session, claim, self.app.state.settings)
            with contextlib.suppress(AgencyError):  # an agency failing: the worker dies all the same
                await self.app.state.adapters[claim.agency].submit(package, str(claim.id))

    @rule()
    def crash(self) -> None:
        """The in-flight leases are dropped (their worker is gone) and the reaper takes them back."""
        self.totals.steps["crash"] += 1
        self.call(self._crash)

    async def _crash(self) -> None:
        async with self.app.state.sessionmaker() as session, session.begin():
            expired = utcnow() - timedelta(seconds=1)
            await session.execute(update(Dispatch).where(Dispatch.status == "in_flight").values(lease_until=expired))
        await reap_expired_leases(self.app.state.sessionmaker, self.app.state.settings.dispatch_max_attempts)

    @rule(agency=st.sampled_from(AGENCIES), calls=st.integers(0, 6), mode=st.sampled_from(["503", "lost answer"]))
    def agency_fails(self, agency: str, calls: int, mode: str) -> None:
        """The agency fails its next ``calls`` calls (0: it recovers)."""
        self.totals.steps["agency fails" if calls else "agency recovers"] += 1
        self.flaky.failing[agency] = (calls, mode)

    # --- the invariants -----------------------------------------------------------------------------------

    async def _outbox(self) -> tuple[list[Dispatch], set[tuple[Any, ...]]]:
        async with self.app.state.sessionmaker() as session:
            dispatches = list(await session.scalars(select(Dispatch)))
            attempts = {
                (row.dispatch_id, row.outcome, row.http_status)
                for row in await session.execute(
                    select(DispatchAttempt.dispatch_id, DispatchAttempt.outcome, DispatchAttempt.http_status)
                )
            }
        return dispatches, attempts

    async def _declared_content(self, record_ids: list[str]) -> dict[str, Any]:
        """The documents and the declaration of these records, as stored."""
        ids = [uuid.UUID(i) for i in record_ids]
        async with self.app.state.sessionmaker() as session:
            documents = await session.execute(
                select(
                    Document.record_id, Document.doc_type, Document.version, Document.state, Document.content_sha256
                ).where(Document.record_id.in_(ids))
            )
            declarations = await session.execute(
                select(Declaration.record_id, Declaration.inventory, Declaration.tax).where(
                    Declaration.record_id.in_(ids)
                )
            )
            docs: dict[str, list[tuple[Any, ...]]] = {i: [] for i in record_ids}
            declared: dict[str, Any] = dict.fromkeys(record_ids)
            for row in documents:
                docs[str(row.record_id)].append((row.doc_type, row.version, row.state, row.content_sha256))
            for row in declarations:
                declared[str(row.record_id)] = (row.inventory, row.tax)
        return {i: (sorted(docs[i]), declared[i]) for i in record_ids}

    def _answers(self, agency: str) -> list[dict[str, Any]]:
        """What the agency has acted on, from its own ledger (the mock agency's side of the wire)."""
        answers: list[dict[str, Any]] = self.app.state.mock_agencies.answers(agency)
        return answers

    @invariant()
    def invariants_hold(self) -> None:
        # No dispatch in two states; a delivered one has a 2xx attempt.
        dispatches, attempts = self.call(self._outbox)
        assert len({(d.record_id, d.agency) for d in dispatches}) == len(dispatches)  # one per (record, agency)
        for d in dispatches:
            assert d.status in ("pending", "in_flight", "delivered", "retry", "dead"), d.status
            assert (d.status == "in_flight") == (d.lease_until is not None), (d.status, d.lease_until)
            if d.status == "delivered":
                assert any(a[0] == d.id and a[1] == "delivered" and 200 <= (a[2] or 0) < 300 for a in attempts)
        # The agency acted at most once per declaration, and only on dispatches we made.
        for agency in AGENCIES:
            answers = self._answers(agency)
            assert {a["idempotencyKey"] for a in answers} <= {str(d.id) for d in dispatches if d.agency == agency}
            assert max(Counter(a["recordId"] for a in answers).values(), default=0) <= 1
        # One record per purchase (a waybill without ebpCode waits for its record).
        stored = {p for (p, t), m in self.docs.items() if m.state is not None and t in ("order", "payment")}
        page = self.call(self.client.get, "/api/v1/records", params={"limit": 100}, headers=ADMIN).json()
        records = page["items"]
        assert sorted(r["orderNo"] for r in records) == sorted(self.purchases[p][0]["orderNo"] for p in stored)
        # A declared record is frozen: it stays declared, its documents and declaration never change.
        declared = [r["id"] for r in records if r["status"] in FROZEN]
        assert set(self.frozen) <= set(declared), {r["id"]: r["status"] for r in records}
        for record_id, content in self.call(self._declared_content, declared).items():
            assert self.frozen.setdefault(record_id, content) == content

    # --- the end: agencies well, every lease dropped, the outbox drained ---------------------------------------

    def teardown(self) -> None:
        try:
            self.flaky.failing.clear()
            self.call(self._crash)
            self.call(self._drain)
            dispatches, _ = self.call(self._outbox)
            assert {d.status for d in dispatches} <= {"delivered"}, Counter(d.status for d in dispatches)
            for agency in AGENCIES:
                answered = {a["idempotencyKey"] for a in self._answers(agency)}
                assert answered == {str(d.id) for d in dispatches if d.agency == agency}  # exactly once each
            self.totals.delivered += len(dispatches)
            self.totals.raw_calls += self.flaky.calls.total()
            self.totals.failed_calls += self.flaky.failed
        finally:
            self.call(self._close)
            self.lifespan.__exit__(None, None, None)

    async def _drain(self) -> None:
        for _ in range(2000):
            if not await self.worker.run_once():
                dispatches, _ = await self._outbox()
                if all(d.status in ("delivered", "dead") for d in dispatches):
                    return
                await asyncio.sleep(0.003)  # the backoff of a retried dispatch (≤ 2 ms)
        raise AssertionError("the outbox did not drain")

    async def _close(self) -> None:
        await self.app.state.mock_agencies.wait_for_callbacks()
        await _wipe(self.app)
        await self.client.aclose()
        await self.agency_client.aclose()


def run_exchange_machine(base_settings: Settings, examples: int, steps: int) -> Totals:
    """Run the machine for ``examples`` examples of up to ``steps`` steps each."""
    totals = Totals()
    with start_blocking_portal() as portal:
        machine = type("ExchangeRun", (Exchange,), {"portal": portal, "base_settings": base_settings, "totals": totals})
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=steps,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            ),
        )
    return totals


@pytest.mark.soak
@pytest.mark.timeout(3600)
def test_the_exchange_state_machine(settings: Settings) -> None:
    full = soak_level() == "full"
    examples, steps = (100, 50) if full else (5, 25)
    totals = run_exchange_machine(settings, examples, steps)
    record_figure(
        f"state machine: submit/resubmit/modify/cancel/worker/crash/agency failure "
        f"({examples} examples × ≤ {steps} steps)",
        f"{totals.examples} runs, {totals.steps.total()} steps; invariants held after every step; "
        f"{totals.delivered} dispatches delivered, each acted on once by its agency ({totals.raw_calls} raw calls, "
        f"{totals.failed_calls['503']} × 503, {totals.failed_calls['lost answer']} answers lost); "
        f"{totals.replays} replays identical; {totals.frozen_refusals} changes to declared records refused",
        "0 violations",
    )
