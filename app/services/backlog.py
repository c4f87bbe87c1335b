"""Each stage's backlog and the age of its oldest item, read from the database (every process agrees):
shown by ``/readyz`` and ``/metrics`` so that nothing accepted waits unseen."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import Dispatch, Submission, WebhookDelivery

WAITING_DISPATCHES = ("pending", "retry", "in_flight")


@dataclass(frozen=True)
class StageBacklog:
    stage: str
    backlog: int
    oldest_age_s: float
    dead: int


def _age(oldest: datetime | None, now: datetime) -> float:
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


async def stage_backlogs(session: AsyncSession) -> list[StageBacklog]:
    now = utcnow()
    match_count, match_oldest = (
        await session.execute(
            select(func.count(), func.min(Submission.accepted_at)).where(Submission.state == "pending")
        )
    ).one()
    match_dead = await session.scalar(select(func.count()).where(Submission.state == "dead"))
    dispatch_count, dispatch_oldest = (
        await session.execute(
            select(func.count(), func.min(Dispatch.created_at)).where(Dispatch.status.in_(WAITING_DISPATCHES))
        )
    ).one()
    dispatch_dead = await session.scalar(select(func.count()).where(Dispatch.status == "dead"))
    notify_count, notify_oldest = (
        await session.execute(
            select(func.count(), func.min(WebhookDelivery.created_at)).where(WebhookDelivery.status == "pending")
        )
    ).one()
    notify_dead = await session.scalar(select(func.count()).where(WebhookDelivery.status == "dead"))
    return [
        StageBacklog("match", match_count, _age(match_oldest, now), match_dead or 0),
        StageBacklog("dispatch", dispatch_count, _age(dispatch_oldest, now), dispatch_dead or 0),
        # Webhook and AMQP deliveries to enterprises (a paused subscription's wait here too).
        StageBacklog("notify", notify_count, _age(notify_oldest, now), notify_dead or 0),
    ]
