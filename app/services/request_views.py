"""A cancel or return as the API shows it (JSON) and as its CEB624 / CEB626 ``…Return`` rows."""

from __future__ import annotations

from typing import Any

from app.models import InventoryRequest
from app.schemas.after_release import InventoryRequestOut, RequestReceipt


def request_out(request: InventoryRequest) -> InventoryRequestOut:
    return InventoryRequestOut(
        id=request.id,
        kind=request.kind,
        recordId=request.record_id,
        status=request.status,
        request=request.fields,
        quotaReturned=request.returned_value if request.status == "approved" else None,
        goodsBackBy=request.goods_back_by,
        receipts=[RequestReceipt.model_validate(r) for r in request.receipts],
        delivery=request.delivery,
        lastError=request.last_error,
        createdAt=request.created_at,
        decidedAt=request.decided_at,
    )


def receipt_rows(request: InventoryRequest) -> list[dict[str, Any]]:
    """The request's answers as CEB624 / CEB626 ``…Return`` rows."""
    fields = request.fields
    return [
        {
            "guid": request.guid,
            **{name: fields.get(name) for name in ("customsCode", "agentCode", "ebpCode", "ebcCode", "invtNo")},
            "copNo": fields.get("copNo") or request.guid[:20],
            "preNo": fields.get("preNo"),
            **receipt,
        }
        for receipt in request.receipts
    ]
