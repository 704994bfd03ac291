"""API-key authentication exactly as BitMEX documents it (reference §5.1, §6.3).

``signature = hex(HMAC_SHA256(secret, VERB + PATH_WITH_QUERY + expires + BODY))`` where the path
is the raw request target as sent (``/api/v1/...?...``, never re-encoded), ``expires`` the decimal
string as sent and ``BODY`` the raw body. A request whose ``expires`` is in the past gets BitMEX's
400 text; there is deliberately no upper bound (ccxt-pro sends milliseconds). WebSocket auth signs
``"GET/realtime" + expires``.

Permissions: none (read), ``order`` (every /order and /position call), ``orderCancel`` (cancels
only), ``withdraw``. Keys may carry CIDR allow-lists and may be disabled.
"""

import asyncio
import hashlib
import hmac
import ipaddress
import time

from perpetua.gateway.errors import (
    MSG_ACCESS_DENIED,
    MSG_INVALID_KEY,
    MSG_KEY_DISABLED,
    MSG_NONCE,
    MSG_SIGNATURE,
    ApiError,
)
from perpetua.gateway.ports import AccountsPort, ApiKeyRecord
from perpetua.services.sessions import Session

__all__ = [
    "KeyCache",
    "Nonces",
    "Principal",
    "check_permission",
    "expired_message",
    "key_refusal",
    "sign",
    "signature_matches",
    "verify",
]

# A changed or disabled key takes effect within 1 s everywhere: this cache's 0.35 s plus the
# accounts service's own 0.35 s, plus the open-session sweep's 0.2 s (ws/revocation.py).
KEY_CACHE_TTL_NS = 350_000_000
NONCE_KEYS_MAX = 100_000  # keys whose last api-nonce this process remembers
KEY_CACHE_ENTRIES_MAX = 10_000
EXPIRES_CHARS_MAX = 20  # decimal digits of ``api-expires`` (int64 ms fits in 19)
PERMISSION_ORDER = "order"
PERMISSION_CANCEL = "orderCancel"
PERMISSION_WITHDRAW = "withdraw"


def sign(secret: str, verb: str, path: str, expires: str, body: str | bytes = "") -> str:
    """Hex HMAC-SHA256 of ``verb + path + expires + body`` with ``secret``."""
    body_bytes = body.encode() if isinstance(body, str) else body
    message = verb.encode() + path.encode() + expires.encode() + body_bytes
    return hmac.digest(secret.encode(), message, hashlib.sha256).hex()  # one-shot, in C


def expired_message(now_s: int) -> str:
    return f"This request has expired - `expires` is in the past. Current time: {now_s}"


class Principal:
    """The authenticated caller of one request or socket."""

    __slots__ = ("key", "account", "session")

    def __init__(self, key: ApiKeyRecord, session: Session | None = None) -> None:
        self.key = key
        self.account = key.user_id
        self.session = session  # the browser session behind it; None for an API key

    def can(self, permission: str) -> bool:
        return permission in self.key.permissions


def check_permission(principal: Principal, permission: str) -> None:
    """403 unless the key holds ``permission`` (``orderCancel`` is implied by ``order``)."""
    perms = principal.key.permissions
    if permission in perms:
        return
    if permission == PERMISSION_CANCEL and PERMISSION_ORDER in perms:
        return
    raise ApiError(403, MSG_ACCESS_DENIED)


