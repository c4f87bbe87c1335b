"""The console's record search form, read into the same ``RecordFilter`` the JSON API uses."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from app.schemas.records import RecordStatusName
from app.services.records import RecordFilter


def _blank_is_none(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


# An empty form field is no filter; the constraints apply to what was typed.
Text = Annotated[
    Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)] | None, BeforeValidator(_blank_is_none)
]
Cursor = Annotated[Annotated[str, StringConstraints(max_length=200)] | None, BeforeValidator(_blank_is_none)]


class RecordSearch(BaseModel):
    """The query string of /console/records (the JSON API's parameter names; empty fields are left out)."""

    model_config = ConfigDict(extra="ignore")

    orderNo: Text = None
    payTransactionId: Text = None
    logisticsNo: Text = None
    buyerIdNumber: Text = None
    ebpCode: Text = None
    ebcCode: Text = None
    status: Annotated[RecordStatusName | None, BeforeValidator(_blank_is_none)] = None
    createdFrom: Annotated[date | None, BeforeValidator(_blank_is_none)] = None
    createdTo: Annotated[date | None, BeforeValidator(_blank_is_none), Field(description="inclusive")] = None
    cursor: Cursor = None

    def record_filter(self, zone: ZoneInfo) -> RecordFilter:
        """Dates are whole days in the console's time zone; ``createdTo`` includes its day."""
        return RecordFilter(
            status=self.status,
            ebp_code=self.ebpCode,
            ebc_code=self.ebcCode,
            order_no=self.orderNo,
            pay_transaction_id=self.payTransactionId,
            logistics_no=self.logisticsNo,
            buyer_id_number=self.buyerIdNumber,
            created_from=_start_of(self.createdFrom, zone),
            created_to=_start_of(self.createdTo + timedelta(days=1) if self.createdTo else None, zone),
        )

    def query(self, **changes: str | None) -> dict[str, str]:
        """The search as query parameters (for the next page's link), with ``changes``."""
        values = self.model_dump(mode="json") | changes
        return {k: str(v) for k, v in values.items() if v is not None}


def _start_of(day: date | None, zone: ZoneInfo) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), tzinfo=zone)
