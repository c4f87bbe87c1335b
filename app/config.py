"""Settings, read from the environment with the prefix ``SW_`` (and from a ``.env`` file if present)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import make_url

DEFAULT_SQLITE_PATH = Path("var") / "single-window.db"
DEVELOPMENT_CALLBACK_SECRET = "single-window-dev-callback-secret"  # noqa: S105 - published, refused in production
DEVELOPMENT_WEBHOOK_SECRET_KEY = "single-window-dev-webhook-secret-key"  # noqa: S105 - published, refused in production
DEVELOPMENT_RISK_ID_SECRET = "dev-risk-secret"  # noqa: S105 - published, refused in production
CALLBACK_AGENCIES = ("customs", "inspection", "tax", "fx")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SW_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = Field(
        default="development",
        description="production: start-up refuses development secrets, SQLite and the in-process mock agencies",
    )
    database_url: str = Field(
        default=f"sqlite+aiosqlite:///{DEFAULT_SQLITE_PATH}",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path or postgresql+asyncpg://user@host/db",
    )
    admin_token: SecretStr | None = Field(
        default=None, description="Bootstrap key accepted as admin (compare: `sw admin-key` for stored keys)"
    )
    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, description="Larger bodies get 413")
    amount_tolerance: Decimal = Field(
        default=Decimal("0"),
        ge=0,
        description="Allowed difference (CNY) when matching amounts; 0 = exact to the cent",
    )
    # --- the read replica (app/read_replica.py, docs/scaling.md) -------------------------------------------
    read_database_url: str | None = Field(
        default=None,
        description="postgresql+asyncpg://… of a streaming replica of SW_DATABASE_URL: officials' searches and "
        "exports, statistics, the console dashboard and the feed are read there (unset: everything on the primary)",
    )
    read_max_lag_s: float = Field(
        default=5.0, gt=0, description="A replica further behind than this (seconds) is not read: the primary is"
    )
    read_fallback: bool = Field(
        default=True,
        description="When the replica is too far behind or unreachable, answer from the primary (off: answer 503 "
        "READ_REPLICA_UNAVAILABLE, to keep the load off the primary)",
    )
    read_retry_s: float = Field(
        default=5.0, ge=0, description="After the replica could not be reached, how long before it is tried again"
    )
    read_connect_timeout_s: float = Field(
        default=2.0, gt=0, description="How long a connection to the replica may take before it counts as unreachable"
    )
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout_s: float = Field(default=10.0, gt=0)
    sqlite_busy_timeout_ms: int = Field(default=15000, ge=0)
    sqlite_inline: bool = Field(
        default=True,
        description="Run SQLite calls on the event loop's thread (true) or on aiosqlite's thread, one hop per call "
        "(false); docs/performance.md, Embedded SQLite",
    )
    max_transaction_retries: int = Field(default=5, ge=1, description="Retries after deadlock / unique races")
    # --- the match stage ----------------------------------------------------------------------------------
    match_batch_size: int = Field(
        default=500, ge=1, le=5000, description="Accepted documents one matcher applies in one transaction"
    )
    match_poll_s: float = Field(
        default=0.05, gt=0, description="Idle wait of a matcher between looks (an accept in its process wakes it)"
    )
    match_linger_s: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="After a round that was not full, how long a matcher lets documents gather before the next "
        "(fewer, fuller rounds under load; after an idle spell a document is taken at once)",
    )
    sqlite_match_linger_s: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="The linger (SW_MATCH_LINGER_S) of the matcher inside the API process on SQLite (`sw serve`), "
        "where rounds and accepts share one process and one writer: fewer, fuller rounds leave more of both to "
        "accepting. A request with `Prefer: wait` cuts the linger short",
    )
    embedded_matcher: bool = Field(default=True, description="Run a matcher inside the API process")
    page_size_max: int = Field(default=500, ge=1)
    key_cache_s: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="How long a process trusts an API key it has checked (0: read it on every request); a key "
        "revoked or an enterprise suspended elsewhere stops working here within this time",
    )

    # --- rate limits per enterprise (app/rules/rate_limits.py) --------------------------------------------
    redis_url: str | None = Field(
        default=None,
        description="redis://host:6379/0: rate-limit counters shared by every API process (unset: counted in "
        "this process, for embedded mode)",
    )
    rate_limit_window_s: int = Field(default=60, ge=1, le=3600, description="The fixed window limits count in")
    rate_limit_intake: int = Field(
        default=60_000,
        ge=0,
        description="Intake requests (documents and CEB messages sent, a batch counting once) per window per "
        "enterprise, unless the enterprise has its own; 0: no limit",
    )
    rate_limit_refusal_delay_s: float = Field(
        default=1.0,
        ge=0,
        le=10,
        description="A refused request (429) is answered after this pause (at most until its Retry-After): a loop "
        "that ignores Retry-After then gets one answer per connection per pause instead of spending the service's "
        "CPU on a refusal per iteration; a sender that honours Retry-After waits longer than this anyway",
    )
    rate_limit_queries: int = Field(
        default=30_000, ge=0, description="Reads (GET) per window per enterprise, unless it has its own; 0: no limit"
    )

    # --- the officials' console (/console) -------------------------------------------------------------
    console_secret: SecretStr | None = Field(
        default=None,
        description="Signs the console's session cookies. Unset: a random secret per process (sessions end at "
        "a restart and do not carry across `--workers` processes): set it in production",
    )
    console_idle_timeout_s: int = Field(
        default=1800, ge=60, le=86400, description="A console session ends after this long without a request"
    )
    console_time_zone: str = Field(
        default="Asia/Shanghai", description="Time zone in which the console shows and reads times"
    )

    # Agency callbacks: Standard-Webhooks headers, HMAC-SHA256 over f"{id}.{timestamp}.{body}". One secret per
    # agency, so that a leaked inspection secret cannot forge a customs release; each a comma-separated list
    # (current first, then the previous one while the agency moves over), so a secret rotates with an overlap.
    customs_callback_secrets: SecretStr | None = Field(
        default=None, description="Customs' callback secret(s), comma-separated: current, then previous"
    )
    inspection_callback_secrets: SecretStr | None = Field(
        default=None, description="Inspection's callback secret(s), comma-separated: current, then previous"
    )
    tax_callback_secrets: SecretStr | None = Field(
        default=None, description="The tax bureau's callback secret(s), comma-separated: current, then previous"
    )
    fx_callback_secrets: SecretStr | None = Field(
        default=None, description="FX's callback secret(s), comma-separated: current, then previous"
    )
    agency_callback_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_CALLBACK_SECRET),
        description="Development only: the callback secret(s) of every agency without its own "
        "SW_<AGENCY>_CALLBACK_SECRETS (never used when SW_ENV=production)",
    )

    # --- the service's own signature (CEB621 it declares; docs/xml.md#signatures) ------------------------
    signing_key_path: Path | None = Field(
        default=None, description="PEM private key (PKCS #8, or SEC 1 for SM2) the service signs with"
    )
    signing_certificate_path: Path | None = Field(default=None, description="PEM X.509 certificate of that key")
    signing_pkcs12_path: Path | None = Field(
        default=None, description="Or: a PKCS #12 file with the key and certificate (RSA; SM2 keys as PEM)"
    )
    signing_pkcs12_password: SecretStr | None = Field(default=None, description="Password of the PKCS #12 file")
    signing_dev_keys: bool = Field(
        default=True,
        description="With no key configured, generate a development key and self-signed certificate on first use "
        "under SW_SIGNING_DEV_DIR (embedded / development mode); set false in production",
    )
    signing_dev_dir: Path = Field(default=Path("var") / "keys", description="Where development keys are kept")
    signing_algorithm: Literal["SM2", "RSA"] = Field(
        default="SM2", description="Algorithm of a generated development key (SM2-SM3 as the E-port prefers)"
    )
    mock_customs_certificate_path: Path | None = Field(
        default=None,
        description="Mock customs: the certificate it verifies the service's CEB621 signature with (default: the "
        "service's own signing certificate, from the settings above)",
    )

    # Mock agencies (app/mock_agencies): their rules and fault injection, for tests and benchmarks.
    mock_seed: int = Field(default=0, description="Seed of the mock agencies' fault injection")
    mock_inspection_delay_ms: int = Field(
        default=1500, ge=0, description="Mock customs: delay before the release callback after an inspection"
    )
    mock_latency_ms: int = Field(default=0, ge=0, description="Mock agencies: latency added to every declaration")
    mock_failure_rate: float = Field(
        default=0, ge=0, le=1, description="Mock agencies: share of calls failing (503, 429, or a hang), unanswered"
    )
    mock_slow_answer_rate: float = Field(
        default=0, ge=0, le=1, description="Mock agencies: share of calls answered and recorded, then held too long"
    )
    mock_hang_s: float = Field(
        default=35.0, ge=0, description="Mock agencies: how long a hang lasts (longer than the client's timeout)"
    )
    mock_callback_attempts: int = Field(default=5, ge=1, description="Mock customs: tries per release callback")
    mock_callback_backoff_s: float = Field(
        default=0.5, ge=0, description="Mock customs: first pause between callback tries (doubles each try)"
    )
    mock_fx_check_id_checksum: bool = Field(
        default=False,
        description="Mock FX: also check the payer ID's GB 11643 check digit (off: format only, "
        "17 digits + digit or X, as the example IDs are not real)",
    )

    # --- credit and risk (app/rules/credit.py, app/rules/risk.py, docs/risk.md) -------------------------
    # Supervision profiles per customs credit level: the defaults until an official stores others.
    supervision_rate_regular: Decimal = Field(
        default=Decimal("0.0244"), ge=0, le=1, description="Inspection rate of regular enterprises (常规企业)"
    )
    supervision_certified_share: Decimal = Field(
        default=Decimal("0.2"), ge=0, le=Decimal("0.2"), description="认证企业: share of the regular rate (≤ 0.2)"
    )
    supervision_advanced_share: Decimal = Field(
        default=Decimal("0.1"), ge=0, le=Decimal("0.2"), description="高级认证企业: share of the regular rate (≤ 0.2)"
    )
    supervision_rate_dishonest: Decimal = Field(
        default=Decimal("0.85"), ge=Decimal("0.8"), le=1, description="Inspection rate of 失信企业 (≥ 0.8)"
    )
    supervision_rate_seriously_dishonest: Decimal = Field(
        default=Decimal("1"), ge=Decimal("0.8"), le=1, description="Inspection rate of 严重失信企业"
    )
    supervision_block_seriously_dishonest: bool = Field(
        default=False, description="Refuse declarations naming a 严重失信 enterprise instead of inspecting them"
    )
    risk_enabled: bool = Field(
        default=True, description="Decide each declaration (risk and credit); off: every declaration is released"
    )
    risk_seed: int = Field(default=0, description="Seed of the inspection sampling (reproducible per record)")
    risk_id_secret: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_RISK_ID_SECRET),
        description="HMAC key of buyer ID numbers in the risk counters. The default is a development value",
    )
    risk_window_days: int = Field(default=30, ge=1, le=366, description="Window of the R1–R3 counters")
    risk_ids_per_address: int = Field(default=5, ge=2, description="R1: distinct buyer IDs per address")
    risk_addresses_per_id: int = Field(default=4, ge=2, description="R2: distinct addresses per buyer ID")
    risk_ids_per_phone: int = Field(default=3, ge=2, description="R3: distinct buyer IDs per consignee phone")
    risk_orders_per_id_day: int = Field(default=5, ge=2, description="R4: orders per buyer ID in 24 h")
    risk_platforms_per_id_day: int = Field(default=3, ge=2, description="R4: platforms per buyer ID in 24 h")
    risk_quota_share: Decimal = Field(default=Decimal("0.8"), gt=0, le=1, description="R5: annual quota share used")
    risk_price_share: float = Field(default=0.5, gt=0, le=1, description="R6: unit price below this share of median")
    risk_price_min_samples: int = Field(default=20, ge=1, description="R6: declarations of an item before it counts")
    risk_inspect_on_warning: bool = Field(default=True, description="A declaration that raised a warning is inspected")
    risk_ids_per_pay_second: int = Field(
        default=10, ge=2, description="R7: distinct buyer IDs paying one platform in the same payment second"
    )
    risk_r8_factor: float = Field(default=2.0, gt=1, description="R8: rejection rate over this × the peers' median")
    risk_r8_min_records: int = Field(
        default=20, ge=1, description="R8: an enterprise's records in 7 d before it counts"
    )
    risk_housekeeping_interval_s: float = Field(
        default=3600,
        ge=0,
        description="How often the matcher prunes the risk counters and raises R8 warnings (0: never; "
        "`sw risk-prune` by hand)",
    )

    # Public endpoints (no key): limits per client address (and per ID number for quota checks), counted by the
    # shared rate limiter (Redis with SW_REDIS_URL). 0 means no limit, as for the enterprises' limits.
    public_complaints_per_hour: int = Field(
        default=5, ge=0, description="Complaints one client may file per hour (0: no limit)"
    )
    public_quota_checks_per_hour: int = Field(
        default=10, ge=0, description="Quota checks per client per hour (0: no limit)"
    )
    public_quota_checks_per_id_day: int = Field(
        default=5, ge=0, description="Quota checks per ID number per day (0: no limit)"
    )
    public_min_buyers: int = Field(default=5, ge=1, description="Credit disclosure: no cell of fewer buyers")

    # --- declaration (清单) -------------------------------------------------------------------------
    customs_code: str = Field(default="1501", pattern=r"^\d{4}$", description="Customs office receiving lists")
    port_code: str = Field(default="1501", pattern=r"^\d{4}$", description="Customs office of the port of entry")
    trade_mode: str = Field(default="9610", pattern=r"^(9610|1210)$", description="9610 direct / 1210 bonded")
    traf_mode: str = Field(default="5", pattern=r"^\d$", description="Transport mode code (JGS-20), 5 = air")
    # No document of the three carries the conveyance (CEB511 has no such field; customs reads it from the
    # manifest): it is the declaring party's, like the offices and the transport mode above.
    traf_no: str = Field(
        default="SW-DEV-CONVEYANCE",
        max_length=100,
        description="trafNo of 9610 lists: the conveyance of the direct-import line (a development stand-in by "
        "default; empty: 9610 declarations are refused with TRANSPORT_NOT_KNOWN)",
    )
    voyage_no: str = Field(
        default="SW-DEV-VOYAGE",
        max_length=32,
        description="voyageNo of 9610 lists: the voyage or flight number (a development stand-in by default; "
        "empty: 9610 declarations are refused with TRANSPORT_NOT_KNOWN)",
    )
    declarant_code: str | None = Field(default=None, description="agentCode of the lists; the seller if unset")
    declarant_name: str | None = None
    guarantor_code: str | None = Field(default=None, description="assureCode; the seller if unset")
    single_limit: Decimal = Field(default=Decimal("5000"), gt=0, description="CNY per purchase")
    annual_limit: Decimal = Field(default=Decimal("26000"), gt=0, description="CNY per buyer per calendar year")
    agencies: str = Field(default="customs,inspection,tax,fx", description="Agencies a declaration goes to")

    # --- dispatch to the agencies ---------------------------------------------------------------------
    agency_adapters: dict[str, str] = Field(
        default_factory=dict,
        description='Adapter class per agency, e.g. {"customs": "mypkg.adapters:Customs"}; the built-in '
        "classes and the entry-point group singlewindow.adapters otherwise",
    )
    agency_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Base URL per agency; unset agencies go to the mock agencies mounted in this process",
    )
    agency_timeout_s: float = Field(default=10.0, gt=0, description="Read timeout of one agency call")
    public_base_url: str | None = Field(
        default=None, description="How agencies reach this service's callback endpoint (callbackUrl)"
    )
    dispatch_backoff_base_s: float = Field(default=2.0, gt=0)
    dispatch_backoff_cap_s: float = Field(default=900.0, gt=0)
    dispatch_max_attempts: int = Field(default=12, ge=1)
    dispatch_lease_s: float = Field(default=60.0, gt=0, description="An in-flight claim expires after this")
    dispatch_batch_size: int = Field(
        default=100,
        ge=1,
        le=100,
        description="Declarations one agency call carries (a CEB621 message holds at most 100); a round claims "
        "this many per agency",
    )
    dispatch_poll_s: float = Field(default=1.0, gt=0, description="Idle wait between polls (NOTIFY wakes sooner)")
    embedded_dispatcher: bool = Field(default=True, description="Run the dispatcher inside the API process")
    mount_mock_agencies: bool = Field(
        default=True, description="Serve the mock agencies under /mock/* (agencies without a URL go to them)"
    )
    # Feedback to enterprises: subscriptions, webhook and AMQP deliveries (docs/webhooks.md).
    webhook_allow_private: bool = Field(
        default=False,
        description="Let subscriptions name hosts on loopback, link-local, private or reserved addresses "
        "(tests, in-house deployments); refused otherwise, at registration and at each delivery",
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="Whole-request timeout of one delivery")
    webhook_retry_for_s: float = Field(
        default=3 * 24 * 3600.0, ge=24 * 3600.0, description="How long a failing delivery is retried before dead"
    )
    webhook_backoff_base_s: float = Field(default=5.0, gt=0)
    webhook_backoff_cap_s: float = Field(default=3600.0, gt=0)
    webhook_failing_after: int = Field(
        default=5, ge=1, description="Consecutive failures after which a subscription shows as failing"
    )
    webhook_concurrency: int = Field(default=64, ge=1, description="Deliveries in flight per delivery worker")
    webhook_subscription_in_flight: int = Field(
        default=4,
        ge=1,
        description="Deliveries in flight to one subscription per delivery worker at first, and at least "
        "(app/notify/pacing.py: more while its endpoint answers in time, back to this when it fails)",
    )
    webhook_subscription_in_flight_max: int = Field(
        default=32, ge=1, description="Deliveries in flight to one subscription per delivery worker at most"
    )
    webhook_lease_s: float = Field(default=120.0, gt=0, description="A claimed delivery is taken back after this")
    webhook_secret_overlap_s: float = Field(
        default=24 * 3600.0, ge=0, description="After a secret rotation, how long the old secret still signs"
    )
    webhook_poll_s: float = Field(default=0.25, gt=0, description="Idle wait of the fan-out and delivery loops")
    webhook_secret_keys: SecretStr = Field(
        default=SecretStr(DEVELOPMENT_WEBHOOK_SECRET_KEY),
        description="Encrypts the subscriptions' signing secrets at rest (AES-GCM); comma-separated, current "
        "first, older ones still read. The default is a published development value, refused in production",
    )
    embedded_delivery: bool = Field(default=True, description="Run fan-out and delivery inside the API process")

    # Storage (docs/storage.md): monthly partitions of the logs on PostgreSQL, and how long months are kept.
    retention_months: int = Field(
        default=24, ge=0, description="Whole months kept before the current one by `sw prune` (0 keeps all)"
    )
    purchase_retention_months: int = Field(
        default=0,
        ge=0,
        description="Whole months a final purchase is kept after its last change by `sw prune-purchases` (0 keeps all)",
    )
    partitions_ahead: int = Field(default=3, ge=1, le=24, description="Monthly partitions created ahead")
    partition_maintenance_s: float = Field(
        default=6 * 3600.0, ge=0, description="How often the worker creates the months ahead (0: only at start)"
    )

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    def webhook_secret_key_list(self) -> list[str]:
        """SW_WEBHOOK_SECRET_KEYS, current first."""
        return _secret_list(self.webhook_secret_keys)

    def own_callback_secrets(self, agency: str) -> list[str]:
        """The agency's own callback secrets (SW_<AGENCY>_CALLBACK_SECRETS), current first; [] if unset."""
        if agency not in CALLBACK_AGENCIES:
            return []
        configured: SecretStr | None = getattr(self, f"{agency}_callback_secrets")
        return _secret_list(configured)

    def callback_secrets(self, agency: str) -> list[str]:
        """The secrets a callback from ``agency`` may be signed with, current first. Only the agency's own
        ones; in development, the shared SW_AGENCY_CALLBACK_SECRET for an agency that has none."""
        own = self.own_callback_secrets(agency)
        if own or self.is_production:
            return own
        return _secret_list(self.agency_callback_secret)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database file, absolute (a relative URL path is relative to the current folder)."""
        if not self.is_sqlite:
            return None
        database = make_url(self.database_url).database
        return Path(database).resolve() if database and database != ":memory:" else None

    def database_shown(self) -> str:
        """Where the data lives, for a person: the SQLite file's absolute path, or the URL without password."""
        sqlite_file = self.sqlite_file
        if sqlite_file is not None:
            return f"SQLite file {sqlite_file}"
        url = make_url(self.database_url)
        return url.render_as_string(hide_password=True)


def _secret_list(value: SecretStr | None) -> list[str]:
    if value is None:
        return []
    return [part.strip() for part in value.get_secret_value().split(",") if part.strip()]


@lru_cache
def get_settings() -> Settings:
    return Settings()
