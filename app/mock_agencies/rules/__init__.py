"""What each mock agency decides about a declaration package — pure functions over plain JSON data.

The package is the one the single window's adapters send (the agency contract): the inventory (CEB621 head
fields + ``inventoryList``), the tax the single window computed, the order, payment and waybill, the filed goods
and the single window's risk decision (``riskDecision``: inspect or release, and the reasons' codes). One module
per agency, shared readers in ``common``. No I/O, no clock (``now`` is passed in), no randomness and no sampling
of their own: the single window decides which declarations are inspected (app/rules/supervision.py).

* customs: checks the inventory (required fields, fixed values, HS codes, line numbers against the order) →
  ``100`` with the reasons; otherwise ``120`` ``399`` ``800``, or ``120`` ``500`` when the single window decided to
  inspect (release ``800`` follows later by callback);
* inspection: goods off the positive list → ``100``; decided for inspection → ``500``; otherwise ``120``;
* tax: recomputes the tax with its own implementation of the published rule (not :mod:`app.rules.tax`) and
  answers ``120`` with a CEB816-like tax bill; over the single or annual limit → ``100`` with ``-621005`` /
  ``-621018`` in ``returnInfo``;
* fx: checks the payment (currency 142, amount = the order's ``acturalPaid``, the payer's ID format) → ``120``
  with a settlement record, else ``100``.
"""

from app.mock_agencies.rules.common import (
    CN_TZ,
    AgencyDecision,
    QuotaUse,
    Receipt,
    mask_id,
    record_id,
    return_time,
)
from app.mock_agencies.rules.customs import (
    RELEASE_AFTER_INSPECTION,
    customs_decision,
    customs_problems,
    inventory_number,
)
from app.mock_agencies.rules.fx import fx_decision, valid_prc_id
from app.mock_agencies.rules.inspection import inspection_decision, selected_for_inspection
from app.mock_agencies.rules.tax import quota_key, tax_decision

__all__ = [
    "CN_TZ",
    "RELEASE_AFTER_INSPECTION",
    "AgencyDecision",
    "QuotaUse",
    "Receipt",
    "customs_decision",
    "customs_problems",
    "fx_decision",
    "inspection_decision",
    "inventory_number",
    "mask_id",
    "quota_key",
    "record_id",
    "return_time",
    "selected_for_inspection",
    "tax_decision",
    "valid_prc_id",
]
