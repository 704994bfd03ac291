"""Users and API keys (the service's own SQL tables ``users`` and ``api_keys``).

A user's ``id`` is its core account id (>= 1); money never lives here, only identity. Passwords
are argon2id hashes (argon2-cffi). API keys follow BitMEX: a 24-character key id, a 48-character
secret shown once at creation and stored encrypted under the server key (``server_key``), a
name, permissions from ``PERMISSIONS`` (read is implicit; ``order`` and ``orderCancel`` exclude
each other, as on BitMEX), a CIDR allow-list (empty: any address), an enabled flag and the
legacy nonce.

``lookup_api_key`` runs on every signed request, so answers (found or not) are cached in memory
for ``API_KEY_CACHE_TTL_NS``; a change made through this service invalidates its own cache at
once, a change made by another process shows within the TTL. A disabled user's keys look up as
disabled.

Rejections (bad email, duplicate email, bad permission or CIDR, limits) raise ``AccountsError``
with a message for the client; everything else is a bug or an I/O failure.
"""

import ipaddress
import secrets
import string
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from argon2 import PasswordHasher
from cryptography.fernet import InvalidToken, MultiFernet
from sqlalchemy import Connection, Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from perpetua.services.passwords import default_hasher
from perpetua.services.server_key import load_server_key
from perpetua.store.database import default_url, migrate, open_engine
from perpetua.store.schema import api_keys, users

__all__ = [
    "API_KEYS_PER_USER_MAX",
    "API_KEY_CACHE_TTL_NS",
    "PERMISSIONS",
    "AccountsError",
    "AccountsService",
    "ApiKeyInfo",
    "ApiKeyRecord",
    "User",
    "ip_allowed",
    "key_info",
    "next_user_id",
]

PERMISSIONS: Final = ("order", "orderCancel", "withdraw")
KEY_ID_LENGTH: Final = 24
SECRET_LENGTH: Final = 48
KEY_NAME_LENGTH_MAX: Final = 64
EMAIL_LENGTH_MAX: Final = 254
PASSWORD_LENGTH_MIN: Final = 8
PASSWORD_LENGTH_MAX: Final = 1024
CIDRS_PER_KEY_MAX: Final = 32
API_KEYS_PER_USER_MAX: Final = 100
API_KEY_CACHE_TTL_NS: Final = 350_000_000  # with the gateway's own cache: disabled within 1 s
API_KEY_CACHE_ENTRIES_MAX: Final = 100_000
USER_ID_RETRIES_MAX: Final = 3
_KEY_ALPHABET = string.ascii_letters + string.digits


class AccountsError(ValueError):
    """Reject: the request breaks a rule of this service (HTTP 400 with ``str(error)``)."""


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    created_ns: int
    enabled: bool


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """An API key without its secret (listing)."""

    key_id: str
    user_id: int
    name: str
    permissions: tuple[str, ...]
    cidr: tuple[str, ...]
    enabled: bool
    nonce: int
    created_ns: int


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    """An API key as the gateway needs it on each request; ``secret`` is decrypted, and
    ``enabled`` is false when either the key or its user is disabled."""

    key_id: str
    user_id: int
    secret: str
    permissions: tuple[str, ...] = ()
    cidr: tuple[str, ...] = ()
    enabled: bool = True
    name: str = ""
    nonce: int = 0
    created_ns: int = 0


def next_user_id(conn: Connection) -> int:
    """The next free account id (one more than the largest), read in ``conn``'s transaction:
    a concurrent insert of the same id fails on the primary key, and the caller retries at
    most ``USER_ID_RETRIES_MAX`` times."""
    return int(conn.execute(select(func.coalesce(func.max(users.c.id), 0))).scalar_one()) + 1


def key_info(row: Any) -> ApiKeyInfo:
    """An ``api_keys`` row without its secret."""
    return ApiKeyInfo(
        row.id,
        row.user_id,
        row.name,
        tuple(row.permissions),
        tuple(row.cidr),
        row.enabled,
        row.nonce,
        row.created_ns,
    )


def ip_allowed(cidr: Sequence[str], address: str) -> bool:
    """True when ``address`` is inside one of ``cidr`` (an empty list allows any)."""
    if not cidr:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(block, strict=False) for block in cidr)


def _email(email: str) -> str:
    normalized = email.strip().lower()
    local, at, domain = normalized.partition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(normalized) > EMAIL_LENGTH_MAX
        or any(c.isspace() for c in normalized)
    ):
        raise AccountsError(f"Invalid email: {email!r}")
    return normalized


def _permissions(permissions: Iterable[str]) -> tuple[str, ...]:
    chosen = tuple(dict.fromkeys(p for p in permissions if p))
    unknown = [p for p in chosen if p not in PERMISSIONS]
    if unknown:
        raise AccountsError(f"Invalid permission {unknown[0]!r}; one of {', '.join(PERMISSIONS)}")
    if "order" in chosen and "orderCancel" in chosen:
        raise AccountsError("Permissions order and orderCancel are mutually exclusive")
    return tuple(p for p in PERMISSIONS if p in chosen)