class KeyCache:
    """Looks keys up through the accounts service, caching each answer briefly (a request
    never waits for SQL unless its key was not seen for ``KEY_CACHE_TTL_NS``, and then the
    lookup runs in a worker thread, not on the event loop)."""

    def __init__(self, accounts: AccountsPort | None) -> None:
        self._accounts = accounts
        self._entries: dict[str, tuple[int, ApiKeyRecord | None]] = {}
        # one lookup in flight per key: a burst of requests after expiry waits for it
        self._pending: dict[str, asyncio.Future[ApiKeyRecord | None]] = {}
        # an in-memory store answers at once; anything else may block (SQL)
        self.blocking = accounts is not None and not accounts.in_memory

    async def get(self, key_id: str) -> ApiKeyRecord | None:
        now = time.monotonic_ns()
        hit = self._entries.get(key_id)
        if hit is not None and now - hit[0] < KEY_CACHE_TTL_NS:
            return hit[1]
        if self._accounts is None:
            return None
        pending = self._pending.get(key_id)
        if pending is None:  # a task of its own: a requester that goes away cancels nothing
            pending = asyncio.ensure_future(self._load(key_id, now))
            self._pending[key_id] = pending
            pending.add_done_callback(lambda _done: self._pending.pop(key_id, None))
        return await asyncio.shield(pending)

    async def _load(self, key_id: str, now: int) -> ApiKeyRecord | None:
        assert self._accounts is not None
        lookup = self._accounts.lookup_api_key
        if self.blocking:  # the accounts service reads SQL: never on the event loop
            record = await asyncio.to_thread(lookup, key_id)
        else:
            record = lookup(key_id)
        if len(self._entries) >= KEY_CACHE_ENTRIES_MAX:
            self._entries.clear()
        self._entries[key_id] = (now, record)
        return record

    def forget(self, key_id: str) -> None:
        self._entries.pop(key_id, None)


def _ip_allowed(cidrs: tuple[str, ...], client_ip: str) -> bool:
    if not cidrs:
        return True
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    for cidr in cidrs:
        try:
            if address in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:
            continue
    return False


def key_refusal(record: ApiKeyRecord, client_ip: str) -> ApiError | None:
    """Why ``record`` may not be used from ``client_ip`` now (disabled key or user, address
    outside its CIDR allow-list), or None: the one rule every channel applies, at sign-in and
    again while a WebSocket stays open."""
    if not record.enabled:
        return ApiError(403, MSG_KEY_DISABLED)
    if not _ip_allowed(record.cidr, client_ip):
        return ApiError(403, MSG_ACCESS_DENIED)
    return None


def signature_matches(expected: str, given: str) -> bool:
    """Constant-time comparison of hex signatures (any text: bytes, so non-ASCII is no error)."""
    return hmac.compare_digest(expected.encode(), given.lower().encode("utf-8", "replace"))


class Nonces:
    """The last ``api-nonce`` each key used: BitMEX requires it to increase strictly. Kept by
    this gateway process (a key's stored nonce is the floor); bounded, oldest keys forgotten
    first, so a forgotten key falls back to its stored floor."""

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def advance(self, record: ApiKeyRecord, nonce: int) -> bool:
        last = max(self._last.get(record.key_id, 0), record.nonce)
        if nonce <= last:
            return False
        if record.key_id not in self._last and len(self._last) >= NONCE_KEYS_MAX:
            del self._last[next(iter(self._last))]
        self._last[record.key_id] = nonce
        return True


async def verify(
    keys: KeyCache,
    key_id: str,
    expires: str,
    signature: str,
    message: tuple[str, str, bytes],
    client_ip: str,
    nonces: "Nonces | None" = None,
) -> Principal:
    """Check key, expiry (or, with ``nonces``, that the nonce increases), signature, CIDR and
    enablement; raise ``ApiError`` on any failure."""
    try:
        if len(expires) > EXPIRES_CHARS_MAX:
            raise ValueError("expires too long")
        expires_value = int(expires)
    except ValueError:
        raise ApiError(400, "Invalid api-expires header", "HTTPError") from None
    now_s = int(time.time())
    if nonces is None and expires_value < now_s:
        raise ApiError(400, expired_message(now_s))
    record = await keys.get(key_id)
    if record is None:
        raise ApiError(401, MSG_INVALID_KEY)
    verb, path, body = message
    expected = sign(record.secret, verb, path, expires, body)
    if not signature_matches(expected, signature):
        raise ApiError(401, MSG_SIGNATURE)
    refusal = key_refusal(record, client_ip)
    if refusal is not None:
        raise refusal
    if nonces is not None and not nonces.advance(record, expires_value):
        raise ApiError(401, MSG_NONCE)
    return Principal(record)
