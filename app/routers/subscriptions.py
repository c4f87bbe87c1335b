"""Subscriptions (订阅): an enterprise's endpoints that receive its feed events, signed, in order."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from app.deps import PrincipalDep, SessionDep, SettingsDep
from app.schemas.problems import problems
from app.schemas.subscriptions import (
    DeliveryOut,
    DeliveryPage,
    ReplayRequest,
    ReplayResult,
    SubscriptionCreate,
    SubscriptionIssued,
    SubscriptionList,
    SubscriptionOut,
    SubscriptionPatch,
)
from app.services import deliveries
from app.services import subscriptions as service
from app.services.audit import record_act

router = APIRouter(prefix="/api/v1/enterprises/{code}/subscriptions", tags=["Feedback: subscriptions and deliveries"])


def _issued(subscription_out: SubscriptionOut, secret: str) -> SubscriptionIssued:
    return SubscriptionIssued(**subscription_out.model_dump(), secret=secret)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SubscriptionIssued,
    summary="Subscribe an endpoint to the enterprise's events (admin or the enterprise); the secret is shown once",
    description="Events are those of records the enterprise is party to, as it sees them. The URL must reach a "
    "public address (checked now and before every delivery). Deliveries are Standard Webhooks: `webhook-id` "
    "(stable per event: dedupe on it), `webhook-timestamp`, `webhook-signature` (`v1,` HMAC-SHA256). "
    "See docs/webhooks.md.",
    responses=problems(400, 401, 403, 404, 413, 422, 503),
    operation_id="create_subscription",
)
async def create_subscription(
    code: str, data: SubscriptionCreate, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> SubscriptionIssued:
    principal.require_admin_or_enterprise(code)
    row, secret = await service.create_subscription(session, settings, code, data)
    out = service.subscription_out(row)
    await record_act(session, principal, "subscription.created", "subscription", row.id, after=out)
    return _issued(out, secret)


@router.get(
    "",
    response_model=SubscriptionList,
    summary="The enterprise's subscriptions, with why one is failing (never the secrets)",
    responses=problems(401, 403, 404, 503),
    operation_id="list_subscriptions",
)
async def list_subscriptions(code: str, session: SessionDep, principal: PrincipalDep) -> SubscriptionList:
    principal.require_reader_of(code)
    rows = await service.list_subscriptions(session, code)
    return SubscriptionList(items=[service.subscription_out(r) for r in rows])


@router.get(
    "/{subscription_id}",
    response_model=SubscriptionOut,
    summary="One subscription",
    responses=problems(401, 403, 404, 503),
    operation_id="get_subscription",
)
async def get_subscription(
    code: str, subscription_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> SubscriptionOut:
    principal.require_reader_of(code)
    return service.subscription_out(await service.get_subscription(session, code, subscription_id))


@router.patch(
    "/{subscription_id}",
    response_model=SubscriptionOut,
    summary="Pause or resume a subscription, or change its events",
    description="A paused subscription keeps its events; on resume they go out in order.",
    responses=problems(400, 401, 403, 404, 413, 422, 503),
    operation_id="patch_subscription",
)
async def patch_subscription(
    code: str, subscription_id: uuid.UUID, patch: SubscriptionPatch, session: SessionDep, principal: PrincipalDep
) -> SubscriptionOut:
    principal.require_admin_or_enterprise(code, creates=False)
    before = service.subscription_out(await service.get_subscription(session, code, subscription_id))
    after = service.subscription_out(await service.patch_subscription(session, code, subscription_id, patch))
    await record_act(
        session, principal, "subscription.changed", "subscription", subscription_id, before=before, after=after
    )
    return after


@router.delete(
    "/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a subscription and its pending deliveries",
    responses=problems(401, 403, 404, 503),
    operation_id="delete_subscription",
)
async def delete_subscription(
    code: str, subscription_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> Response:
    principal.require_admin_or_enterprise(code, creates=False)
    before = service.subscription_out(await service.get_subscription(session, code, subscription_id))
    await service.delete_subscription(session, code, subscription_id)
    await record_act(session, principal, "subscription.deleted", "subscription", subscription_id, before=before)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{subscription_id}/rotate-secret",
    response_model=SubscriptionIssued,
    summary="Rotate the signing secret; the new one is shown once, the old one still signs for an overlap",
    description="Until `secretRotatedUntil` every delivery carries two signatures, space-separated in "
    "`webhook-signature` (new, then old), so the receiver can switch secrets without a gap.",
    responses=problems(400, 401, 403, 404, 503),
    operation_id="rotate_subscription_secret",
)
async def rotate_secret(
    code: str, subscription_id: uuid.UUID, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> SubscriptionIssued:
    principal.require_admin_or_enterprise(code, creates=False)
    row, secret = await service.rotate_secret(session, settings, code, subscription_id)
    out = service.subscription_out(row)
    await record_act(session, principal, "subscription.secret_rotated", "subscription", subscription_id, after=out)
    return _issued(out, secret)


@router.get(
    "/{subscription_id}/deliveries",
    response_model=DeliveryPage,
    summary="The subscription's deliveries in feed order: pending, delivered or dead, with the last error",
    responses=problems(401, 403, 404, 422, 503),
    operation_id="list_subscription_deliveries",
)
async def list_deliveries(
    code: str,
    subscription_id: uuid.UUID,
    session: SessionDep,
    principal: PrincipalDep,
    delivery_status: Annotated[
        Literal["pending", "delivered", "dead"] | None, Query(alias="status", description="Only these")
    ] = None,
    after: Annotated[str | None, Query(max_length=41, description="A nextCursor from an earlier page")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryPage:
    principal.require_reader_of(code)
    return await deliveries.list_deliveries(session, code, subscription_id, delivery_status, after, limit)


@router.post(
    "/{subscription_id}/deliveries/{delivery_id}/redeliver",
    response_model=DeliveryOut,
    summary="Send one event again (重推), with the same webhook-id",
    responses=problems(401, 403, 404, 503),
    operation_id="redeliver",
)
async def redeliver(
    code: str, subscription_id: uuid.UUID, delivery_id: uuid.UUID, session: SessionDep, principal: PrincipalDep
) -> DeliveryOut:
    principal.require_admin_or_enterprise(code, creates=False)
    out = deliveries.delivery_out(await deliveries.redeliver(session, code, subscription_id, delivery_id))
    await record_act(session, principal, "delivery.redelivered", "delivery", delivery_id, after=out)
    return out


@router.post(
    "/{subscription_id}/replay",
    response_model=ReplayResult,
    summary="Send again every event of a cursor range or a time range (catching up after an outage)",
    description="`after`/`until` (feed cursors, `until` included) or `since`/`before` (times with an offset). "
    "Each event keeps its webhook-id; events from before the subscription existed are sent too. At most "
    "10,000 events a call: replay the rest from the last one's position.",
    responses=problems(400, 401, 403, 404, 413, 422, 503),
    operation_id="replay_subscription",
)
async def replay(
    code: str, subscription_id: uuid.UUID, data: ReplayRequest, session: SessionDep, principal: PrincipalDep
) -> ReplayResult:
    principal.require_admin_or_enterprise(code, creates=False)
    result = ReplayResult(queued=await deliveries.replay(session, code, subscription_id, data))
    await record_act(
        session,
        principal,
        "subscription.replayed",
        "subscription",
        subscription_id,
        after={**data.model_dump(mode="json"), "queued": result.queued},
    )
    return result
