"""The ordered feed of receipts and status changes: everything for admins and officials, an enterprise's own
events (masked as its role sees records) for an enterprise; JSON, or the CEB receipts as XML."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field

from app.deps import PrincipalDep, ReadSessionmakerDep
from app.lifecycle.feed import START, FeedPosition
from app.schemas.problems import problems
from app.services.feed_pull import FEED_XML_TYPE, MAX_FEED_WAIT_S, feed_xml, pull_feed

router = APIRouter(prefix="/api/v1", tags=["Feed (receipts and status changes)"])


class FeedEventOut(BaseModel):
    position: str = Field(description="This event's cursor")
    kind: str = Field(
        description="document_receipt, status_changed, agency_receipt, declaration_rejected or dispatch_dead"
    )
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
    summary="Business receipts and status changes, in order, from a cursor (an enterprise: its own)",
    description=(
        "Resumable: read from `after` (omitted: the beginning), keep `nextCursor`, and read again from it. An "
        "event appears once its transaction and every older one have finished, so a cursor never passes over "
        "an event that is still to come. Admins and officials read every event; an enterprise the events of "
        "records it is party to, as its role sees the records (a payment firm or carrier: codes and states, "
        "no free text, no refusal of the declaration). `wait=N`: when nothing is new, hold the answer up to N "
        f"seconds (≤ {MAX_FEED_WAIT_S}) for the next event. `Accept: application/xml`: the page's receipts as "
        "their CEB messages (CEB312 / 412 / 512, CEB622) inside a `Feed` element."
    ),
    responses=problems(401, 403, 422, 503)
    | {200: {"content": {FEED_XML_TYPE: {"schema": {"type": "string"}}}, "description": "The page"}},
    operation_id="read_feed",
)
async def feed(
    request: Request,
    principal: PrincipalDep,
    sessionmaker: ReadSessionmakerDep,
    after: Annotated[str | None, Query(max_length=41, description="A nextCursor from an earlier page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    wait: Annotated[
        int, Query(ge=0, le=MAX_FEED_WAIT_S, description="Seconds to wait for a new event when none is there")
    ] = 0,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> FeedPage | Response:
    position = FeedPosition.parse(after) if after else START
    code = None if principal.reads_everything else principal.enterprise_code
    page = await pull_feed(sessionmaker, request.app.state.waiters, code, position, limit, wait)
    if accept is not None and "xml" in accept and "json" not in accept:
        return Response(await feed_xml(sessionmaker, page), media_type=FEED_XML_TYPE)
    return FeedPage(
        items=[
            FeedEventOut(
                position=s.event.position.cursor(),
                kind=s.event.kind,
                recordId=s.event.record_id,
                documentId=s.event.document_id,
                actor=s.event.actor,
                at=s.event.at,
                detail=s.detail,
            )
            for s in page.shown
        ],
        nextCursor=page.next_position.cursor(),
    )
