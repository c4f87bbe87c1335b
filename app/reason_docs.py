"""Renders the reason-code tables (docs/reason-codes.md and the OpenAPI description) from the code."""

from __future__ import annotations

from pathlib import Path

from app.error_codes import API_ERROR_CODES
from app.rules.after_release import AFTER_RELEASE_REFUSALS
from app.rules.inventory import REFUSAL_CODES
from app.rules.reason_codes import REASON_CODES

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "reason-codes.md"


def code_spans(field: str) -> str:
    """``payerIdNumber | payerName`` → two code spans: a ``|`` would end the table cell, even inside backticks."""
    return " / ".join(f"`{name.strip()}`" for name in field.split("|"))


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def discrepancy_table() -> str:
    lines = [
        "| code | severity | documents | field | meaning | 说明 | spec |",
        "|---|---|---|---|---|---|---|",
    ]
    for rc in REASON_CODES.values():
        documents = ", ".join(rc.documents)
        lines.append(
            f"| `{rc.code}` | {rc.severity} | {documents} | {code_spans(rc.field)} | {_cell(rc.en)} | {_cell(rc.zh)} "
            f"| {_cell(rc.spec)} |"
        )
    return "\n".join(lines)


def refusal_table() -> str:
    lines = ["| code | returnStatus | field | meaning | 说明 |", "|---|---|---|---|---|"]
    for rc in REFUSAL_CODES.values():
        lines.append(f"| `{rc.code}` | {rc.ceb_return_status} | `{rc.field}` | {rc.en} | {rc.zh} |")
    return "\n".join(lines)


def after_release_table() -> str:
    lines = ["| code | HTTP | returnStatus | meaning | 说明 |", "|---|---|---|---|---|"]
    for r in AFTER_RELEASE_REFUSALS.values():
        lines.append(f"| `{r.code}` | {r.http_status} | {r.ceb_return_status} | {_cell(r.en)} | {_cell(r.zh)} |")
    return "\n".join(lines)


def error_table() -> str:
    lines = ["| code | HTTP | spec receipt code | meaning |", "|---|---|---|---|"]
    for code, (status, spec, meaning) in API_ERROR_CODES.items():
        lines.append(f"| `{code}` | {status} | {_cell(str(spec))} | {_cell(meaning)} |")
    return "\n".join(lines)


def render() -> str:
    return f"""# Reason codes

Generated from `app/rules/reason_codes.py`, `app/rules/after_release.py` and `app/error_codes.py` by `sw docs`;
a test keeps this file current.

## Discrepancies (三单对碰) — on every record

A discrepancy names the documents involved, the field (`payment.amountPaid`, `order.orderList[0].totalPrice`),
the expected and the actual value, and a message in Chinese and English. `error` blocks the match (the record
becomes `MISMATCHED` once all three documents are present); `warning` informs. Amounts compare to the cent
(N19,5 values rounded half-up to 0.01) with a tolerance of `SW_AMOUNT_TOLERANCE` (default 0). Names, phones and
addresses compare exactly after trimming surrounding whitespace; ID numbers ignore letter case (the check
character `X`). Currency is the one fixed value that intake accepts when it differs (any 3-digit code) so that
the record, not only the sender, shows `CURRENCY_NOT_CNY`.

{discrepancy_table()}

## Declaration refusals — the record's `rejection`

A matched purchase whose inventory (清单, CEB621) cannot be declared as the official schema wants it becomes
`REJECTED` in the declare stage, with the code, our `-9000nn` returnStatus (the spec has none for these) and
the reason in `rejection`; nothing is dispatched and the buyer's quota is not used
(`app/rules/inventory.py`). The single and annual limits refuse the same way with the spec's codes
(`SINGLE_LIMIT_EXCEEDED` -621005, `ANNUAL_QUOTA_EXCEEDED` -621018, [tax.md](tax.md)).

{refusal_table()}

## Cancel and return refusals (撤销 CEB623, 退货 CEB625)

A cancel or return the single window refuses before customs sees it (`app/rules/after_release.py`): the
problem's `code`, its HTTP status, and the `-623xxx` / `-625xxx` returnStatus a CEB624 / CEB626 receipt of the
XML door carries for it (the spec reserves those ranges for cancels and returns; `-625209` and `-625010` are
its own). Customs' own refusals of a request it was sent come back as `100` with the reason in `returnInfo`.

{after_release_table()}

## Rejections — problem+json `code` on 4xx/5xx answers

Every error answer is RFC 9457 `application/problem+json` with `type`, `title`, `status`, `detail`, a stable
`code`, field `errors` where fields are at fault, and `cebReturnStatus` where the CEB spec has a negative
receipt code for the same rejection.

{error_table()}
"""


def write() -> Path:
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(render(), encoding="utf-8")
    return DOC_PATH
