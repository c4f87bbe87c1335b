"""The XML-DSig profile (app/ceb/signature.py): interoperable with signxml for RSA both ways, and strict about
what it takes — anything but one enveloped, whole-document, C14N 1.0 signature at the root is refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from lxml import etree
from signxml import XMLSigner, XMLVerifier, methods

from app.ceb import safe_xml, signature
from app.ceb.signature import DS_NS, read_signature
from tests.ceb.conftest import ceb, message
from tests.factories import purchase
from tests.signing import identity, serialize, sign

_DS = "{" + DS_NS + "}"


def _message() -> bytes:
    return message("order", [ceb(purchase()[0])])


def test_signxml_signatures_verify_here() -> None:
    key, certificate = identity("RSA", "interop")
    signer = XMLSigner(
        method=methods.enveloped,
        signature_algorithm="rsa-sha256",
        digest_algorithm="sha256",
        c14n_algorithm=signature.C14N_10,
    )
    signed = signer.sign(safe_xml.parse(_message()), key=key.to_pem(), cert=certificate.pem().decode())
    found = read_signature(safe_xml.parse(etree.tostring(signed)))
    assert found is not None
    assert found.problem is None
    assert found.verified_by(certificate.public_key)


def test_our_signatures_verify_with_signxml() -> None:
    key, certificate = identity("RSA", "interop")
    verified = XMLVerifier().verify(sign(_message(), key, certificate), x509_cert=certificate.pem().decode())
    assert etree.QName(verified.signed_xml).localname == "CEB311Message"


def test_whitespace_after_the_signature_is_kept_by_the_enveloped_transform() -> None:
    """The text after ds:Signature belongs to the root, not to the signature: a signer that put the signature
    before the root's last line break signed that line break."""
    key, certificate = identity("SM2", "whitespace")
    root = safe_xml.parse(_message())
    root[-1].tail = "\n"
    signature.sign(root, key, certificate)
    signed = root[-1]
    root[-2].tail, signed.tail = None, "\n"  # the line break now after the signature, where Java signers leave it
    found = read_signature(safe_xml.parse(serialize(root)))
    assert found is not None
    assert found.verified_by(certificate.public_key)


def _refused(change: Callable[[etree._Element], None]) -> str:
    key, certificate = identity("SM2", "profile")
    root = safe_xml.parse(sign(_message(), key, certificate))
    change(root)
    found = read_signature(safe_xml.parse(serialize(root)))
    assert found is not None
    assert found.problem is not None
    assert not found.verified_by(certificate.public_key)
    return found.problem


def _set(path: str, name: str, value: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        element = root.find(f".//{_DS}{path}")
        assert element is not None
        element.set(name, value)

    return change


def _second_reference(root: etree._Element) -> None:
    reference = root.find(f".//{_DS}Reference")
    assert reference is not None
    reference.addnext(etree.fromstring(etree.tostring(reference)))  # noqa: TID251 - our own bytes


def _second_signature(root: etree._Element) -> None:
    root.append(etree.fromstring(etree.tostring(root[-1])))  # noqa: TID251 - our own bytes


def _object(root: etree._Element) -> None:
    root[-1].append(root.makeelement(_DS + "Object"))


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (_set("Reference", "URI", "#order"), 'URI must be ""'),
        (_set("CanonicalizationMethod", "Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#"), "Canonicalization"),
        (_set("SignatureMethod", "Algorithm", "http://www.w3.org/2000/09/xmldsig#dsa-sha1"), "SignatureMethod"),
        (_set("DigestMethod", "Algorithm", "http://www.w3.org/2001/04/xmlenc#sha512"), "DigestMethod"),
        (_set("Transform", "Algorithm", "http://www.w3.org/TR/1999/REC-xpath-19991116"), "transforms"),
        (_second_reference, "one Reference"),
        (_second_signature, "2 ds:Signature"),
        (_object, "nothing else"),
    ],
)
def test_anything_outside_the_profile_is_refused(change: Callable[[etree._Element], None], expected: str) -> None:
    assert expected in _refused(change)


def test_an_unsigned_message_has_no_signature() -> None:
    assert read_signature(safe_xml.parse(_message())) is None
