"""Every problem ``code`` the API answers with, for the docs and the OpenAPI description."""

from __future__ import annotations

from app.rules.after_release import AFTER_RELEASE_REFUSALS

API_ERROR_CODES: dict[str, tuple[int, str, str]] = {
    # code: (HTTP status, spec receipt code where one exists, meaning)
    "MALFORMED_BODY": (400, "", "The body is not UTF-8 JSON (or not well-formed)."),
    "TOO_MANY_OBJECTS": (
        400,
        "",
        "A JSON body with more objects and arrays (2,000 a document) or values (20,000) than its documents could hold.",
    ),
    "MALFORMED_URL": (400, "", "The path or query holds a NUL character, or a query parameter is given twice."),
    "UNAUTHENTICATED": (401, "", "No X-API-Key, or a key that is unknown or revoked."),
    "KEY_EXPIRED": (401, "", "The API key's expiry (expiresAt, or the end of a rotation's overlap) has passed."),
    "ADMIN_REQUIRED": (403, "", "Only an admin key may do this."),
    "READ_ONLY_PRINCIPAL": (403, "", "Officials read everything but change nothing (except credit and risk)."),
    "OFFICIAL_REQUIRED": (
        403,
        "",
        "Credit levels, supervision profiles and warnings are handled by officials or admins.",
    ),
    "ENTERPRISE_KEY_REQUIRED": (403, "", "Documents are transmitted with an enterprise's key."),
    "ENTERPRISE_SUSPENDED": (403, "", "The calling enterprise, or the document's enterprise, is suspended."),
    "NOT_AUTHORISED_FOR_ENTERPRISE": (
        403,
        "",
        "The document's enterprise (ebpCode / payCode / logisticsCode) is neither the caller nor delegated to it; "
        "or a goods record's ebcCode is not the caller.",
    ),
    "NOT_FOUND": (404, "", "No such route."),
    "ENTERPRISE_NOT_FOUND": (404, "", "No such enterprise, or not visible to this key."),
    "RECORD_NOT_FOUND": (404, "", "No such record, or not visible to this key."),
    "DOCUMENT_NOT_FOUND": (
        404,
        "-301009 (order)",
        "appType 2/3 for a key that was never stored; or a lookup of a document not visible to this key.",
    ),
    "DECLARATION_NOT_FOUND": (404, "", "The record has no declaration (it is not matched yet), or is not visible."),
    "RECEIPTS_NOT_FOUND": (
        404,
        "",
        "The record has no receipts of this kind that this key may read (a receipt message holds 1..100).",
    ),
    "DISPATCH_NOT_FOUND": (404, "", "No such dispatch."),
    "DISPATCH_NOT_REQUEUEABLE": (409, "", "Only a dead or waiting dispatch can be sent again."),
    "NOTHING_TO_REDISPATCH": (409, "", "The record has no dead dispatch to re-push."),
    "RATE_LIMITED": (
        429,
        "",
        "The enterprise sent more requests of this class (intake or queries) in the window than its limit, or "
        "(public routes, no key) this client or this ID number did; retry after Retry-After seconds. Nothing "
        "of the refused request was stored.",
    ),
    "SIGNATURE_INVALID": (401, "", "An agency callback without a valid webhook signature."),
    "SIGNATURE_STALE": (401, "", "An agency callback whose webhook-timestamp is more than 300 s off."),
    "CALLBACK_INVALID": (422, "", "An agency callback body that is not {recordId, receipts: [...]}."),
    "AGENCY_NOT_FOUND": (404, "", "A callback for an agency this service does not dispatch to."),
    "KEY_NOT_FOUND": (404, "", "No such API key for this enterprise."),
    "DELEGATION_NOT_FOUND": (404, "", "No such delegation granted by this enterprise."),
    "CERTIFICATE_NOT_FOUND": (404, "", "No such certificate filed for this enterprise."),
    "RAW_MESSAGE_NOT_FOUND": (404, "", "No raw message with this id."),
    "COMPLAINT_NOT_FOUND": (404, "", "No such complaint."),
    "WARNING_NOT_FOUND": (404, "", "No such risk warning."),
    "WARNING_ALREADY_HANDLED": (
        409,
        "",
        "The warning was dismissed or escalated already (final), or acknowledged twice.",
    ),
    "GOODS_NOT_FOUND": (404, "", "No goods record (ebcCode, itemNo), or not visible to this key."),
    "SUBSCRIPTION_NOT_FOUND": (404, "", "No such subscription of this enterprise."),
    "DELIVERY_NOT_FOUND": (404, "", "No such delivery of this subscription."),
    "SUBSCRIPTION_URL_REFUSED": (
        422,
        "",
        "A subscription URL that is not http(s) or amqp(s), does not resolve, or resolves to a loopback, "
        "link-local, private, multicast or reserved address (unless SW_WEBHOOK_ALLOW_PRIVATE).",
    ),
    "REPLAY_RANGE_INVALID": (
        422,
        "",
        "A replay needs either a cursor range (after, until) or a time range (since, before).",
    ),
    "METHOD_NOT_ALLOWED": (405, "", "The route does not take this method."),
    "KEY_NOT_ROTATABLE": (409, "", "A revoked or expired key cannot be rotated; issue a new key."),
    "KEY_EXPIRY_PAST": (422, "", "A key's expiresAt that is not in the future."),
    "ENTERPRISE_EXISTS": (409, "", "The enterprise code is already filed."),
    "DELEGATION_CONFLICT": (409, "", "The same delegation was created concurrently; send the request again."),
    "CERTIFICATE_EXISTS": (409, "", "The certificate is already filed (for this enterprise, or for another one)."),
    "CALLBACK_NOT_APPLICABLE": (
        409,
        "",
        "A callback for a record that is not declared, or a dispatch it does not have.",
    ),
    "GOODS_EXISTS": (
        409,
        "",
        "The seller already filed this itemNo; change it with PATCH /api/v1/goods/{ebcCode}/{itemNo}.",
    ),
    "DUPLICATE_DIFFERENT_CONTENT": (
        409,
        "-301010 / -401007 / -504012",
        "Same natural key, different content, appType 1: send changes with appType 2.",
    ),
    "RECORD_ALREADY_DECLARED": (
        409,
        "-301011 / -401008",
        "The record is declared; its documents can no longer be changed or cancelled.",
    ),
    "PURCHASE_ARCHIVED": (
        409,
        "",
        "A document of a purchase completed and pruned by retention (sw prune-purchases): it is not taken again.",
    ),
    "STALE_MESSAGE": (409, "-301014 / -401012", "A change whose appTime is older than the stored version."),
    "DOCUMENT_CANCELLED": (409, "", "appType 2 for a cancelled document: send it again with appType 1."),
    "PAYLOAD_TOO_LARGE": (413, "", "The body is larger than SW_MAX_BODY_BYTES (10 MiB by default)."),
    "UNSUPPORTED_MEDIA_TYPE": (
        415,
        "",
        "The content type is not accepted here (JSON routes take application/json).",
    ),
    "VALIDATION_FAILED": (422, "", "Fields break the CEB field tables; `errors` lists each by path."),
    "TOO_MANY_MEMBERS": (422, "", "An object of a document has more than 200 members (a head has about 40)."),
    "BATCH_SIZE": (422, "", "A batch holds 1..100 documents."),
    "ENTERPRISE_NOT_FILED": (
        422,
        "",
        "The document, delegation or goods record names an enterprise code that is not filed.",
    ),
    "ENTERPRISE_ROLE_MISSING": (
        422,
        "",
        "A named enterprise is filed without the role the field needs (ebpCode → platform, ebcCode → seller, "
        "payCode → payment, logisticsCode → logistics).",
    ),
    "DELEGATION_TO_SELF": (422, "", "An enterprise cannot delegate to itself."),
    "CERTIFICATE_UNREADABLE": (
        422,
        "",
        "Not one PEM X.509 certificate with an SM2 or RSA (≥ 2048 bits) public key.",
    ),
    "CERTIFICATE_EXPIRED": (422, "", "The certificate's notAfter is past (or before its notBefore)."),
    "INVALID_CURSOR": (422, "", "The pagination cursor was not issued by this service."),
    "PROFILE_OUT_OF_BOUNDS": (
        422,
        "",
        "Supervision profiles outside GACC's bounds: AEO ≤ 20 % of regular, 失信 ≥ 80 %, better never stricter.",
    ),
    "OUTGOING_MESSAGE_INVALID": (
        500,
        "",
        "A CEB message this service produced breaks its own XSD (a bug, counted in sw_outgoing_invalid_total); "
        "it was not sent.",
    ),
    "SIGNING_NOT_CONFIGURED": (
        503,
        "",
        "The service has no signing key (SW_SIGNING_* unset and SW_SIGNING_DEV_KEYS false): it cannot render a "
        "signed CEB621.",
    ),
    "DATABASE_UNAVAILABLE": (
        503,
        "",
        "The database is unreachable; nothing was stored; retry after Retry-After.",
    ),
    "READ_REPLICA_UNAVAILABLE": (
        503,
        "",
        "A read meant for the replica (statistics, the feed, an official's search) while the replica is further "
        "behind than SW_READ_MAX_LAG_S or unreachable, and SW_READ_FALLBACK is off; retry after Retry-After.",
    ),
    # Cancels (CEB623) and returns (CEB625): app/rules/after_release.py, with the spec's -623xxx / -625xxx codes.
    **{r.code: (r.http_status, r.ceb_return_status, f"{r.en} ({r.zh})") for r in AFTER_RELEASE_REFUSALS.values()},
    "REQUEST_NOT_FOUND": (404, "", "No such cancel or return request, or not visible to this key."),
}
