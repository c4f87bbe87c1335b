"""A subscription's allowance of deliveries in flight (app/notify/pacing.py): it grows while the endpoint answers
in time, shrinks when it answers slowly, halves on a failure, and stays between the floor and the ceiling; the
worker applies it to what it claims (the hanging-receiver test in test_webhook_delivery.py holds the floor)."""

from __future__ import annotations

import uuid

from app.config import Settings
from app.notify.pacing import FAST_MS, Allowances, next_allowance
from tests.conftest import serving
from tests.factories import file_parties, post_triple, purchase
from tests.notify.receiver import receiving
from tests.notify.test_webhook_delivery import FAST_RETRIES, drain, subscribe, worker_of


def test_in_time_adds_one_slow_takes_one_back_a_failure_halves_within_the_bounds() -> None:
    assert next_allowance(4, True, 10, floor=4, ceiling=32) == 5
    assert next_allowance(4, True, FAST_MS, floor=4, ceiling=32) == 5
    assert next_allowance(32, True, 10, floor=4, ceiling=32) == 32
    assert next_allowance(10, True, FAST_MS + 1, floor=4, ceiling=32) == 9
    assert next_allowance(4, True, FAST_MS + 1, floor=4, ceiling=32) == 4
    assert next_allowance(20, False, 10, floor=4, ceiling=32) == 10
    assert next_allowance(6, False, 10, floor=4, ceiling=32) == 4


def test_each_subscription_has_its_own_starting_at_the_floor() -> None:
    allowances = Allowances(floor=2, ceiling=8)
    fast, failing = uuid.uuid4(), uuid.uuid4()
    for _ in range(20):
        allowances.answered(fast, True, 5)
        allowances.answered(failing, False, 5)
    assert (allowances[fast], allowances[failing], allowances[uuid.uuid4()]) == (8, 2, 2)
    allowances.answered(fast, False, 10_000)
    assert allowances[fast] == 4
    assert list(allowances) == [fast]  # one at the floor is not remembered


async def test_the_worker_sends_more_at_once_to_an_endpoint_that_answers_in_time(settings: Settings) -> None:
    async with serving(settings, **FAST_RETRIES) as (app, http), receiving() as receiver:
        parties = await file_parties(http)
        subscription = await subscribe(http, parties.platform, receiver.url)
        for _ in range(2):
            for answer in await post_triple(http, parties, purchase()):
                assert answer.status_code == 201
        async with worker_of(app, webhook_subscription_in_flight=1, webhook_subscription_in_flight_max=6) as worker:
            await drain(app, worker, at_least=8)
            assert worker.allowance(uuid.UUID(subscription["id"])) == 6
        assert len(receiver.unique()) >= 8
