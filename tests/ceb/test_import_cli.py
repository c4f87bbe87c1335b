"""`sw import` against a live `sw serve`: folders of CEB XML, a progress bar, a truthful summary, the exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from app.ceb.importer import collect_files
from app.cli import cli
from app.schemas import examples
from tests.ceb.conftest import ceb, message
from tests.live import clean_env, free_port, live_sw

ADMIN_TOKEN = "import-test-admin-token-0123456789"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    env = clean_env(
        SW_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('import') / 'sw.db'}",
        SW_ADMIN_TOKEN=ADMIN_TOKEN,
    )
    with live_sw("serve", env, "/readyz") as live:
        base = live.base
        admin = {"X-API-Key": ADMIN_TOKEN}
        keys = {}
        with httpx.Client(base_url=base, timeout=10) as http:
            for enterprise in examples.ENTERPRISES:
                http.post("/api/v1/enterprises", json=enterprise, headers=admin).raise_for_status()
                issued = http.post(f"/api/v1/enterprises/{enterprise['code']}/keys", json={}, headers=admin)
                keys[str(enterprise["roles"][0])] = issued.json()["key"]
        yield base, keys


def _order(number: str, **changes: str) -> dict[str, object]:
    return ceb(examples.ORDER | {"orderNo": number, "payTransactionId": f"PAY{number}", **changes})


def _sw_import(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SW_")} | {"COLUMNS": "200"}
    return subprocess.run(  # noqa: S603 - our own console script
        [sys.executable, "-m", "app", "import", *args], env=env, capture_output=True, text=True, timeout=120
    )


def test_import_a_folder_and_report_truthfully(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, keys = server
    stored_before = _order("IMP0000")
    response = httpx.post(
        f"{base}/api/v1/messages",
        content=message("order", [stored_before]),
        headers={"X-API-Key": keys["platform"], "Content-Type": "application/xml"},
    )
    assert response.status_code == 200
    folder = tmp_path / "messages"
    (folder / "a" / "b").mkdir(parents=True)
    first = message("order", [_order("IMP0001"), _order("IMP0002")])
    (folder / "a" / "orders-1.xml").write_bytes(first)
    (folder / "a" / "b" / "orders-2.XML").write_bytes(message("order", [_order("IMP0003")]))
    (folder / "resent.xml").write_bytes(first)  # the same message again: replayed, whatever the order
    conflicting = stored_before | {"goodsValue": "1.00", "acturalPaid": "47.12"}
    (folder / "mixed.xml").write_bytes(message("order", [_order("IMP0004"), conflicting]))
    (folder / "broken.xml").write_bytes(b"<ceb:CEB311Message xmlns:ceb='http://www.chinaport.gov.cn/ceb'>")
    (folder / "readme.txt").write_text("not a message")
    assert len(collect_files([folder])) == 5

    result = _sw_import(str(folder), "--url", base, "--key", keys["platform"], "--concurrency", "3")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output

    def row(label: str) -> str:
        [line] = [line for line in output.splitlines() if label in line]
        return line.split("│")[-2].strip() if "│" in line else line.split()[-1]

    assert row("messages sent") == "5"
    assert row("answered with a receipt") == "4"
    assert row("refused (CEB900)") == "1"
    assert row("failed (HTTP / network)") == "0"
    assert row("records stored") == "4"
    assert row("records replayed") == "2"
    assert row("records rejected") == "1"
    assert "-301010 [DUPLICATE_DIFFERENT_CONTENT]" in output
    assert "-1 [XML_NOT_WELL_FORMED]" in output
    assert "mixed.xml" in output
    assert "broken.xml" in output

    # Everything good is already there: sending the good files again is all replays, exit 0.
    again = _sw_import(str(folder / "a"), str(folder / "resent.xml"), "--url", base, "--key", keys["platform"])
    assert again.returncode == 0, again.stdout + again.stderr
    output = again.stdout
    assert row("records replayed") == "5"
    assert row("records stored") == "0"


def test_import_failures_are_counted_and_exit_non_zero(server: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    base, keys = server
    path = tmp_path / "one.xml"
    path.write_bytes(message("order", [_order("IMP0100")]))
    runner = CliRunner(env={"COLUMNS": "200", "SW_KEY": "", "SW_URL": ""})

    def sw_import(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["import", *args])
        return result.exit_code, result.output

    code, output = sw_import(str(path), "--url", base, "--key", "sw_000000000000_nope")
    assert (code, "HTTP 401 UNAUTHENTICATED" in output) == (1, True), output
    code, output = sw_import(str(path), "--url", base, "--key", keys["logistics"])
    assert (code, "-900010 [COP_CODE_MISMATCH]" in output) == (1, True), output
    code, output = sw_import(str(path), "--url", f"http://127.0.0.1:{free_port()}", "--key", "k", "--retries", "0")
    assert (code, "transport error" in output) == (1, True), output
    assert sw_import(str(path), "--url", base)[0] == 2  # no key
    empty = tmp_path / "empty"
    empty.mkdir()
    assert sw_import(str(empty), "--url", base, "--key", keys["platform"])[0] == 2
    code, output = sw_import(str(path), "--url", base, "--key", keys["platform"])
    assert code == 0, output
