"""CSV answers (``Accept: text/csv``): the statistics tables and streamed record exports. UTF-8 with a byte
order mark, so that spreadsheet programs read the Chinese right."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from fastapi.responses import Response, StreamingResponse

CSV = "text/csv; charset=utf-8"
BOM = "\ufeff"


def wants_csv(accept: str | None) -> bool:
    """True when the Accept header names text/csv before (or instead of) application/json."""
    if not accept:
        return False
    for part in accept.split(","):
        media = part.split(";")[0].strip().lower()
        if media == "text/csv":
            return True
        if media in ("application/json", "*/*", "application/*"):
            return False
    return False


def csv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(["" if cell is None else cell for cell in row] for row in rows)
    return buffer.getvalue()


def csv_response(columns: Sequence[str], rows: Iterable[Sequence[Any]], filename: str) -> Response:
    return Response(
        BOM + csv_text(columns, rows),
        media_type=CSV,
        headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
    )


def csv_stream(columns: Sequence[str], pages: AsyncIterator[list[Sequence[Any]]], filename: str) -> StreamingResponse:
    async def body() -> AsyncIterator[str]:
        yield BOM + csv_text(columns, [])
        async for rows in pages:
            # Each page's rows without the header line.
            yield csv_text(columns, rows).split("\r\n", 1)[1]

    return StreamingResponse(
        body(), media_type=CSV, headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'}
    )


CSV_CONTENT = {"text/csv": {"schema": {"type": "string"}}}
