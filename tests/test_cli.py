"""The README's first command, for real: `sw serve` in its own process, and `sw admin-key`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.schemas import examples
from app.schemas.goods import EXAMPLE_GOODS
from tests.live import clean_env, live_sw


def _sw(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [sys.executable, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )


def test_serve_admin_key_and_a_purchase_cleared_end_to_end(tmp_path: Path) -> None:
    env = clean_env(
        SW_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'embedded' / 'sw.db'}",
        SW_MOCK_INSPECTION_DELAY_MS="200",
        SW_DISPATCH_POLL_S="0.2",
        SW_SIGNING_DEV_DIR=str(tmp_path / "embedded" / "keys"),  # where var/keys would be
    )
    with live_sw("serve", env, "/readyz") as server:
        issued = _sw("admin-key", env=env)
        key = issued.stdout.strip()
        database = tmp_path / "embedded" / "sw.db"
        assert issued.stderr.strip() == f"Admin key written to SQLite file {database} (shown once):"
        admin = {"X-API-Key": key}
        with httpx.Client(base_url=server.base, timeout=10) as http:
            assert http.get("/api/v1/enterprises", headers=admin).status_code == 200
            keys = {}
            for enterprise in examples.ENTERPRISES:
                assert http.post("/api/v1/enterprises", json=enterprise, headers=admin).status_code == 201
                issued = http.post(f"/api/v1/enterprises/{enterprise['code']}/keys", json={}, headers=admin)
                keys[enterprise["roles"][0]] = {"X-API-Key": issued.json()["key"]}
            assert http.post("/api/v1/goods", json=EXAMPLE_GOODS, headers=admin).status_code == 201
            wait = {"Prefer": "wait=10"}  # the business result in the answer (the embedded matcher runs)
            http.post("/api/v1/orders", json=examples.ORDER, headers=keys["platform"] | wait).raise_for_status()
            http.post("/api/v1/payments", json=examples.PAYMENT, headers=keys["payment"] | wait).raise_for_status()
            receipt = http.post("/api/v1/waybills", json=examples.WAYBILL, headers=keys["logistics"] | wait).json()
            assert receipt["recordStatus"] == "DECLARED", receipt
            # The embedded dispatcher delivers to the mounted mock agencies: MATCHED → DECLARED → CLEARED.
            deadline = time.monotonic() + 20
            while True:
                record = http.get(f"/api/v1/records/{receipt['recordId']}", headers=admin).json()
                if record["status"] == "CLEARED" or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert record["status"] == "CLEARED", record
            assert {a["returnStatus"] for name, a in record["agencies"].items() if name != "customs"} <= {"120", "500"}
            assert record["agencies"]["customs"]["returnStatus"] == "800"
            assert record["declaration"]["tax"]["taxTotal"] == "46.12"
            assert "swagger-ui" in http.get("/docs").text
    # No key configured: a development key was made on first use, and the customs release means the mock
    # customs verified the CEB621 signed with it.
    assert (tmp_path / "embedded" / "keys" / "signing-key.pem").exists()
    assert f"Swagger UI:  {server.base}/docs" in server.output
    assert "make admin-key" in server.output
    assert "docker compose exec api sw admin-key" in server.output
    assert "SW_ENV=development — development secrets are in use" in server.output
    assert f"SQLite file {tmp_path / 'embedded' / 'sw.db'}" in server.output


def test_admin_key_refuses_to_make_a_second_sqlite_database_elsewhere(tmp_path: Path) -> None:
    """Run from another folder, the default relative SQLite path names a database the server never reads."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    refused = subprocess.run(
        [sys.executable, "-m", "app", "admin-key"], env=clean_env(), cwd=elsewhere, capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert f"No database at {elsewhere / 'var' / 'single-window.db'}" in refused.stderr
    assert not (elsewhere / "var").exists()
    created = subprocess.run(
        [sys.executable, "-m", "app", "admin-key", "--create"],
        env=clean_env(),
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    )
    assert created.stdout.startswith("sw_")
    assert (elsewhere / "var" / "single-window.db").exists()


def test_sw_keys_generate_says_where_it_put_the_pair(tmp_path: Path) -> None:
    env = clean_env()
    out = _sw("keys", "generate", "--algorithm", "RSA", "--out", str(tmp_path / "keys"), env=env).stdout
    assert f"SW_SIGNING_KEY_PATH={tmp_path / 'keys' / 'signing-key.pem'}" in out
    assert f"SW_SIGNING_CERTIFICATE_PATH={tmp_path / 'keys' / 'signing-certificate.pem'}" in out
    assert "RSA, serial" in out
    again = subprocess.run(  # noqa: S603 - our own console script
        [sys.executable, "-m", "app", "keys", "generate", "--out", str(tmp_path / "keys")],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 1
    assert "--force" in again.stderr
