"""The README's first command, for real: `sw serve` in its own process, and `sw admin-key`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.schemas import examples


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sw(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own console script
        [sys.executable, "-m", "app", *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )


def test_serve_admin_key_and_a_matched_triple(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SW_")}
    env["SW_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'embedded' / 'sw.db'}"
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "app", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, "sw serve exited early"
            assert time.monotonic() < deadline, "sw serve did not become ready"
            time.sleep(0.2)
        key = _sw("admin-key", env=env).stdout.strip().splitlines()[-1]
        admin = {"X-API-Key": key}
        with httpx.Client(base_url=base, timeout=10) as http:
            assert http.get("/api/v1/enterprises", headers=admin).status_code == 200
            keys = {}
            for enterprise in examples.ENTERPRISES:
                assert http.post("/api/v1/enterprises", json=enterprise, headers=admin).status_code == 201
                issued = http.post(f"/api/v1/enterprises/{enterprise['code']}/keys", json={}, headers=admin)
                keys[enterprise["roles"][0]] = {"X-API-Key": issued.json()["key"]}
            http.post("/api/v1/orders", json=examples.ORDER, headers=keys["platform"]).raise_for_status()
            http.post("/api/v1/payments", json=examples.PAYMENT, headers=keys["payment"]).raise_for_status()
            receipt = http.post("/api/v1/waybills", json=examples.WAYBILL, headers=keys["logistics"]).json()
            assert receipt["recordStatus"] == "MATCHED", receipt
            assert "swagger-ui" in http.get("/docs").text
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=15)
    assert f"Swagger UI:  http://127.0.0.1:{port}/docs" in output
    assert "sw admin-key" in output
