"""XML-DSig on CEB messages (ceb-messages.md §6): read and check an enveloped ``ds:Signature``, and sign.

The one profile the E-port uses, and nothing else: a single ``ds:Signature``, the last child of the message's
root; ``Reference URI=""`` (the whole document) with the ``enveloped-signature`` transform (optionally followed
by inclusive C14N 1.0); inclusive C14N 1.0 without comments for ``SignedInfo``; the signer's certificate in
``KeyInfo/X509Data/X509Certificate``. Algorithms: SM2-SM3 (``http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3``
with the ``…#sm3`` digest), RSA-SHA1 and RSA-SHA256 with SHA-1 or SHA-256 digests.

Why not a general XML-DSig library: ``signxml`` (used by our tests to check interoperability for RSA) knows
no SM2 and takes no algorithm of ours; a general processor also brings what we refuse on purpose (ID
references, XPath and XSLT transforms, ``ds:Object``, several references). The canonical forms come from
libxml2 through lxml and every primitive from ``app.crypto``; what is here is the profile.

**Signature wrapping.** The reference is the whole document, the signature must sit at the root, and it must
be the only one in the message; the digest is computed over the very tree the records are then read from
(``read_signature`` detaches the signature from it). A copy of a signed order wrapped anywhere else — in
``ExtendMessage``, in a ``ds:Object`` — is either not covered by the signature or makes a second one, and is
refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from lxml import etree

from app.crypto.certificates import CertificateInfo
from app.crypto.keys import Algorithm, HashName, PrivateKey, PublicKey

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
_DS = "{" + DS_NS + "}"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SM2_SM3 = "http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3"
SM3 = "http://www.chinaport.gov.cn/2022/04/xmldsig#sm3"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"

SIGNATURE_METHODS: dict[str, tuple[Algorithm, HashName]] = {
    SM2_SM3: ("SM2", "sm3"),
    RSA_SHA1: ("RSA", "sha1"),
    RSA_SHA256: ("RSA", "sha256"),
}
DIGEST_METHODS: dict[str, HashName] = {SM3: "sm3", SHA1: "sha1", SHA256: "sha256"}
# What we sign with, per key algorithm.
_SIGN_WITH: dict[Algorithm, tuple[str, str]] = {"SM2": (SM2_SM3, SM3), "RSA": (RSA_SHA256, SHA256)}


def digest(data: bytes, hash_name: HashName) -> bytes:
    if hash_name == "sm3":
        sm3 = hashes.Hash(hashes.SM3())
        sm3.update(data)
        return sm3.finalize()
    return hashlib.new(hash_name, data).digest()


def canonical(element: etree._Element) -> bytes:
    """Inclusive C14N 1.0 without comments (namespaces in scope from the ancestors included)."""
    return bytes(etree.tostring(element, method="c14n", exclusive=False, with_comments=False))


@dataclass(frozen=True)
class EnvelopedSignature:
    """What ``read_signature`` found. ``problem`` says why the signature is not one we can check (then the
    other fields are empty); else the signature holds if ``digest_matches`` and the key of the certificate
    verifies ``signature_value`` over ``signed_info``."""

    problem: str | None = None
    algorithm: Algorithm | None = None
    hash_name: HashName | None = None
    signed_info: bytes = b""
    signature_value: bytes = b""
    certificate: bytes = b""  # DER, from KeyInfo
    digest_matches: bool = False

    def verified_by(self, key: PublicKey) -> bool:
        """True when the signature is intact and ``key`` (the filed certificate's) made it."""
        if self.problem is not None or not self.digest_matches or self.hash_name is None:
            return False
        if key.algorithm != self.algorithm:
            return False
        return key.verify(self.signed_info, self.signature_value, self.hash_name)


class _NotOurProfile(Exception):
    pass


_SIGNATURE = ("SignedInfo", "SignatureValue", "KeyInfo")
_SIGNED_INFO = ("CanonicalizationMethod", "SignatureMethod", "Reference")


def read_signature(root: etree._Element) -> EnvelopedSignature | None:
    """The message's signature, checked against the profile and its digest computed; None when unsigned.

    The signature element is detached from ``root`` (its tail text kept, as the enveloped transform wants),
    so what is read from ``root`` afterwards is exactly what was digested."""
    found = list(root.iter(_DS + "Signature"))
    if not found:
        return None
    if len(found) > 1:
        return EnvelopedSignature(problem=f"{len(found)} ds:Signature elements; a message carries one")
    signature = found[0]
    if signature.getparent() is not root:
        return EnvelopedSignature(problem="the ds:Signature must be a child of the message's root element")
    try:
        parts = _read_parts(signature)
    except _NotOurProfile as exc:
        return EnvelopedSignature(problem=str(exc))
    signed_info, algorithm, hash_name, digest_name, expected, value, certificate = parts
    signed_info_bytes = canonical(signed_info)  # in place: the root's namespaces are in scope
    _detach(signature)
    actual = digest(canonical(root), digest_name)
    return EnvelopedSignature(
        algorithm=algorithm,
        hash_name=hash_name,
        signed_info=signed_info_bytes,
        signature_value=value,
        certificate=certificate,
        digest_matches=hmac.compare_digest(actual, expected),
    )


def _read_parts(
    signature: etree._Element,
) -> tuple[etree._Element, Algorithm, HashName, HashName, bytes, bytes, bytes]:
    if [c.tag for c in signature] != [_DS + name for name in _SIGNATURE]:
        raise _NotOurProfile("ds:Signature must hold SignedInfo, SignatureValue and KeyInfo (and nothing else)")
    signed_info, signature_value, key_info = signature
    if [c.tag for c in signed_info] != [_DS + name for name in _SIGNED_INFO]:
        raise _NotOurProfile("SignedInfo must hold CanonicalizationMethod, SignatureMethod and one Reference")
    canonicalization, signature_method, reference = signed_info
    if _algorithm(canonicalization) != C14N_10:
        raise _NotOurProfile(f"CanonicalizationMethod must be {C14N_10}")
    method = SIGNATURE_METHODS.get(_algorithm(signature_method) or "")
    if method is None:
        raise _NotOurProfile(f"SignatureMethod must be one of {', '.join(SIGNATURE_METHODS)}")
    if reference.get("URI") != "":
        raise _NotOurProfile('Reference URI must be "" (the whole message)')
    transforms = [_algorithm(t) for t in reference.iterfind(_DS + "Transforms/" + _DS + "Transform")]
    if transforms not in ([ENVELOPED], [ENVELOPED, C14N_10]):
        raise _NotOurProfile(f"the Reference's transforms must be {ENVELOPED} (then at most {C14N_10})")
    digest_name = DIGEST_METHODS.get(_algorithm(reference.find(_DS + "DigestMethod")) or "")
    if digest_name is None:
        raise _NotOurProfile(f"DigestMethod must be one of {', '.join(DIGEST_METHODS)}")
    expected = _base64(reference.findtext(_DS + "DigestValue"), "DigestValue")
    certificates = key_info.findall(_DS + "X509Data/" + _DS + "X509Certificate")
    if len(certificates) != 1:
        raise _NotOurProfile("KeyInfo must carry one X509Data/X509Certificate, the signer's")
    certificate = _base64(certificates[0].text, "X509Certificate")
    value = _base64(signature_value.text, "SignatureValue")
    return signed_info, method[0], method[1], digest_name, expected, value, certificate


def _algorithm(element: etree._Element | None) -> str | None:
    return None if element is None else element.get("Algorithm")


def _base64(text: str | None, name: str) -> bytes:
    try:
        value = base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise _NotOurProfile(f"{name} is not Base64") from None
    if not value:
        raise _NotOurProfile(f"{name} is empty")
    return value


def _detach(element: etree._Element) -> None:
    """Remove ``element``, keeping its tail text: the enveloped transform removes the element, not the text
    after it (lxml's ``remove`` would take both)."""
    parent = element.getparent()
    assert parent is not None
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def sign(
    root: etree._Element, key: PrivateKey, certificate: CertificateInfo, methods: tuple[str, str] | None = None
) -> None:
    """Append an enveloped ``ds:Signature`` over the whole of ``root`` (which must not have one yet).

    ``methods``: (SignatureMethod, DigestMethod) URIs; by default SM2-SM3 / SM3 for an SM2 key and RSA-SHA256 /
    SHA-256 for an RSA key (RSA-SHA1 / SHA-1 only when asked for: peers that still use it, and tests)."""
    signature_method, digest_method = methods or _SIGN_WITH[key.algorithm]
    if SIGNATURE_METHODS[signature_method][0] != key.algorithm or digest_method not in DIGEST_METHODS:
        raise ValueError(f"{signature_method} / {digest_method} cannot be used with an {key.algorithm} key")
    hash_name = SIGNATURE_METHODS[signature_method][1]
    digest_value = digest(canonical(root), DIGEST_METHODS[digest_method])
    signature = etree.SubElement(root, _DS + "Signature", nsmap={"ds": DS_NS})
    signed_info = etree.SubElement(signature, _DS + "SignedInfo")
    etree.SubElement(signed_info, _DS + "CanonicalizationMethod", Algorithm=C14N_10)
    etree.SubElement(signed_info, _DS + "SignatureMethod", Algorithm=signature_method)
    reference = etree.SubElement(signed_info, _DS + "Reference", URI="")
    transforms = etree.SubElement(reference, _DS + "Transforms")
    etree.SubElement(transforms, _DS + "Transform", Algorithm=ENVELOPED)
    etree.SubElement(reference, _DS + "DigestMethod", Algorithm=digest_method)
    etree.SubElement(reference, _DS + "DigestValue").text = base64.b64encode(digest_value).decode()
    value = etree.SubElement(signature, _DS + "SignatureValue")
    key_info = etree.SubElement(signature, _DS + "KeyInfo")
    etree.SubElement(key_info, _DS + "KeyName").text = certificate.serial_number
    x509_data = etree.SubElement(key_info, _DS + "X509Data")
    etree.SubElement(x509_data, _DS + "X509Certificate").text = base64.b64encode(certificate.der).decode()
    value.text = base64.b64encode(key.sign(canonical(signed_info), hash_name)).decode()
