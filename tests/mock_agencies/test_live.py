"""`sw mock-agencies --port P` for real: a live uvicorn answering over the network."""

from __future__ import annotations

import httpx

from tests.live import clean_env, live_sw
from tests.mock_agencies.packages import package
from tests.service_keys import service_identity


def test_sw_mock_agencies_serves_over_http() -> None:
    # The mock customs learns the single window's certificate from settings, as a deployment would set it.
    certificate = str(service_identity().certificate_path)
    env = clean_env(SW_MOCK_LATENCY_MS="5", SW_MOCK_CUSTOMS_CERTIFICATE_PATH=certificate)
    with live_sw("mock-agencies", env, "/mock/customs/stats") as server:
        body = package("customs")
        with httpx.Client(base_url=server.base, timeout=10) as http:
            for _ in range(2):
                answer = http.post("/mock/customs/declarations", json=body, headers={"Idempotency-Key": "live-1"})
                assert answer.status_code == 200, answer.text
                assert [r["returnStatus"] for r in answer.json()["receipts"]] == ["120", "399", "800"]
            counted = http.get("/mock/customs/stats").json()
            assert (counted["answered"], counted["requests"]) == (1, 2)
            assert http.post("/mock/customs/declarations", json=body).status_code == 400
    assert f"{server.base}/mock/{{customs,inspection,tax,fx}}/declarations" in server.output
    assert "latency 5 ms" in server.output
