"""RabbitMQ transport (not yet implemented in this branch)."""

from __future__ import annotations

from app.services.webhook_delivery import AttemptResult, Claimed


async def publish(claimed: Claimed, *, allow_private: bool) -> AttemptResult:
    return AttemptResult(claimed, None, "the AMQP transport is not configured", 0)
