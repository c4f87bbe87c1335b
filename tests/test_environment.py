"""SW_ENV and the agencies' callback secrets: what production start-up refuses (each refusal naming the variable
to set), and a callback verified only against the secrets of the agency in its URL."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from app.config import DEVELOPMENT_CALLBACK_SECRET, DEVELOPMENT_RISK_ID_SECRET, DEVELOPMENT_WEBHOOK_SECRET_KEY, Settings
from app.environment import ProductionRefused, Role, development_warning, production_refusals
from app.main import create_app
from app.webhooks import sign
from tests.conftest import serving
from tests.factories import file_parties, post_triple, purchase
from tests.live import clean_env
from tests.service_keys import signing_settings

STRONG = {agency: f"{agency}-callback-secret-" + "x" * 32 for agency in ("customs", "inspection", "tax", "fx")}
AGENCY_URLS = {agency: f"https://{agency}.example.gov.cn/api" for agency in STRONG}


def _production(**overrides: Any) -> Settings:
    """Settings fit for production; ``overrides`` spoil one of them."""
    fit: dict[str, Any] = {
        "env": "production",
        "database_url": "postgresql+asyncpg://sw:pw@db.internal/single_window",
        "admin_token": SecretStr("an-admin-token-of-forty-characters-0123"),
        "console_secret": SecretStr("a-console-secret-of-forty-characters-012"),
        "webhook_secret_keys": SecretStr("a-webhook-secret-key-of-forty-characters"),
        "risk_id_secret": SecretStr("a-risk-id-secret-of-forty-characters-0123"),
        "mount_mock_agencies": False,
        "agency_urls": AGENCY_URLS,
        **{f"{agency}_callback_secrets": SecretStr(secret) for agency, secret in STRONG.items()},
        **signing_settings(),
        "_env_file": None,
    }
    return Settings(**(fit | overrides))


def test_fit_production_settings_start() -> None:
    assert production_refusals(_production(), "api") == []
    assert create_app(_production()).state.settings.is_production
    assert development_warning(_production()) is None


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"database_url": "sqlite+aiosqlite:///var/sw.db"}, "SW_DATABASE_URL"),
        ({"admin_token": SecretStr("admin")}, "SW_ADMIN_TOKEN"),
        ({"admin_token": SecretStr("a" * 31)}, "SW_ADMIN_TOKEN"),
        ({"console_secret": None}, "SW_CONSOLE_SECRET"),
        ({"console_secret": SecretStr("short-console-secret")}, "SW_CONSOLE_SECRET"),
        ({"customs_callback_secrets": None}, "SW_CUSTOMS_CALLBACK_SECRETS"),
        ({"inspection_callback_secrets": SecretStr(DEVELOPMENT_CALLBACK_SECRET)}, "SW_INSPECTION_CALLBACK_SECRETS"),
        ({"tax_callback_secrets": SecretStr(STRONG["tax"] + ",old")}, "SW_TAX_CALLBACK_SECRETS"),
        ({"fx_callback_secrets": SecretStr(STRONG["customs"])}, "SW_FX_CALLBACK_SECRETS"),
        ({"mount_mock_agencies": True}, "SW_MOUNT_MOCK_AGENCIES"),
        ({"webhook_secret_keys": SecretStr(DEVELOPMENT_WEBHOOK_SECRET_KEY)}, "SW_WEBHOOK_SECRET_KEYS"),
        ({"agency_urls": {"customs": AGENCY_URLS["customs"]}}, "SW_AGENCY_URLS"),
        ({"signing_key_path": None, "signing_certificate_path": None}, "SW_SIGNING_KEY_PATH"),
        ({"risk_id_secret": SecretStr(DEVELOPMENT_RISK_ID_SECRET)}, "SW_RISK_ID_SECRET"),
    ],
)
def test_production_start_up_refuses_and_names_the_variable(overrides: dict[str, Any], variable: str) -> None:
    with pytest.raises(ProductionRefused) as refused:
        create_app(_production(**overrides))
    assert len(refused.value.reasons) == 1, refused.value.reasons
    assert refused.value.reasons[0].startswith(variable)


def test_development_starts_with_anything_and_says_so() -> None:
    development = _production(env="development", database_url="sqlite+aiosqlite:///x.db", admin_token=None)
    create_app(development.model_copy(update={"mount_mock_agencies": True, "console_secret": None}))
    warning = development_warning(development)
    assert warning is not None
    assert "development secrets are in use" in warning


def test_each_process_checks_what_it_uses() -> None:
    # The matcher calls no agency and holds only the risk ID secret: the database and that secret matter to it.
    spoiled = _production(admin_token=SecretStr("admin"), console_secret=None, agency_urls={}, signing_key_path=None)
    assert production_refusals(spoiled, "matcher") == []
    assert [r.split()[0] for r in production_refusals(spoiled, "worker")] == ["SW_AGENCY_URLS", "SW_SIGNING_KEY_PATH"]
    assert production_refusals(_production(database_url="sqlite+aiosqlite:///x.db"), "matcher") != []


@pytest.mark.parametrize("role", ["api", "matcher"])
def test_production_refuses_the_development_risk_id_secret(role: Role) -> None:
    """The matcher keys the risk store's ID numbers with it, the API the quota check's per-ID limit: the
    published value would let anyone hash ID numbers and read the store back."""
    for weak in (DEVELOPMENT_RISK_ID_SECRET, "r" * 31):
        refusals = production_refusals(_production(risk_id_secret=SecretStr(weak)), role)
        assert [r.split()[0] for r in refusals] == ["SW_RISK_ID_SECRET"], refusals
    assert production_refusals(_production(risk_id_secret=SecretStr(DEVELOPMENT_RISK_ID_SECRET)), "worker") == []
    assert Settings(_env_file=None).risk_id_secret.get_secret_value() == DEVELOPMENT_RISK_ID_SECRET


def test_sw_matcher_refuses_before_it_touches_the_database(tmp_path: Path) -> None:
    env = clean_env(SW_ENV="production", SW_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'sw.db'}")
    done = subprocess.run(
        [sys.executable, "-m", "app", "matcher"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2
    assert "SW_DATABASE_URL is SQLite" in done.stderr
    assert not (tmp_path / "sw.db").exists()


# --- callbacks over HTTP -------------------------------------------------------------------------------------


def _signed(body: bytes, secret: str) -> dict[str, str]:
    webhook_id, timestamp = f"msg_{uuid.uuid4().hex}", str(int(time.time()))
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": sign(secret, webhook_id, timestamp, body),
        "content-type": "application/json",
    }


def _callback(record_id: str, agency: str) -> bytes:
    return (
        f'{{"agency":"{agency}","recordId":"{record_id}","receipts":[{{"returnStatus":"120","returnInfo":"ok"}}]}}'
    ).encode()


async def test_a_callback_is_verified_against_its_own_agency_s_secrets_only(settings: Settings) -> None:
    per_agency = {
        "customs_callback_secrets": SecretStr("customs-new,customs-old"),
        "inspection_callback_secrets": SecretStr("inspection-only"),
    }
    async with serving(settings, **per_agency) as (_, client):
        record_id = (await post_triple(client, await file_parties(client), purchase()))[-1].json()["recordId"]

        async def send(agency: str, secret: str) -> int:
            body = _callback(record_id, agency)
            url = f"/api/v1/agency-callbacks/{agency}"
            return (await client.post(url, content=body, headers=_signed(body, secret))).status_code

        assert await send("inspection", "customs-new") == 401  # customs' secret is not inspection's
        assert await send("customs", "inspection-only") == 401
        assert await send("customs", DEVELOPMENT_CALLBACK_SECRET) == 401  # an agency with its own: no fallback
        assert await send("customs", "customs-old") == 200  # rotation: the previous one still holds …
        assert await send("customs", "customs-new") == 200  # … beside the current one
        assert await send("customs", "customs-retired") == 401
        assert await send("inspection", "inspection-only") == 200
        assert await send("tax", DEVELOPMENT_CALLBACK_SECRET) == 200  # development: the shared fallback


async def test_for_every_agency_only_its_own_secret_opens_its_route(settings: Settings) -> None:
    secrets = {f"{agency}_callback_secrets": SecretStr(secret) for agency, secret in STRONG.items()}
    async with serving(settings, **secrets) as (_, client):
        record_id = (await post_triple(client, await file_parties(client), purchase()))[-1].json()["recordId"]
        for agency in STRONG:
            body = _callback(record_id, agency)
            url = f"/api/v1/agency-callbacks/{agency}"
            for other, secret in STRONG.items():
                answer = await client.post(url, content=body, headers=_signed(body, secret))
                assert answer.status_code == (200 if other == agency else 401), (agency, other, answer.text)


@pytest.mark.postgres_only
async def test_in_production_a_callback_forged_with_the_development_secret_is_refused(
    settings: Settings, database_url: str
) -> None:
    production = _production(database_url=database_url, embedded_dispatcher=False, match_linger_s=0)
    async with serving(production) as (_, client):
        body = _callback(str(uuid.uuid4()), "customs")
        forged = await client.post(
            "/api/v1/agency-callbacks/customs", content=body, headers=_signed(body, DEVELOPMENT_CALLBACK_SECRET)
        )
        assert forged.status_code == 401
        assert forged.json()["code"] == "SIGNATURE_INVALID"
        honest = await client.post(
            "/api/v1/agency-callbacks/customs", content=body, headers=_signed(body, STRONG["customs"])
        )
        assert honest.json()["code"] == "RECORD_NOT_FOUND"  # past the signature: there is no such record
