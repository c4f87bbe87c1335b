"""The one place that parses XML: a hardened lxml parser, and XSDs loaded from our own local files.

Everything else reads XML through :func:`parse` (ruff TID251 bans the other entry points). The parser is
built explicitly, never from lxml's defaults (CVE-2026-41066 showed those defaults can change):

* ``resolve_entities=False``, ``load_dtd=False``, ``dtd_validation=False``, ``no_network=True`` — no entity
  is expanded and nothing is fetched, so billion laughs, quadratic blow-up, external entities and external
  DTDs have nothing to work with; a document with a DOCTYPE is refused outright (CEB messages never have one);
* ``huge_tree=False`` — libxml2's own limits stay on (depth 256, text nodes of at most 10,000,000 bytes);
* ``remove_pis=True``, ``remove_comments=True`` — processing instructions and comments are dropped, so a
  comment inside a value cannot split it;
* XInclude is never processed (nothing calls ``xinclude()``), and a document with an XInclude element is
  refused all the same.

The body size limit (``app/body_limit.py``) bounds the input before any of this runs. lxml parser and
schema objects are kept per thread, as lxml advises.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

XSD_DIR = Path(__file__).resolve().parent / "xsd"
_XINCLUDE_ANY = "{http://www.w3.org/2001/XInclude}*"
_DOCTYPE_MARKERS = tuple("<!DOCTYPE".encode(encoding) for encoding in ("ascii", "utf-16-le", "utf-16-be"))


@dataclass(frozen=True)
class XmlProblem:
    """One reason a document was refused, with the line it was found on (when known)."""

    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class XmlRejected(Exception):
    """The bytes are not a well-formed XML document we are willing to read."""

    def __init__(self, kind: str, problems: list[XmlProblem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.kind = kind  # "not_well_formed" | "doctype" | "xinclude"
        self.problems = problems


_local = threading.local()


def _parser() -> etree.XMLParser:
    parser: etree.XMLParser | None = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_pis=True,
            remove_comments=True,
            remove_blank_text=False,
            strip_cdata=True,
            # collect_ids stays at its default on purpose: collect_ids=False sets libxml2's
            # loadsubset flag (XML_SKIP_IDS), which makes it load the external DTD subset from disk.
        )
        _local.parser = parser
    return parser


def parse(body: bytes) -> etree._Element:
    """Parse a complete document from bytes (the encoding comes from the BOM or the XML declaration)."""
    try:
        root = etree.fromstring(body, _parser())
    except etree.XMLSyntaxError as exc:
        # libxml2 may stop inside a DOCTYPE (e.g. its entity-amplification guard on billion laughs): say so.
        kind = "doctype" if any(marker in body for marker in _DOCTYPE_MARKERS) else "not_well_formed"
        raise XmlRejected(kind, [XmlProblem(exc.lineno or None, _clean(exc.msg))]) from None
    except (ValueError, LookupError) as exc:  # e.g. an encoding libxml2 does not know
        raise XmlRejected("not_well_formed", [XmlProblem(None, _clean(str(exc)))]) from None
    docinfo: Any = root.getroottree().docinfo  # the stubs lack doctype / internalDTD
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlRejected("doctype", [XmlProblem(1, "a DOCTYPE is not allowed in a CEB message")])
    for include in root.iter(_XINCLUDE_ANY):
        # Never processed anyway; refused so that nothing downstream is ever tempted to.
        line: Any = include.sourceline
        raise XmlRejected("xinclude", [XmlProblem(line, "XInclude is not allowed in a CEB message")])
    return root


def _clean(message: str) -> str:
    # libxml2 appends "(<string>, line N)": the line is reported separately.
    return message.split(" (<string>", 1)[0].strip()


_COMPILING = threading.Lock()


_XS = "{http://www.w3.org/2001/XMLSchema}"
_DS_NS = "http://www.w3.org/2000/09/xmldsig#"


def schema(file_name: str, *, signature_optional: bool = False) -> etree.XMLSchema:
    """The compiled XSD ``xsd/<file_name>`` (our own files only; ``xs:include`` stays in that folder).

    ``signature_optional``: the same schema with its ``ds:Signature`` element made optional (0..1) and
    nothing else changed — for checking a message before it is signed (the CEB621 rendering)."""
    cache: dict[tuple[str, bool], etree.XMLSchema] | None = getattr(_local, "schemas", None)
    if cache is None:
        cache = _local.schemas = {}
    compiled = cache.get((file_name, signature_optional))
    if compiled is None:
        path = (XSD_DIR / file_name).resolve()
        if path.parent != XSD_DIR or not path.is_file():
            raise FileNotFoundError(f"no XSD {file_name} in {XSD_DIR}")
        # One compilation at a time in the process: libxml2 sets up its schema type tables on first use, and
        # threads compiling at once were seen to fail with "Internal error: xmlSchemaPValAttrNodeValue".
        with _COMPILING:
            tree = etree.parse(str(path), _parser())  # keeps the file's URL, so xs:include resolves beside it
            if signature_optional:
                for particle in tree.iter(_XS + "any", _XS + "element"):
                    if _is_signature(particle):
                        particle.set("minOccurs", "0")
            compiled = cache[(file_name, signature_optional)] = etree.XMLSchema(tree)
    return compiled


def _is_signature(particle: etree._Element) -> bool:
    """The schema's ``ds:Signature`` particle: a reference to the XML-DSig ``Signature`` element, or a
    wildcard of the XML-DSig namespace."""
    if particle.tag == _XS + "any":
        return particle.get("namespace") == _DS_NS
    prefix, _, name = (particle.get("ref") or "").rpartition(":")
    return name == "Signature" and particle.nsmap.get(prefix or None) == _DS_NS


def validate(
    root: etree._Element, file_name: str, max_problems: int = 5, *, signature_optional: bool = False
) -> list[XmlProblem]:
    """The XSD problems of ``root`` (empty when valid), each with its line."""
    compiled = schema(file_name, signature_optional=signature_optional)
    if compiled.validate(root):
        return []
    entries: list[Any] = list(compiled.error_log)  # type: ignore[call-overload]  # the stubs omit __iter__
    return [XmlProblem(entry.line or None, entry.message) for entry in entries[:max_problems]]
