"""The exchange state machine of the soak suite (tests/soak/test_state_machine.py), a few short examples."""

from __future__ import annotations

from app.config import Settings
from tests.soak.test_state_machine import run_exchange_machine


def test_the_exchange_state_machine_in_short(settings: Settings) -> None:
    totals = run_exchange_machine(settings, examples=3, steps=20)
    assert totals.examples >= 3
    assert totals.steps["worker step"] > 0
