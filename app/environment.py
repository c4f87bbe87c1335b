"""SW_ENV: what a production start-up refuses, and the warning a development start-up prints.

Every process checks its settings before it touches the database (the app factory, ``sw worker``,
``sw matcher``), so a development secret, a SQLite file or the in-process mock agencies never reach real
traffic by accident: the refusal names the variable to set. A secret is refused if it is shorter than
``MIN_SECRET_LENGTH`` or one of the values written in this repository or its docs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr

from app.config import DEVELOPMENT_CALLBACK_SECRET, DEVELOPMENT_RISK_ID_SECRET, DEVELOPMENT_WEBHOOK_SECRET_KEY, Settings
from app.services.declaration import enabled_agencies

MIN_SECRET_LENGTH = 32
# Values that appear in the source, the docs or the tests: anyone can read them.
KNOWN_SECRETS = frozenset(
    {
        DEVELOPMENT_CALLBACK_SECRET,
        DEVELOPMENT_WEBHOOK_SECRET_KEY,
        DEVELOPMENT_RISK_ID_SECRET,
        "admin",
        "secret",
        "changeme",
        "change-me",
        "password",
        "test-admin-token-0123456789",
    }
)

Role = Literal["api", "worker", "matcher", "deliver"]


class ProductionRefused(RuntimeError):
    """SW_ENV=production with settings only fit for development; ``reasons`` says what to set, one per line."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("SW_ENV=production refuses to start:\n" + "\n".join(f"- {r}" for r in reasons))


def _weak(secret: str) -> str | None:
    if secret in KNOWN_SECRETS:
        return "is a published development value"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    return None


def _secret_refusals(variable: str, secrets: list[str]) -> list[str]:
    refusals = []
    for secret in secrets:
        weakness = _weak(secret)
        if weakness is not None:
            refusals.append(f"{variable} {weakness}: set a random value (e.g. `openssl rand -base64 33`)")
    return refusals


def _optional(value: SecretStr | None) -> list[str]:
    return [value.get_secret_value()] if value is not None else []


def _callback_refusals(settings: Settings) -> list[str]:
    refusals: list[str] = []
    owners: dict[str, str] = {}
    for agency in enabled_agencies(settings):
        variable = f"SW_{agency.upper()}_CALLBACK_SECRETS"
        secrets = settings.own_callback_secrets(agency)
        if not secrets:
            refusals.append(f"{variable} is not set: each agency signs its callbacks with its own secret")
            continue
        refusals += _secret_refusals(variable, secrets)
        for secret in secrets:
            other = owners.setdefault(secret, agency)
            if other != agency:
                refusals.append(f"{variable} repeats a secret of SW_{other.upper()}_CALLBACK_SECRETS: one per agency")
    return refusals


def _agency_url_refusals(settings: Settings) -> list[str]:
    missing = [a for a in enabled_agencies(settings) if a not in settings.agency_urls]
    return [f"SW_AGENCY_URLS has no URL for {', '.join(missing)}"] if missing else []


def _signing_refusals(settings: Settings) -> list[str]:
    if settings.signing_key_path is None and settings.signing_pkcs12_path is None:
        return [
            "SW_SIGNING_KEY_PATH is not set: set it and SW_SIGNING_CERTIFICATE_PATH (or SW_SIGNING_PKCS12_PATH); "
            "a generated development key is not the service's certificate"
        ]
    return []


def production_refusals(settings: Settings, role: Role) -> list[str]:
    """What keeps these settings from production, for a process of this role; [] when nothing does."""
    refusals: list[str] = []
    if settings.is_sqlite:
        refusals.append("SW_DATABASE_URL is SQLite: set it to postgresql+asyncpg://user:password@host/database")
    if role in ("api", "matcher"):
        # The matcher keys the risk counters with it; the API keys the quota check's per-ID limit (and may
        # embed a matcher). With the published value anyone could hash ID numbers and read the risk store.
        refusals += _secret_refusals("SW_RISK_ID_SECRET", [settings.risk_id_secret.get_secret_value()])
    if role == "matcher":
        return refusals
    if role in ("api", "deliver"):  # they seal and open the subscriptions' signing secrets
        refusals += _secret_refusals("SW_WEBHOOK_SECRET_KEYS", settings.webhook_secret_key_list())
    if role == "deliver":
        return refusals
    if role == "worker" or settings.embedded_dispatcher:
        refusals += _agency_url_refusals(settings) + _signing_refusals(settings)
    if role == "api":
        if settings.mount_mock_agencies:
            refusals.append(
                "SW_MOUNT_MOCK_AGENCIES is true: set it to false and point SW_AGENCY_URLS at the agencies "
                "(the in-process mock agencies would answer for them)"
            )
        refusals += _secret_refusals("SW_ADMIN_TOKEN", _optional(settings.admin_token))
        if settings.console_secret is None:
            refusals.append("SW_CONSOLE_SECRET is not set: set one value shared by every API process")
        refusals += _secret_refusals("SW_CONSOLE_SECRET", _optional(settings.console_secret))
        refusals += _callback_refusals(settings)
    return refusals


def check_environment(settings: Settings, role: Role) -> None:
    """Raise ``ProductionRefused`` when SW_ENV=production and the settings are not fit for it."""
    if settings.is_production:
        refusals = production_refusals(settings, role)
        if refusals:
            raise ProductionRefused(refusals)


def development_warning(settings: Settings) -> str | None:
    """The banner line of a development start-up (None in production)."""
    if settings.is_production:
        return None
    return (
        "WARNING: SW_ENV=development — development secrets are in use (agency callbacks accept the published "
        "SW_AGENCY_CALLBACK_SECRET, mock agencies answer in-process). Never expose this to real traffic; "
        "SW_ENV=production refuses to start with them (docs/deployment.md#environments-and-secrets)."
    )
