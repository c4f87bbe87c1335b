"""The webhook benchmark end to end at a small size, through its own harness (the receiver in a process of its
own, the fan-out and the delivery worker as ``sw deliver`` runs them): every event of the backlog and of the
paced phase arrives, each record's events in feed order, no event twice under two webhook-ids. No timing."""

from __future__ import annotations

from bench import webhooks
from tests.test_migrations import scratch_url  # noqa: F401 - the fixture: a database of its own


def test_the_webhook_bench_delivers_every_event_in_order_per_record(scratch_url: str) -> None:  # noqa: F811
    # Fewer records (8) than deliveries in flight (16): without the head-of-queue rule a record's events would
    # be sent side by side and arrive out of order.
    result = webhooks.measure(
        ["--events", "300", "--records", "8", "--paced-s", "1.5", "--paced-rate", "100",
         "--subscription-in-flight", "16", "--database-url", scratch_url]
    )  # fmt: skip
    backlog, paced = result["check"]["backlog"], result["check"]["paced"]
    assert backlog == {"unique": 300, "missing": 0, "duplicates": 0, "events_twice": 0, "out_of_order": 0}
    assert paced["unique"] == result["paced_events"] > 0
    assert paced["missing"] == paced["duplicates"] == paced["events_twice"] == paced["out_of_order"] == 0
    assert result["status_change_to_delivered_ms"]["count"] == result["paced_events"]


def test_the_check_counts_what_is_missing_doubled_or_out_of_order() -> None:
    arrivals = [
        ["msg_a", "r1", "0.1"],
        ["msg_b", "r1", "0.3"],
        ["msg_c", "r1", "0.2"],  # r1's event 2 after its event 3
        ["msg_a", "r1", "0.1"],  # a retry: same webhook-id
        ["msg_d", "r2", "0.4"],
        ["msg_e", "r2", "0.4"],  # r2's event again under a new id
    ]
    assert webhooks.delivery_check(arrivals, expected=6) == {
        "unique": 5,
        "missing": 1,
        "duplicates": 1,
        "events_twice": 1,
        "out_of_order": 1,
    }
