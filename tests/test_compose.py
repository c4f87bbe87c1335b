"""compose.yaml is a valid Compose file with every secret required: `docker compose config` where the client
exists (the Compose v1 `docker-compose` otherwise), skipped on a machine with neither."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECRETS = {
    "SW_DB_PASSWORD": "db-password-for-the-compose-check-0123",
    "SW_CONSOLE_SECRET": "console-secret-for-the-compose-check-0",
    "SW_RISK_ID_SECRET": "risk-id-secret-for-the-compose-check-01",
    "SW_WEBHOOK_SECRET_KEYS": "webhook-secret-key-for-the-compose-check",
    "SW_CUSTOMS_CALLBACK_SECRETS": "customs-secret-for-the-compose-check-0",
    "SW_INSPECTION_CALLBACK_SECRETS": "inspection-secret-for-the-compose-check",
    "SW_TAX_CALLBACK_SECRETS": "tax-secret-for-the-compose-check-012345",
    "SW_FX_CALLBACK_SECRETS": "fx-secret-for-the-compose-check-0123456",
    "SW_AGENCY_URLS": '{"customs": "https://customs.example/ceb"}',
}


def _compose() -> list[str] | None:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)  # noqa: S607
        if probe.returncode == 0:
            return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


COMPOSE = _compose()
pytestmark = pytest.mark.skipif(COMPOSE is None, reason="no docker compose client on this machine")


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    assert COMPOSE is not None
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SW_")} | env
    return subprocess.run(  # noqa: S603 - the compose client on a file of this repository
        [*COMPOSE, "-f", str(ROOT / "compose.yaml"), *args],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_compose_file_is_valid_with_the_secrets_set() -> None:
    checked = _run("config", "-q", env=SECRETS)
    assert checked.returncode == 0, checked.stderr
    services = set(_run("config", "--services", env=SECRETS).stdout.split())
    assert {"api", "db", "dispatcher", "matcher", "migrate", "redis"} <= services
    staging = _run("--profile", "mock", "config", "--services", env=SECRETS).stdout.split()
    assert {"mock-agencies", "rabbitmq"} <= set(staging)


def test_compose_refuses_to_start_without_a_secret() -> None:
    missing = {k: v for k, v in SECRETS.items() if k != "SW_CUSTOMS_CALLBACK_SECRETS"}
    refused = _run("config", "-q", env=missing)
    assert refused.returncode != 0
    assert "SW_CUSTOMS_CALLBACK_SECRETS" in refused.stderr
