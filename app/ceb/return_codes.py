"""The ``returnStatus`` values we put in receipts (CEB312 / 412 / 512 and CEB900), and why.

* ``2`` — stored (spec §3.1 "being declared at E-port"); an idempotent replay answers the same.
* A business rejection the spec has a negative code for (§3.2) gets that code: the intake service puts it in
  ``DomainError.extra["cebReturnStatus"]`` (e.g. ``-301010`` duplicate order number with other content).
* A rejection the spec has no code for gets one of ours, ``-9000nn``. The spec's negative codes are grouped by
  message (``-301xxx`` orders, ``-401xxx`` payments, ``-504xxx`` waybills, ``-621xxx`` lists, ``-800xxx``
  warehouse); ``-900xxx`` belongs to none of them, so our codes never reuse a number with another meaning.
* The stable problem ``code`` of the same rejection in the JSON API is always written first in ``returnInfo``,
  in brackets: ``[DUPLICATE_DIFFERENT_CONTENT] A order with this key …``.
* A whole message that cannot be read gets a CEB900 with ``-1`` (not well-formed, a DOCTYPE, XInclude, an unknown
  encoding, or not a message accepted here) or ``-2`` (fails our XSD) — the spec's DXP table 7-1 numbers
  ``0001`` "format error" and ``0002`` "fails schema", made negative as CEB900 requires.
"""

from __future__ import annotations

from typing import Any

STORED = "2"  # accepted: received and stored, the business result follows (电子口岸申报中)
BUSINESS_STORED = "120"  # the business result: checked and stored (入库)
REFUSED = "100"  # the business result: refused (退单); in XML the refusal's negative code stands in its place
FORMAT_ERROR = "-1"
SCHEMA_ERROR = "-2"
UNKNOWN_REJECTION = "-900000"

# Whole-message codes (CEB900): problem code -> (returnStatus, meaning).
MESSAGE_CODES: dict[str, tuple[str, str]] = {
    "XML_NOT_WELL_FORMED": (FORMAT_ERROR, "The body is not well-formed XML, or its encoding is unknown."),
    "XML_DOCTYPE_FORBIDDEN": (FORMAT_ERROR, "The message has a DOCTYPE (refused before anything is resolved)."),
    "XML_XINCLUDE_FORBIDDEN": (FORMAT_ERROR, "The message has an XInclude element (never processed)."),
    "MESSAGE_TYPE_NOT_ACCEPTED": (
        FORMAT_ERROR,
        "The root element is not CEB311Message, CEB411Message or CEB511Message in the namespace "
        "http://www.chinaport.gov.cn/ceb.",
    ),
    "XML_SCHEMA_INVALID": (SCHEMA_ERROR, "The message breaks our XSD; returnInfo names the line and the rule."),
    "COP_CODE_MISMATCH": (
        "-900010",
        "BaseTransfer/copCode is not the enterprise of the X-API-Key (HTTP 403).",
    ),
    # Signatures (app/rules/signatures.py): the DXP security codes (spec table 7-1: 1001 invalid signature,
    # 1002 expired, 1004 signature does not match the data) made negative, and ours where it has none.
    "XML_SIGNATURE_MALFORMED": (
        "-1001",
        'The ds:Signature is not the E-port profile: one signature, the last child of the root, Reference URI="" '
        "with the enveloped transform, C14N 1.0, a known algorithm, one X509Certificate (HTTP 400).",
    ),
    "XML_SIGNATURE_MISMATCH": (
        "-1004",
        "The digest or the signature value does not verify: the message was changed after signing, or signed "
        "with another key than the certificate's (HTTP 403).",
    ),
    "XML_CERTIFICATE_EXPIRED": (
        "-1002",
        "The certificate was not valid at a record's appTime (HTTP 403).",
    ),
    "XML_SIGNATURE_REQUIRED": (
        "-900021",
        "The sender's signature policy is `required` and the message has no ds:Signature (HTTP 403).",
    ),
    "XML_CERTIFICATE_NOT_FILED": (
        "-900022",
        "The certificate in KeyInfo is not filed for BaseTransfer/copCode: unknown, or another enterprise's "
        "(HTTP 403).",
    ),
    "XML_CERTIFICATE_REVOKED": ("-900023", "The certificate in KeyInfo was revoked (HTTP 403)."),
}

# Record-level codes of ours, for rejections the spec has no negative code for: problem code -> returnStatus.
RECORD_CODES: dict[str, str] = {
    "VALIDATION_FAILED": "-900001",
    "ENTERPRISE_NOT_FILED": "-900002",
    "ENTERPRISE_ROLE_MISSING": "-900003",
    "NOT_AUTHORISED_FOR_ENTERPRISE": "-900004",
    "ENTERPRISE_SUSPENDED": "-900005",
    "DOCUMENT_NOT_FOUND": "-900006",
    "RECORD_ALREADY_DECLARED": "-900007",
    "STALE_MESSAGE": "-900008",
    "DOCUMENT_CANCELLED": "-900009",
    "PURCHASE_ARCHIVED": "-900013",
}

RETURN_INFO_MAX = 1000
MESSAGE_RETURN_INFO_MAX = 5000


def record_status(code: str, extra: dict[str, Any]) -> str:
    """The returnStatus of a rejected record: the spec's code where intake gave one, else ours."""
    spec = extra.get("cebReturnStatus")
    if isinstance(spec, str) and spec:
        return spec
    return RECORD_CODES.get(code, UNKNOWN_REJECTION)


def return_info(code: str, detail: str, problems: list[str] | None = None, limit: int = RETURN_INFO_MAX) -> str:
    """``[CODE] detail: problem; problem`` cut to the receipt's length limit."""
    text = f"[{code}] {detail}"
    if problems:
        text += ": " + "; ".join(problems)
    return text if len(text) <= limit else text[: limit - 1] + "…"
