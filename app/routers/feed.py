"""The ordered feed of receipts and status changes, for the readers of everything (admins and officials)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.deps import PrincipalDep, SessionDep
from app.lifecycle.feed import START, FeedPosition, read_feed
from app.schemas.problems import problems

router = APIRouter(prefix="/api/v1", tags=["Feed (receipts and status changes)"])


class FeedEventOut(BaseModel):
    position: str = Field(description="This event's cursor")
    kind: str = Field(description="document_receipt, status_changed, agency_receipt or declaration_rejected")
    recordId: uuid.UUID | None
    documentId: uuid.UUID | None
    actor: str
    at: datetime
    detail: dict[str, Any]


class FeedPage(BaseModel):
    items: list[FeedEventOut]
    nextCursor: str = Field(description="Pass as `after` to read on; the same cursor again when nothing is new")


@router.get(
    "/feed",
    response_model=FeedPage,
    summary="Every business receipt and status change, in order, from a cursor",
    description=(
        "Resumable: read from `after` (omitted: the beginning), keep `nextCursor`, and read again from it. An "
        "event appears once its transaction and every older one have finished, so a cursor never passes over "
        "an event that is still to come."
    ),
    responses=problems(401, 403, 422, 503),
    operation_id="read_feed",
)
async def feed(
    session: SessionDep,
    principal: PrincipalDep,
    after: Annotated[str | None, Query(max_length=41, description="A nextCursor from an earlier page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FeedPage:
    principal.require_reader()
    position = FeedPosition.parse(after) if after else START
    events = await read_feed(session, position, limit)
    return FeedPage(
        items=[
            FeedEventOut(
                position=e.position.cursor(),
                kind=e.kind,
                recordId=e.record_id,
                documentId=e.document_id,
                actor=e.actor,
                at=e.at,
                detail=e.detail,
            )
            for e in events
        ],
        nextCursor=(events[-1].position if events else position).cursor(),
    )
