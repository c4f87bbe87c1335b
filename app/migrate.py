"""Alembic, driven from code: `sw migrate`, `sw serve`, the readiness probe and the tests use it."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(settings: Settings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    # For a migration that needs more than the URL (0014 seals the webhook secrets with SW_WEBHOOK_SECRET_KEYS).
    config.attributes["settings"] = settings
    return config


def ensure_sqlite_directory(settings: Settings) -> None:
    if settings.is_sqlite and ":///" in settings.database_url:
        path = settings.database_url.split(":///", 1)[1].split("?", 1)[0]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def upgrade(settings: Settings, revision: str = "head") -> None:
    """Apply migrations (synchronous: call it before an event loop runs)."""
    ensure_sqlite_directory(settings)
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings, revision: str = "base") -> None:
    command.downgrade(alembic_config(settings), revision)


def head_revision(settings: Settings) -> str | None:
    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        try:
            version: str | None = await conn.scalar(text("SELECT version_num FROM alembic_version"))
            return version
        except DBAPIError:
            return None
