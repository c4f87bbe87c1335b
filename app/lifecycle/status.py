"""The record lifecycle as data (pure): statuses, the events that move them, and ``transition``.

Nothing else decides a status. Matching reports what the documents say (``DOCUMENTS_*``), the declare stage
what tax and limits say, agency receipts what the agencies say; ``transition`` turns that into the next
status and the effects the caller must carry out, and refuses any move the lifecycle does not have.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class RecordStatus(StrEnum):
    AWAITING_DOCUMENTS = "AWAITING_DOCUMENTS"
    MISMATCHED = "MISMATCHED"
    MATCHED = "MATCHED"
    DECLARED = "DECLARED"
    INSPECTION = "INSPECTION"
    CLEARED = "CLEARED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    REVOKED = "REVOKED"  # the inventory was cancelled with customs (撤销, CEB623 → CEB624 approved)
    RETURNED = "RETURNED"  # the released goods were returned (退货, CEB625 → CEB626 approved)


class RecordEvent(StrEnum):
    DOCUMENTS_INCOMPLETE = "documents_incomplete"  # some document is missing
    DOCUMENTS_DISAGREE = "documents_disagree"  # all there, and a rule found a discrepancy
    DOCUMENTS_AGREE = "documents_agree"  # the three documents match
    DOCUMENTS_CANCELLED = "documents_cancelled"  # every document of the record was cancelled
    DECLARATION_ACCEPTED = "declaration_accepted"  # tax and limits passed: the inventory goes out
    LIMITS_BREACHED = "limits_breached"  # single or annual limit exceeded (-621005 / -621018)
    INVENTORY_REFUSED = "inventory_refused"  # the inventory cannot be declared as the schema wants it (rules.inventory)
    DECLARATION_BLOCKED = "declaration_blocked"  # a party's credit level is configured to block (rules.supervision)
    AGENCY_HELD = "agency_held"  # customs holds the goods (500 inspection, 50x)
    AGENCY_RELEASED = "agency_released"  # customs released (800) and every agency answered without refusal
    AGENCY_REJECTED = "agency_rejected"  # an agency refused (100 or a negative code)
    INVENTORY_CANCELLED = "inventory_cancelled"  # customs approved the declarant's cancel (CEB624 120/399)
    GOODS_RETURNED = "goods_returned"  # customs approved the return of released goods (CEB626 120/399)


class Effect(StrEnum):
    DECLARE = "declare"  # compose the inventory, tax and limits (the declare stage)
    DISPATCH = "dispatch"  # write the outbox rows to every agency
    RELEASE_QUOTA = "release_quota"  # a refused purchase no longer counts against the buyer's quota
    RETURN_QUOTA = "return_quota"  # what was returned no longer counts against the buyer's quota (all or part)


class IllegalTransition(ValueError):
    def __init__(self, status: RecordStatus, event: RecordEvent) -> None:
        super().__init__(f"{event.value} cannot happen to a {status.value} record")
        self.status, self.event = status, event


@dataclass(frozen=True)
class Transition:
    status: RecordStatus
    effects: tuple[Effect, ...] = ()


S, E = RecordStatus, RecordEvent

# Before declaration a record follows its documents; from MATCHED on its documents are frozen.
OPEN = (S.AWAITING_DOCUMENTS, S.MISMATCHED, S.CANCELLED)
DOCUMENT_OUTCOMES = {
    E.DOCUMENTS_INCOMPLETE: Transition(S.AWAITING_DOCUMENTS),
    E.DOCUMENTS_DISAGREE: Transition(S.MISMATCHED),
    E.DOCUMENTS_AGREE: Transition(S.MATCHED, (Effect.DECLARE,)),
    E.DOCUMENTS_CANCELLED: Transition(S.CANCELLED),
}
DECLARED_ON = (S.DECLARED, S.INSPECTION, S.CLEARED)
AFTER_RELEASE_FINAL = (S.REVOKED, S.RETURNED)
AGENCY_ANSWERS = (E.AGENCY_HELD, E.AGENCY_RELEASED, E.AGENCY_REJECTED)
TABLE: dict[tuple[RecordStatus, RecordEvent], Transition] = {
    **{(status, event): outcome for status in OPEN for event, outcome in DOCUMENT_OUTCOMES.items()},
    (S.MATCHED, E.DECLARATION_ACCEPTED): Transition(S.DECLARED, (Effect.DISPATCH,)),
    (S.MATCHED, E.LIMITS_BREACHED): Transition(S.REJECTED),
    (S.MATCHED, E.INVENTORY_REFUSED): Transition(S.REJECTED),
    (S.MATCHED, E.DECLARATION_BLOCKED): Transition(S.REJECTED),
    (S.DECLARED, E.AGENCY_HELD): Transition(S.INSPECTION),
    (S.DECLARED, E.AGENCY_RELEASED): Transition(S.CLEARED),
    (S.INSPECTION, E.AGENCY_RELEASED): Transition(S.CLEARED),
    (S.DECLARED, E.AGENCY_REJECTED): Transition(S.REJECTED, (Effect.RELEASE_QUOTA,)),
    (S.INSPECTION, E.AGENCY_REJECTED): Transition(S.REJECTED, (Effect.RELEASE_QUOTA,)),
    # A hold reported again (another 50x) or a late answer after the outcome changes nothing.
    (S.INSPECTION, E.AGENCY_HELD): Transition(S.INSPECTION),
    (S.CLEARED, E.AGENCY_HELD): Transition(S.CLEARED),
    (S.CLEARED, E.AGENCY_RELEASED): Transition(S.CLEARED),
    (S.REJECTED, E.AGENCY_HELD): Transition(S.REJECTED),
    (S.REJECTED, E.AGENCY_RELEASED): Transition(S.REJECTED),
    (S.REJECTED, E.AGENCY_REJECTED): Transition(S.REJECTED),
    (S.CLEARED, E.AGENCY_REJECTED): Transition(S.CLEARED),  # CLEARED is final: goods released stay released
    # After the declaration: the declarant cancels the inventory customs holds, before or after release, or
    # returns released goods (app/rules/after_release.py decides which may be filed; customs approves).
    **{(status, E.INVENTORY_CANCELLED): Transition(S.REVOKED, (Effect.RELEASE_QUOTA,)) for status in DECLARED_ON},
    (S.CLEARED, E.GOODS_RETURNED): Transition(S.RETURNED, (Effect.RETURN_QUOTA,)),
    # Another agency refused the declaration while customs weighed the cancel: refused it stays (quota released).
    (S.REJECTED, E.INVENTORY_CANCELLED): Transition(S.REJECTED),
    # A cancelled or returned inventory stays so, whatever customs' late answers to the declaration say.
    **{(status, event): Transition(status) for status in AFTER_RELEASE_FINAL for event in AGENCY_ANSWERS},
}

# Statuses after which the record's documents are frozen: MATCHED never outlives the matcher's transaction
# that reached it (the declare stage runs in it), so from then on no document may change.
FROZEN = frozenset({S.MATCHED, S.DECLARED, S.INSPECTION, S.CLEARED, S.REJECTED, S.REVOKED, S.RETURNED})


def transition(status: RecordStatus | str, event: RecordEvent) -> Transition:
    """The next status and the effects to carry out; ``IllegalTransition`` for a move the lifecycle lacks."""
    current = RecordStatus(status)
    found = TABLE.get((current, event))
    if found is None:
        raise IllegalTransition(current, event)
    return found
