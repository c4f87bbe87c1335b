"""compose.yaml is a valid Compose file with every secret required: `docker compose config` where the client
exists (the Compose v1 `docker-compose` otherwise), skipped on a machine with neither."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

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


def _environment(service: str, *args: str, env: dict[str, str]) -> dict[str, str]:
    checked = _run(*args, "config", env=env)
    assert checked.returncode == 0, checked.stderr
    environment: dict[str, str] = yaml.safe_load(checked.stdout)["services"][service]["environment"]
    return {k: "" if v is None else str(v) for k, v in environment.items()}


def test_the_replica_profile_adds_a_standby_and_the_api_reads_from_it_when_named() -> None:
    replica = {**SECRETS, "SW_READ_DATABASE_URL": "postgresql+asyncpg://sw:pw@db-replica:5432/single_window"}
    checked = _run("--profile", "replica", "config", env=replica)
    assert checked.returncode == 0, checked.stderr
    services = yaml.safe_load(checked.stdout)["services"]
    standby = services["db-replica"]
    script = standby["command"][0]
    # A standby of `db` (pg_basebackup -R), made once, then the server; the volume is its own.
    assert "pg_basebackup -h db -U sw" in script
    assert " -R" in script
    assert "$PGDATA/PG_VERSION" in script  # compose's $$ reaches the shell as $
    assert script.rstrip().endswith("exec postgres -c hot_standby=on -c hot_standby_feedback=on")
    assert any(str(v).startswith("pgreplica:") or "pgreplica" in str(v) for v in standby["volumes"])
    assert standby["depends_on"]["db"]["condition"] == "service_healthy"
    # The primary lets it replicate (an init script of the postgres image).
    assert any("docker-entrypoint-initdb.d/allow-replication.sh" in str(v) for v in services["db"]["volumes"])
    assert (ROOT / "deploy/postgres/allow-replication.sh").stat().st_mode & 0o111
    for service in ("api", "matcher", "dispatcher"):
        assert services[service]["environment"]["SW_READ_DATABASE_URL"] == replica["SW_READ_DATABASE_URL"]
    # Not named: the API processes have no replica (an empty SW_READ_DATABASE_URL is none).
    assert _environment("api", env=SECRETS)["SW_READ_DATABASE_URL"] == ""
