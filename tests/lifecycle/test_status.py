"""The lifecycle as data: every move it has, and the moves it refuses."""

from __future__ import annotations

import pytest

from app.lifecycle.apply import apply_event
from app.lifecycle.status import Effect, IllegalTransition, RecordEvent, RecordStatus, transition
from app.models import MatchRecord

S, E = RecordStatus, RecordEvent


@pytest.mark.parametrize("start", [S.AWAITING_DOCUMENTS, S.MISMATCHED, S.CANCELLED])
def test_an_open_record_follows_what_its_documents_say(start: RecordStatus) -> None:
    assert transition(start, E.DOCUMENTS_INCOMPLETE).status == S.AWAITING_DOCUMENTS
    assert transition(start, E.DOCUMENTS_DISAGREE).status == S.MISMATCHED
    assert transition(start, E.DOCUMENTS_CANCELLED).status == S.CANCELLED
    matched = transition(start, E.DOCUMENTS_AGREE)
    assert matched.status == S.MATCHED
    assert matched.effects == (Effect.DECLARE,)


def test_a_matched_record_is_declared_and_dispatched_or_refused_on_its_limits() -> None:
    declared = transition(S.MATCHED, E.DECLARATION_ACCEPTED)
    assert (declared.status, declared.effects) == (S.DECLARED, (Effect.DISPATCH,))
    refused = transition(S.MATCHED, E.LIMITS_BREACHED)
    assert (refused.status, refused.effects) == (S.REJECTED, ())


def test_agencies_move_a_declared_record_forward_only() -> None:
    assert transition(S.DECLARED, E.AGENCY_HELD).status == S.INSPECTION
    assert transition(S.INSPECTION, E.AGENCY_RELEASED).status == S.CLEARED
    assert transition(S.DECLARED, E.AGENCY_RELEASED).status == S.CLEARED
    rejected = transition(S.INSPECTION, E.AGENCY_REJECTED)
    assert (rejected.status, rejected.effects) == (S.REJECTED, (Effect.RELEASE_QUOTA,))
    # Final statuses stay: a late answer changes nothing, and releases no quota twice.
    for final in (S.CLEARED, S.REJECTED):
        for event in (E.AGENCY_HELD, E.AGENCY_RELEASED, E.AGENCY_REJECTED):
            assert transition(final, event) == transition(final, event).__class__(final)


@pytest.mark.parametrize(
    ("status", "event"),
    [
        (S.DECLARED, E.DOCUMENTS_AGREE),  # documents of a declared record are frozen
        (S.MATCHED, E.DOCUMENTS_DISAGREE),
        (S.CLEARED, E.DOCUMENTS_INCOMPLETE),
        (S.AWAITING_DOCUMENTS, E.DECLARATION_ACCEPTED),  # only a matched record is declared
        (S.MISMATCHED, E.AGENCY_RELEASED),  # agencies only answer declared records
        (S.AWAITING_DOCUMENTS, E.AGENCY_HELD),
    ],
)
def test_moves_the_lifecycle_lacks_are_refused(status: RecordStatus, event: RecordEvent) -> None:
    with pytest.raises(IllegalTransition) as refused:
        transition(status, event)
    assert str(refused.value) == f"{event.value} cannot happen to a {status.value} record"
    assert (refused.value.status, refused.value.event) == (status, event)


def test_applying_an_event_writes_one_status_changed_with_its_cause() -> None:
    record = MatchRecord(status="AWAITING_DOCUMENTS")
    written: list[tuple[str, dict[str, object]]] = []

    def emit(kind: str, rec: MatchRecord, detail: dict[str, object]) -> None:
        written.append((kind, detail))

    assert apply_event(record, E.DOCUMENTS_AGREE, emit) == (Effect.DECLARE,)
    assert record.status == "MATCHED"
    assert record.matched_at is not None
    assert written == [("status_changed", {"from": "AWAITING_DOCUMENTS", "to": "MATCHED", "event": "documents_agree"})]
    # Staying put writes nothing.
    apply_event(record, E.DECLARATION_ACCEPTED, emit)
    apply_event(record, E.AGENCY_HELD, emit)
    apply_event(record, E.AGENCY_HELD, emit)
    assert [detail["to"] for _, detail in written] == ["MATCHED", "DECLARED", "INSPECTION"]


def test_no_code_but_the_lifecycle_assigns_a_record_status() -> None:
    """Every status change goes through ``apply_event``: a record's status assigned anywhere else is a bug."""
    import ast
    from pathlib import Path

    import app

    root = Path(app.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if path == root / "lifecycle" / "apply.py" or "mock_agencies" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AugAssign | ast.AnnAssign)
                else []
            )
            for target in targets:
                for leaf in ast.walk(target):
                    if (
                        isinstance(leaf, ast.Attribute)
                        and leaf.attr == "status"
                        and isinstance(leaf.value, ast.Name)
                        and "record" in leaf.value.id
                    ):
                        offenders.append(f"{path.relative_to(root)}:{leaf.lineno}")
    assert offenders == []


@pytest.mark.parametrize("start", [S.DECLARED, S.INSPECTION, S.CLEARED])
def test_a_cancelled_inventory_is_revoked_and_releases_the_quota(start: RecordStatus) -> None:
    revoked = transition(start, E.INVENTORY_CANCELLED)
    assert (revoked.status, revoked.effects) == (S.REVOKED, (Effect.RELEASE_QUOTA,))


def test_only_released_goods_are_returned_and_give_their_quota_back() -> None:
    returned = transition(S.CLEARED, E.GOODS_RETURNED)
    assert (returned.status, returned.effects) == (S.RETURNED, (Effect.RETURN_QUOTA,))
    for status in (S.DECLARED, S.INSPECTION, S.REJECTED, S.REVOKED, S.RETURNED, S.MATCHED):
        with pytest.raises(IllegalTransition):
            transition(status, E.GOODS_RETURNED)
    for status in (S.AWAITING_DOCUMENTS, S.MATCHED, S.REVOKED, S.RETURNED, S.CANCELLED):
        with pytest.raises(IllegalTransition):
            transition(status, E.INVENTORY_CANCELLED)
    # A declaration another agency refused meanwhile stays refused (its quota is already released).
    assert transition(S.REJECTED, E.INVENTORY_CANCELLED) == transition(S.REJECTED, E.AGENCY_HELD).__class__(S.REJECTED)


@pytest.mark.parametrize("final", [S.REVOKED, S.RETURNED])
def test_cancelled_or_returned_stays_so_whatever_customs_answers_late(final: RecordStatus) -> None:
    for event in (E.AGENCY_HELD, E.AGENCY_RELEASED, E.AGENCY_REJECTED):
        assert transition(final, event).status == final
        assert transition(final, event).effects == ()
    for event in (E.DOCUMENTS_AGREE, E.DOCUMENTS_CANCELLED, E.DECLARATION_ACCEPTED):
        with pytest.raises(IllegalTransition):
            transition(final, event)
