"""An in-memory API key store with the accounts service's ``lookup_api_key`` shape.

Used by tests, benchmarks and ``perpetua run`` when ``perpetua.services.accounts`` is not
installed; it keeps secrets in memory only (nothing at rest, so nothing to encrypt).
"""

import secrets
from collections.abc import Iterable, Sequence

from perpetua.gateway.ports import ApiKeyRecord

__all__ = ["MemoryAccounts"]

KEY_ID_BYTES = 18
SECRET_BYTES = 36


class MemoryAccounts:
    in_memory = True  # lookups never block: the gateway calls them on the event loop

    def __init__(self) -> None:
        self.keys: dict[str, ApiKeyRecord] = {}

    def lookup_api_key(self, key_id: str) -> ApiKeyRecord | None:
        return self.keys.get(key_id)

    def add(self, record: ApiKeyRecord) -> ApiKeyRecord:
        self.keys[record.key_id] = record
        return record

    def create_api_key(
        self,
        user_id: int,
        permissions: Iterable[str] = ("order",),
        cidr: Iterable[str] = (),
        name: str = "",
        key_id: str | None = None,
        secret: str | None = None,
    ) -> ApiKeyRecord:
        record = ApiKeyRecord(
            key_id=key_id or secrets.token_urlsafe(KEY_ID_BYTES)[:24],
            user_id=user_id,
            secret=secret or secrets.token_urlsafe(SECRET_BYTES)[:48],
            permissions=tuple(permissions),
            cidr=tuple(cidr),
            name=name,
        )
        return self.add(record)

    def issue_api_key(
        self, user_id: int, permissions: Sequence[str], cidr: Sequence[str], name: str
    ) -> tuple[str, str]:
        record = self.create_api_key(user_id, permissions, cidr, name)
        return record.key_id, record.secret
