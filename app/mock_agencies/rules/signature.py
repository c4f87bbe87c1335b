"""Mock customs: the signed CEB621 (``inventoryMessage``) must carry a signature that verifies with the single
window's certificate (-621029 签名验证失败), and say what the package's inventory says (-621028 加签数据比对失败).

Pure: the XML is read with the one hardened parser, the signature checked with ``app.ceb.signature``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.ceb import safe_xml
from app.ceb.kinds import CEB_NS
from app.ceb.signature import read_signature
from app.crypto.certificates import CertificateInfo, fingerprint
from app.mock_agencies.rules.common import part, text

_P = "{" + CEB_NS + "}"
# The head fields customs compares between the signed list and the declaration it was sent.
COMPARED = ("guid", "orderNo", "ebpCode", "ebcCode", "logisticsNo", "buyerIdNumber", "agentCode")


def signature_problems(package: Mapping[str, Any], certificate: CertificateInfo) -> list[str]:
    """Why the signed CEB621 of ``package`` is not acceptable; empty when it is."""
    message = package.get("inventoryMessage")
    if not isinstance(message, str) or not message:
        return ["-621029 清单未加签 (the CEB621 is not signed: inventoryMessage is missing)"]
    try:
        root = safe_xml.parse(message.encode())
    except safe_xml.XmlRejected as exc:
        return [f"-621029 加签清单无法解析 (the signed CEB621 cannot be read: {exc})"]
    signature = read_signature(root)
    if signature is None:
        return ["-621029 清单未加签 (the CEB621 has no ds:Signature)"]
    if signature.problem is not None:
        return [f"-621029 签名验证失败 ({signature.problem})"]
    if fingerprint(signature.certificate) != certificate.fingerprint:
        return ["-621029 签名证书不是单一窗口的证书 (signed with another certificate than the single window's)"]
    if not signature.verified_by(certificate.public_key):
        return ["-621029 签名验证失败 (the signature does not verify)"]
    head = root.find(f"{_P}Inventory/{_P}InventoryHead")
    inventory = part(package, "inventory")
    differing = [
        name
        for name in COMPARED
        if text(head.findtext(_P + name) if head is not None else None) != text(inventory.get(name))
    ]
    if differing:
        return [f"-621028 加签数据比对失败 (the signed CEB621 differs from the declaration: {', '.join(differing)})"]
    return []
