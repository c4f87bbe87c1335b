"""Conformance by construction: every CEB message we produce is checked against our XSDs before it leaves.

The codec's writers (``app/ceb/codec.py``) call :func:`check` on the finished element tree, before it is
serialised, for every message we send or show: the CEB312 / 412 / 512 / 622 receipts, the CEB900, the
CEB311 / 411 / 511 renderings of stored documents and the CEB621 inventory (as rendered, and as handed to the
agencies). Our XSDs carry the official facets, so a message that breaks them is our bug: it is never sent.
:class:`OutgoingMessageInvalid` says which message and which rule; where it happens in a stage with a dead
state (the dispatcher) the item goes there with this reason, on a request it is a 500 problem with the code
``OUTGOING_MESSAGE_INVALID``; either way ``sw_outgoing_invalid_total{message=…}`` counts it on ``/metrics``.

The CEB621 we render is unsigned (signing is a separate step): it is checked against ``CEB621.xsd`` with
only the ``ds:Signature`` requirement set aside (``signature_optional``); a signed CEB621 is checked against
the schema as it stands. Compiled schemas are cached per thread (``safe_xml.schema``): a check costs a few
tens of microseconds for a receipt and about a hundred for an inventory (docs/xml.md).
"""

from __future__ import annotations

import threading
from collections import Counter

from lxml import etree

from app.ceb import safe_xml
from app.ceb.kinds import XSD_BY_MESSAGE
from app.errors import DomainError

_counts: Counter[str] = Counter()
_counting = threading.Lock()


class OutgoingMessageInvalid(DomainError):
    """A message we produced breaks our XSD: a bug made visible; the message was not sent."""

    status, code, title = 500, "OUTGOING_MESSAGE_INVALID", "A message this service produced breaks its schema"

    def __init__(self, message: str, xsd: str, problems: list[str]) -> None:
        detail = f"The {message} this service produced breaks {xsd}; it was not sent: " + "; ".join(problems)
        super().__init__(detail[:2000], message=message, problems=problems)
        self.message = message
        self.problems = problems


def check(root: etree._Element, *, signature_optional: bool = False) -> None:
    """Raise :class:`OutgoingMessageInvalid` (and count it) unless ``root`` is valid against its XSD."""
    message = etree.QName(root).localname
    xsd = XSD_BY_MESSAGE.get(message)
    if xsd is None:
        problems = [f"no XSD for {message}"]
        xsd = "our XSDs"
    else:
        problems = [str(p) for p in safe_xml.validate(root, xsd, signature_optional=signature_optional)]
    if problems:
        with _counting:
            _counts[message] += 1
        raise OutgoingMessageInvalid(message, xsd, problems)


def invalid_counts() -> dict[str, int]:
    """Messages refused by :func:`check` in this process, by root element name (every known one, 0 or more)."""
    with _counting:
        return {message: _counts.get(message, 0) for message in sorted({*XSD_BY_MESSAGE, *_counts})}
