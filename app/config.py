"""Settings, read from the environment with the prefix ``SW_`` (and from a ``.env`` file if present)."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_PATH = Path("var") / "single-window.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SW_", env_file=".env", extra="ignore")

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
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_timeout_s: float = Field(default=10.0, gt=0)
    sqlite_busy_timeout_ms: int = Field(default=15000, ge=0)
    max_transaction_retries: int = Field(default=5, ge=1, description="Retries after deadlock / unique races")
    page_size_max: int = Field(default=500, ge=1)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
