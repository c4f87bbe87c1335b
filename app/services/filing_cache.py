"""A short-lived in-process cache of API keys and filed enterprises, so that the request path does not read
the key's row and the enterprises a document names on every request of a busy sender.

An entry lives ``SW_KEY_CACHE_S`` (0.5 s by default): a key revoked, or an enterprise suspended or changed, by
another process takes effect here within that time; in this process at once, as every route that changes a key
or an enterprise clears the cache; a key expiring is refused at its expiry whatever the cache holds. Only valid
keys and filed enterprises are kept (a key's hash is compared on every use), and never more than
``MAX_ENTRIES`` of each: unknown keys or codes cannot grow it.

It also says when a key's last use is due to be written: once a minute per key, not on every request.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field

from app.db import utcnow
from app.services.auth import KEY_USE_INTERVAL, Principal, hash_key, key_prefix

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class FiledEnterprise:
    """What accepting a document needs to know of an enterprise it names."""

    code: str
    roles: frozenset[str]
    status: str


@dataclass(frozen=True)
class _Entry:
    key_hash: str
    principal: Principal
    expires: float


@dataclass
class FilingCache:
    ttl_s: float
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _enterprises: dict[str, tuple[FiledEnterprise, float]] = field(default_factory=dict)
    _key_use: dict[str, float] = field(default_factory=dict)  # key id -> when its last use was written

    def principal(self, key: str) -> Principal | None:
        """The cached principal of this key, if the key was valid a moment ago."""
        prefix = key_prefix(key)
        return self.get(prefix, hash_key(key)) if prefix is not None and self._entries else None

    def get(self, prefix: str, key_hash: str) -> Principal | None:
        entry = self._entries.get(prefix)
        if entry is None or entry.expires < time.monotonic() or not hmac.compare_digest(entry.key_hash, key_hash):
            return None
        if entry.principal.key_expires_at is not None and entry.principal.expired(utcnow()):
            return None  # read again, and refused with KEY_EXPIRED
        return entry.principal

    def key_use_due(self, key_id: str) -> bool:
        """True at most once per ``KEY_USE_INTERVAL`` per key: when this process should write its last use.
        Kept apart from the entries, which every change to a key or an enterprise clears."""
        now = time.monotonic()
        last = self._key_use.get(key_id)
        if last is not None and now - last < KEY_USE_INTERVAL.total_seconds():
            return False
        if len(self._key_use) >= MAX_ENTRIES:
            self._key_use.clear()
        self._key_use[key_id] = now
        return True

    def put(self, prefix: str, key_hash: str, principal: Principal) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[prefix] = _Entry(key_hash, principal, time.monotonic() + self.ttl_s)

    def enterprises(self, codes: set[str]) -> dict[str, FiledEnterprise]:
        """The cached enterprises of these codes (those not cached, or no longer fresh, are left out)."""
        now = time.monotonic()
        found = {}
        for code in codes:
            entry = self._enterprises.get(code)
            if entry is not None and entry[1] >= now:
                found[code] = entry[0]
        return found

    def put_enterprises(self, enterprises: list[FiledEnterprise]) -> None:
        if self.ttl_s <= 0:
            return
        if len(self._enterprises) + len(enterprises) > MAX_ENTRIES:
            self._enterprises.clear()
        expires = time.monotonic() + self.ttl_s
        for enterprise in enterprises:
            self._enterprises[enterprise.code] = (enterprise, expires)

    def clear(self) -> None:
        self._entries.clear()
        self._enterprises.clear()
