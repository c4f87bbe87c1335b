"""The signature check of a CEB XML message at the door: the sender's policy and the filed certificate the
message names, read in one query, then the pure decision of ``app/rules/signatures.py``.

Runs after the message was read (so its signature was detached and digested with the tree its records came
from) and after ``copCode`` was matched with the key, before anything is stored: a refused message leaves no
trace but its CEB900 answer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from app.ceb.codec import MessageRejected, ParsedMessage
from app.ceb.signature import EnvelopedSignature
from app.crypto.certificates import fingerprint
from app.crypto.keys import Algorithm, PublicKey
from app.models import Certificate, Enterprise
from app.rules.signatures import DEFAULT_POLICY, FiledCertificate, signature_refusal
from app.schemas.ceb_types import CHINA_TZ


async def check_message_signature(engine: AsyncEngine, message: ParsedMessage, sender: str) -> MessageRejected | None:
    """The CEB900 refusal of a message whose signature does not let it in, else None."""
    return await check_signature(
        engine, message.signature, sender, message.records, message_type=message.kind.message, guid=message.guid
    )


async def check_signature(
    engine: AsyncEngine,
    signature: EnvelopedSignature | None,
    sender: str,
    records: Sequence[Mapping[str, Any]],
    *,
    message_type: str,
    guid: str,
) -> MessageRejected | None:
    """The same check for any message read with its signature detached (CEB623 / CEB625 too)."""
    policy, certificate = await _policy_and_certificate(engine, sender, signature)
    refusal = signature_refusal(policy, signature, sender, certificate, _app_times(records))
    if refusal is None:
        return None
    return MessageRejected(
        refusal.code,
        refusal.detail,
        message_type=message_type,
        message_guid=guid,
        http_status=refusal.http_status,
    )


async def _policy_and_certificate(
    engine: AsyncEngine, sender: str, signature: EnvelopedSignature | None
) -> tuple[str, FiledCertificate | None]:
    wanted = fingerprint(signature.certificate) if signature is not None and signature.certificate else ""
    query = (
        select(
            Enterprise.signature_policy,
            Certificate.id,
            Certificate.enterprise_code,
            Certificate.serial_number,
            Certificate.algorithm,
            Certificate.public_key,
            Certificate.not_before,
            Certificate.not_after,
            Certificate.revoked_at,
        )
        .select_from(Enterprise)
        .outerjoin(Certificate, Certificate.fingerprint == wanted)
        .where(Enterprise.code == sender)
    )
    async with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            # One read, no transaction (as the key check does: app/deps.py).
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        row = (await conn.execute(query)).first()
    if row is None:  # the sender was checked by its key a moment ago; a concurrent removal is not possible today
        return DEFAULT_POLICY, None
    policy = row[0]
    if row.id is None:
        return policy, None
    return policy, FiledCertificate(
        enterprise_code=row.enterprise_code,
        serial_number=row.serial_number,
        public_key=PublicKey(cast(Algorithm, row.algorithm), bytes(row.public_key)),
        not_before=row.not_before,
        not_after=row.not_after,
        revoked_at=row.revoked_at,
    )


def _app_times(records: Sequence[Mapping[str, Any]]) -> list[datetime]:
    """Each record's appTime (C14, China time); one that cannot be read is left to the record's validation."""
    times = []
    for record in records:
        try:
            times.append(datetime.strptime(str(record.get("appTime")), "%Y%m%d%H%M%S").replace(tzinfo=CHINA_TZ))
        except ValueError:
            continue
    return times