def _cidrs(cidr: Iterable[str]) -> tuple[str, ...]:
    blocks = [c.strip() for c in cidr if c.strip()]
    if len(blocks) > CIDRS_PER_KEY_MAX:
        raise AccountsError(f"At most {CIDRS_PER_KEY_MAX} CIDR blocks per key")
    normalized = []
    for block in blocks:
        try:
            normalized.append(str(ipaddress.ip_network(block, strict=False)))
        except ValueError:
            raise AccountsError(f"Invalid CIDR {block!r}") from None
    return tuple(dict.fromkeys(normalized))


class AccountsService:
    """Users and API keys over one database (SQLite or PostgreSQL, migrated)."""

    def __init__(
        self,
        engine: Engine,
        server_key: MultiFernet,
        clock_ns: Callable[[], int] = time.time_ns,
        monotonic_ns: Callable[[], int] = time.monotonic_ns,
        password_hasher: PasswordHasher | None = None,
    ) -> None:
        self.engine = engine
        self.in_memory = False  # lookups read SQL: the gateway runs them in a thread
        self._fernet = server_key
        self._clock_ns = clock_ns
        self._monotonic_ns = monotonic_ns
        self._hasher = password_hasher or default_hasher()
        self._cache: dict[str, tuple[int, ApiKeyRecord | None]] = {}
        self._cache_lock = threading.Lock()

    @classmethod
    def open(cls, data_dir: str | Path, url: str | None = None) -> "AccountsService":
        """The service of a data dir: its database (migrated to head; SQLite under the data dir
        unless ``url`` names another) and its server key (created on first use)."""
        database = url or default_url(data_dir)
        migrate(database)
        return cls(open_engine(database), load_server_key(data_dir))

    @property
    def server_key(self) -> MultiFernet:
        return self._fernet

    def close(self) -> None:
        self.engine.dispose()

    # --- users -------------------------------------------------------------------------------

    def create_user(self, email: str, password: str, user_id: int | None = None) -> User:
        """A new enabled user; ``user_id`` defaults to the next free account id."""
        address = _email(email)
        if not PASSWORD_LENGTH_MIN <= len(password) <= PASSWORD_LENGTH_MAX:
            raise AccountsError(
                f"Password must have {PASSWORD_LENGTH_MIN} to {PASSWORD_LENGTH_MAX} characters"
            )
        if user_id is not None and user_id <= 0:
            raise AccountsError(f"User id must be positive: {user_id}")
        password_hash = self._hasher.hash(password)
        for _attempt in range(USER_ID_RETRIES_MAX):
            try:
                with self.engine.begin() as conn:
                    if conn.execute(select(users.c.id).where(users.c.email == address)).first():
                        raise AccountsError("Email already registered")
                    chosen = next_user_id(conn) if user_id is None else user_id
                    user = User(chosen, address, self._clock_ns(), True)
                    conn.execute(
                        users.insert().values(
                            id=user.id,
                            email=user.email,
                            password_hash=password_hash,
                            created_ns=user.created_ns,
                            enabled=True,
                        )
                    )
                    return user
            except IntegrityError:
                if user_id is not None:
                    raise AccountsError(f"User id {user_id} is taken") from None
        raise AccountsError("Could not allocate a user id; try again")

    def _user(self, where: Any) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(users.c.id, users.c.email, users.c.created_ns, users.c.enabled).where(where)
            ).first()
        return None if row is None else User(row.id, row.email, row.created_ns, row.enabled)

    def get_user(self, user_id: int) -> User | None:
        return self._user(users.c.id == user_id)

    def list_users(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(users.c.id, users.c.email, users.c.created_ns, users.c.enabled).order_by(
                    users.c.id
                )
            ).all()
        return [User(r.id, r.email, r.created_ns, r.enabled) for r in rows]

    # --- API keys ----------------------------------------------------------------------------

    def issue_api_key(
        self, user_id: int, permissions: Sequence[str], cidr: Sequence[str], name: str
    ) -> tuple[str, str]:
        """The operator's route (``POST /admin/apiKey``): a key for ``user_id``, whose user is
        made first (an unusable random password, a placeholder address) if none has that id."""
        if self.get_user(user_id) is None:
            self.create_user(
                f"user{user_id}@perpetua.invalid", secrets.token_urlsafe(16), user_id=user_id
            )
        return self.create_api_key(user_id, name=name, permissions=permissions, cidr=cidr)

    def create_api_key(
        self,
        user_id: int,
        name: str = "",
        permissions: Iterable[str] = (),
        cidr: Iterable[str] = (),
        also: Callable[[Connection, str], None] | None = None,
        enabled: bool = True,
    ) -> tuple[str, str]:
        """A new key for ``user_id`` (enabled unless told): returns ``(key_id, secret)``. The
        secret is not retrievable later except through ``lookup_api_key`` (for signature
        checks). ``also`` runs inside the same transaction with the new key id (its audit
        row)."""
        chosen = _permissions(permissions)
        blocks = _cidrs(cidr)
        if len(name) > KEY_NAME_LENGTH_MAX:
            raise AccountsError(f"Key name longer than {KEY_NAME_LENGTH_MAX} characters")
        key_id = "".join(secrets.choice(_KEY_ALPHABET) for _ in range(KEY_ID_LENGTH))
        secret = secrets.token_urlsafe(SECRET_LENGTH * 3 // 4)
        with self.engine.begin() as conn:
            if conn.execute(select(users.c.id).where(users.c.id == user_id)).first() is None:
                raise AccountsError(f"No user {user_id}")
            held = conn.execute(
                select(func.count()).select_from(api_keys).where(api_keys.c.user_id == user_id)
            ).scalar_one()
            if held >= API_KEYS_PER_USER_MAX:
                raise AccountsError(f"At most {API_KEYS_PER_USER_MAX} API keys per user")
            conn.execute(
                api_keys.insert().values(
                    id=key_id,
                    user_id=user_id,
                    name=name,
                    secret_encrypted=self._fernet.encrypt(secret.encode()).decode(),
                    permissions=list(chosen),
                    cidr=list(blocks),
                    enabled=enabled,
                    nonce=0,
                    created_ns=self._clock_ns(),
                )
            )
            if also is not None:
                also(conn, key_id)
        self._forget(key_id)
        return key_id, secret

    def lookup_api_key(self, key_id: str) -> ApiKeyRecord | None:
        """The key with its decrypted secret, or ``None`` when there is no such key."""
        now = self._monotonic_ns()
        hit = self._cache.get(key_id)
        if hit is not None and now < hit[0]:
            return hit[1]
        record = self._load(key_id) if len(key_id) == KEY_ID_LENGTH else None
        with self._cache_lock:
            if len(self._cache) >= API_KEY_CACHE_ENTRIES_MAX:
                self._cache.clear()
            self._cache[key_id] = (now + API_KEY_CACHE_TTL_NS, record)
        return record

    def _load(self, key_id: str) -> ApiKeyRecord | None:
        stmt = (
            select(api_keys, users.c.enabled.label("user_enabled"))
            .join(users, users.c.id == api_keys.c.user_id)
            .where(api_keys.c.id == key_id)
        )
        with self.engine.connect() as conn:
            row = conn.execute(stmt).first()
        if row is None:
            return None
        try:
            secret = self._fernet.decrypt(row.secret_encrypted.encode()).decode()
        except InvalidToken:
            raise RuntimeError(
                f"API key {key_id}: secret does not decrypt under the server "
                "key (wrong or rotated-away secrets/server.key)"
            ) from None
        return ApiKeyRecord(
            row.id,
            row.user_id,
            secret,
            tuple(row.permissions),
            tuple(row.cidr),
            bool(row.enabled and row.user_enabled),
            row.name,
            row.nonce,
            row.created_ns,
        )

    def list_api_keys(self, user_id: int | None = None) -> list[ApiKeyInfo]:
        """Keys of ``user_id`` (every key when ``None``), oldest first, without secrets."""
        stmt = select(api_keys).order_by(api_keys.c.created_ns, api_keys.c.id)
        if user_id is not None:
            stmt = stmt.where(api_keys.c.user_id == user_id)
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [key_info(r) for r in rows]

    def set_api_key_enabled(
        self,
        key_id: str,
        enabled: bool,
        also: Callable[[Connection], None] | None = None,
    ) -> bool:
        """Enable or disable a key (a disabled one is kept for audit); False when there is no
        such key. ``also`` runs inside the same transaction (its audit row)."""
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(api_keys).where(api_keys.c.id == key_id).values(enabled=enabled)
            ).rowcount
            if changed and also is not None:
                also(conn)
        self._forget(key_id)
        return bool(changed)

    def delete_api_key(self, key_id: str, also: Callable[[Connection], None] | None = None) -> bool:
        """Delete a key; False when there is no such key. ``also`` as above."""
        with self.engine.begin() as conn:
            changed = conn.execute(delete(api_keys).where(api_keys.c.id == key_id)).rowcount
            if changed and also is not None:
                also(conn)
        self._forget(key_id)
        return bool(changed)

    def reencrypt_secrets(self) -> int:
        """Re-encrypt every stored secret under the server key's first key (rotation step 2);
        returns how many keys were rewritten."""
        with self.engine.begin() as conn:
            rows = conn.execute(select(api_keys.c.id, api_keys.c.secret_encrypted)).all()
            for row in rows:
                token = self._fernet.rotate(row.secret_encrypted.encode()).decode()
                conn.execute(
                    update(api_keys).where(api_keys.c.id == row.id).values(secret_encrypted=token)
                )
        self.forget_cached_keys()
        return len(rows)

    def _forget(self, key_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(key_id, None)

    def forget_cached_keys(self) -> None:
        """Drop every cached lookup (after a change of users the keys' answers depend on)."""
        with self._cache_lock:
            self._cache.clear()
