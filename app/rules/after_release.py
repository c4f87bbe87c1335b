"""Cancelling an inventory (撤销, CEB623) and returning goods (退货, CEB625) — who may, when, and what the
buyer's quota gets back (pure; ``now`` is passed in).

* A cancel is for an inventory customs holds: declared, under inspection or released (DECLARED, INSPECTION,
  CLEARED). A refused inventory has nothing to cancel; a cancelled or returned one cannot be cancelled again.
* A return is for a released inventory (CLEARED) only, filed within 30 days of its release; the goods must be
  back at the supervised site within 45 days of release (海关总署公告2018年第194号, ceb-messages.md §4.2).
  Each returned line names a line of the inventory (``gnum``) and at most its quantity (-625209 line not found).
* One request of a kind at a time: while one waits for customs' answer another is refused.
* An approved cancel gives the buyer the whole dutiable value back; an approved return the value of the lines
  returned (price × returned quantity, as the tax assessed them: the dutiable value in proportion).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

RequestKind = Literal["cancel", "return"]

RETURN_WINDOW = timedelta(days=30)
GOODS_BACK_WINDOW = timedelta(days=45)
CANCELLABLE = frozenset({"DECLARED", "INSPECTION", "CLEARED"})
RETURNABLE = frozenset({"CLEARED"})
CENT = Decimal("0.01")
ZERO = Decimal(0)
# InvtCancel / InvtRefundHead fields taken from the declared inventory as they stand.
INVENTORY_FIELDS = (
    "customsCode", "orderNo", "ebpCode", "ebpName", "ebcCode", "ebcName", "logisticsNo", "logisticsCode",
    "logisticsName", "copNo", "buyerIdType", "buyerIdNumber", "buyerName", "buyerTelephone", "agentCode", "agentName",
)  # fmt: skip


@dataclass(frozen=True)
class AfterReleaseRefusal:
    code: str
    http_status: int
    ceb_return_status: str  # the spec's -623xxx / -625xxx family where it has one; ours otherwise
    zh: str
    en: str


# Why a cancel or return request is refused before it goes to customs (problem+json ``code``).
AFTER_RELEASE_REFUSALS: dict[str, AfterReleaseRefusal] = {
    r.code: r
    for r in (
        AfterReleaseRefusal(
            "INVENTORY_NOT_DECLARED",
            409,
            "-623001",
            "清单尚未申报或已被海关退单,无可撤销的清单",
            "The inventory was not declared to customs (or customs refused it): there is nothing to cancel",
        ),
        AfterReleaseRefusal(
            "INVENTORY_ALREADY_CANCELLED",
            409,
            "-623002",
            "清单已撤销,不能重复撤销或退货",
            "The inventory is already cancelled: it cannot be cancelled again or returned",
        ),
        AfterReleaseRefusal(
            "INVENTORY_ALREADY_RETURNED",
            409,
            "-625002",
            "清单已退货,不能再撤销或退货",
            "The goods of this inventory were already returned: no further cancel or return",
        ),
        AfterReleaseRefusal(
            "REQUEST_PENDING",
            409,
            "-623003",
            "该清单已有撤销或退货申请正在海关处理中",
            "A cancel or return request for this inventory is still with customs",
        ),
        AfterReleaseRefusal(
            "INVENTORY_NOT_RELEASED",
            409,
            "-625001",
            "清单未放行,不能申请退货(放行前请申请撤销)",
            "The inventory is not released: goods cannot be returned (cancel it instead)",
        ),
        AfterReleaseRefusal(
            "RETURN_PERIOD_EXPIRED",
            409,
            "-625003",
            "已超过放行之日起30日的退货申请期限",
            "More than 30 days have passed since release: the return period is over",
        ),
        AfterReleaseRefusal(
            "RETURN_LINE_NOT_FOUND",
            422,
            "-625209",
            "退货商品序号在清单中不存在",
            "A returned line (gnum) is not a line of the inventory",
        ),
        AfterReleaseRefusal(
            "RETURN_QUANTITY_EXCEEDED",
            422,
            "-625010",
            "退货数量超过清单申报数量",
            "A returned quantity is more than the inventory declared for that line",
        ),
        AfterReleaseRefusal(
            "REQUEST_DIFFERS_FROM_INVENTORY",
            422,
            "-623004",
            "申请单与清单不一致(订单编号、电商平台、物流运单、订购人或清单编号)",
            "The request differs from the inventory (order, platform, waybill, buyer or inventory number)",
        ),
    )
}


@dataclass(frozen=True)
class Refused:
    code: str
    detail: str

    @property
    def refusal(self) -> AfterReleaseRefusal:
        return AFTER_RELEASE_REFUSALS[self.code]


def _settled_refusal(status: str) -> Refused | None:
    if status == "REVOKED":
        return Refused("INVENTORY_ALREADY_CANCELLED", "the inventory is already cancelled")
    if status == "RETURNED":
        return Refused("INVENTORY_ALREADY_RETURNED", "the goods were already returned")
    return None


def cancel_refusal(status: str, pending: bool) -> Refused | None:
    """Why a cancel of a record in ``status`` may not be filed (None: it may); ``pending``: a request of this
    record still waits for customs."""
    settled = _settled_refusal(status)
    if settled is not None:
        return settled
    if status not in CANCELLABLE:
        return Refused("INVENTORY_NOT_DECLARED", f"a {status} record has no inventory with customs")
    if pending:
        return Refused("REQUEST_PENDING", "another request of this inventory is with customs")
    return None


def return_deadline(released_at: datetime) -> datetime:
    """The last moment a return may be filed."""
    return released_at + RETURN_WINDOW


def goods_back_by(released_at: datetime) -> datetime:
    """When the returned goods must be back at the supervised site."""
    return released_at + GOODS_BACK_WINDOW


def return_refusal(status: str, pending: bool, released_at: datetime | None, now: datetime) -> Refused | None:
    """Why a return of a record in ``status``, released at ``released_at``, may not be filed at ``now``."""
    settled = _settled_refusal(status)
    if settled is not None:
        return settled
    if status not in RETURNABLE or released_at is None:
        return Refused("INVENTORY_NOT_RELEASED", f"a {status} record is not released")
    if now > return_deadline(released_at):
        return Refused(
            "RETURN_PERIOD_EXPIRED",
            f"released {released_at.isoformat()}, the period ended {return_deadline(released_at).isoformat()}",
        )
    if pending:
        return Refused("REQUEST_PENDING", "another request of this inventory is with customs")
    return None


def _decimal(value: Any) -> Decimal | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def decimal_or_zero(value: Any) -> Decimal:
    return _decimal(value) or ZERO


@dataclass(frozen=True)
class ReturnedLines:
    lines: list[dict[str, Any]]  # InvtRefundList: gnum, gcode, gname, qty, unit (from the inventory)
    value: Decimal  # what the lines returned were declared at (price × qty), to the cent
    whole: bool  # every line of the inventory, in full


RequestOutcome = Literal["approved", "rejected"]
APPROVED = frozenset({"399"})  # 海关审结: customs concluded the request in its favour


def request_outcome(return_statuses: Sequence[str]) -> RequestOutcome | None:
    """What customs' answers to a cancel or return (CEB624 / CEB626) decide: refused (100 or a negative code),
    approved (399), or nothing yet (2, 3, 120 — received, sent, stored)."""
    if any(status == "100" or status.startswith("-") for status in return_statuses):
        return "rejected"
    if any(status in APPROVED for status in return_statuses):
        return "approved"
    return None


def returned_lines(
    inventory_lines: Sequence[Mapping[str, Any]], asked: Sequence[Mapping[str, Any]] | None
) -> ReturnedLines | Refused:
    """The ``InvtRefundList`` of a return asking for ``asked`` (``gnum`` and ``qty``; None: every line in full),
    with the value returned; or why it cannot be."""
    by_gnum = {int(line["gnum"]): line for line in inventory_lines}
    wanted: dict[int, Decimal] = {}
    if asked is None:
        wanted = {gnum: _decimal(line["qty"]) or Decimal(0) for gnum, line in by_gnum.items()}
    else:
        for item in asked:
            gnum = int(item["gnum"])
            if gnum not in by_gnum or gnum in wanted:
                return Refused("RETURN_LINE_NOT_FOUND", f"gnum {gnum} is not a line of the inventory (or is repeated)")
            qty = _decimal(item.get("qty")) if item.get("qty") is not None else _decimal(by_gnum[gnum]["qty"])
            if qty is None or qty <= 0:
                return Refused("RETURN_QUANTITY_EXCEEDED", f"line {gnum}: the quantity must be more than 0")
            wanted[gnum] = qty
    lines, value, whole = [], Decimal(0), len(wanted) == len(by_gnum)
    for gnum, qty in sorted(wanted.items()):
        line = by_gnum[gnum]
        declared = _decimal(line["qty"]) or Decimal(0)
        if qty > declared:
            return Refused("RETURN_QUANTITY_EXCEEDED", f"line {gnum}: {qty} returned, {declared} declared")
        whole = whole and qty == declared
        price = _decimal(line.get("price")) or Decimal(0)
        value += price * qty
        lines.append(
            {"gnum": gnum, "gcode": line["gcode"], "gname": line["gname"], "qty": str(qty), "unit": line["unit"]}
        )
    return ReturnedLines(lines, value.quantize(CENT, rounding=ROUND_HALF_UP), whole)


def quota_given_back(dutiable_value: Decimal, declared_value: Decimal, returned: ReturnedLines) -> Decimal:
    """What an approved return gives back to the buyer's annual quota: all of it for a whole return, else the
    dutiable value in the proportion of the value returned (never more than the dutiable value)."""
    if returned.whole or declared_value <= 0:
        return dutiable_value
    share = (dutiable_value * returned.value / declared_value).quantize(CENT, rounding=ROUND_HALF_UP)
    return min(share, dutiable_value)


# Fields of the inventory a request must agree with when the sender gives them (the rest we fill in).
AGREEING_FIELDS = (
    "orderNo",
    "ebpCode",
    "ebcCode",
    "logisticsNo",
    "logisticsCode",
    "buyerIdNumber",
    "invtNo",
    "agentCode",
)


def disagreements(request: Mapping[str, Any], inventory: Mapping[str, Any]) -> list[str]:
    """The fields of ``request`` that name something else than ``inventory`` does."""
    return [
        name
        for name in AGREEING_FIELDS
        if request.get(name) not in (None, "")
        and str(request[name]).strip().upper() != str(inventory.get(name) or "").strip().upper()
    ]


def inventory_number(customs_code: str, released_year: int, record_serial: int) -> str:
    """The inventory number (清单编号, C18) when customs gave none: customs office (4) + year (4) + ``I`` +
    a 9-digit serial (ceb-messages.md appendix)."""
    return f"{customs_code[:4]:0>4}{released_year:04d}I{record_serial % 1_000_000_000:09d}"
