"""The ``sw`` command: serve, migrate, admin-key, openapi, docs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from app.config import get_settings
from app.db import create_engine, create_sessionmaker, run_in_transaction
from app.migrate import upgrade

cli = typer.Typer(
    help="Single Window — cross-border e-commerce three-document exchange", no_args_is_help=True
)

OPENAPI_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes (PostgreSQL mode)")] = 1,
) -> None:
    """Apply migrations, then run the API (embedded mode: SQLite file by default)."""
    settings = get_settings()
    upgrade(settings)
    shown = "localhost" if host in ("0.0.0.0", "::") else host  # noqa: S104 - only used for the printed URL
    typer.echo(f"Single Window — database {_redact(settings.database_url)} (migrations applied)")
    typer.echo(f"Swagger UI:  http://{shown}:{port}/docs")
    typer.echo("Admin key:   run `uv run sw admin-key` in another terminal (or set SW_ADMIN_TOKEN)")
    uvicorn.run("app.main:create_app", factory=True, host=host, port=port, workers=workers, log_level="info")


@cli.command()
def migrate() -> None:
    """Apply all migrations to SW_DATABASE_URL."""
    settings = get_settings()
    upgrade(settings)
    typer.echo(f"migrated {_redact(settings.database_url)} to head")


@cli.command("admin-key")
def admin_key(label: Annotated[str, typer.Option(help="Who the key is for")] = "cli") -> None:
    """Print a new admin key (shown once; only its hash is stored)."""
    from app.services.auth import issue_key

    settings = get_settings()
    upgrade(settings)

    async def create() -> str:
        engine = create_engine(settings)
        try:
            _, plain = await run_in_transaction(
                create_sessionmaker(engine), lambda session: issue_key(session, "admin", None, label)
            )
            return plain
        finally:
            await engine.dispose()

    typer.echo(asyncio.run(create()))


@cli.command()
def openapi(
    output: Annotated[Path, typer.Option(help="Where to write the document")] = OPENAPI_PATH,
) -> None:
    """Write the OpenAPI document generated from the app (kept current by a test)."""
    from app.main import create_app

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_openapi(create_app()) + "\n", encoding="utf-8")
    typer.echo(f"wrote {output}")


@cli.command()
def docs() -> None:
    """Regenerate docs/reason-codes.md from the code."""
    from app.reason_docs import write

    typer.echo(f"wrote {write()}")


def render_openapi(app: object) -> str:
    return json.dumps(app.openapi(), ensure_ascii=False, indent=2, sort_keys=False)  # type: ignore[attr-defined]


def _redact(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}" if ":" in credentials else url
    return url


def main() -> None:
    cli()
