"""``make soak`` / ``make soak-quick``: the soak suites on a fresh PostgreSQL database of their own.

Creates ``sw_soak_<pid>``, runs ``pytest -m soak`` against it with ``SW_SOAK`` as given (quick or full), then
drops the database. ``full`` also writes the figures table into ``docs/reliability.md`` between its markers.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- figures:begin -->", "<!-- figures:end -->"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _database_url(name: str) -> str:
    admin = urlsplit(os.environ.get("PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    return urlunsplit(("postgresql+asyncpg", admin.netloc, f"/{name}", "", ""))


def _refresh_doc(figures_file: Path) -> None:
    rows = json.loads(figures_file.read_text())
    table = ["| check | measured | target |", "| --- | --- | --- |"]
    table += [f"| {r['check']} | {r['measured']} | {r['target']} |" for r in rows]
    text = DOC.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n" + "\n".join(table) + f"\n{END}{tail}")
    print(f"docs/reliability.md: figures table refreshed ({len(rows)} rows)")


def main() -> int:
    level = os.environ.get("SW_SOAK", "quick")
    name = f"sw_soak_{os.getpid()}"
    asyncio.run(_admin(f"CREATE DATABASE {name}"))
    figures = ROOT / "bench" / "results" / f"reliability-{level}.json"
    env = os.environ | {
        "SW_SOAK": level,
        "SW_TEST_DATABASE_URL": _database_url(name),
        "SW_FIGURES_FILE": str(figures),
    }
    try:
        code = subprocess.call(  # noqa: S603 - our own test suite
            [sys.executable, "-m", "pytest", "-m", "soak", "-p", "no:cacheprovider", *sys.argv[1:]],
            env=env,
            cwd=ROOT,
        )
    finally:
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    if code == 0 and level == "full" and figures.exists() and DOC.exists():
        _refresh_doc(figures)
    return code


if __name__ == "__main__":
    sys.exit(main())
