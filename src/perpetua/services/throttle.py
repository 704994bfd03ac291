"""Sign-in throttling by exponential back-off, per account and per client address.

1. Each failed sign-in counts against two keys: ``ip:ADDRESS`` and ``e:SHA256(email)`` (the
   email key exists whether or not the address is registered, so the answers are the same).
   After ``FAILURES_FREE`` failures a key must wait ``BACKOFF_BASE_NS * 2**(n - FREE)`` (at
   most ``BACKOFF_MAX_NS``) after its last failure; a request while either key waits is
   refused without checking the password (no hashing spent on it).
2. No lock-out of a victim (CAPTCHA-free): the per-account key is not consulted for an address
   the account has signed in from before (``known_ips``), so an attacker failing on purpose
   slows only unknown addresses; the per-address key stops one address guessing many accounts.
3. A success clears both keys; a key whose last failure is older than ``FAILURE_MEMORY_NS``
   starts again from zero. Counts live in SQL, shared by every gateway process.
"""

import hashlib
from collections.abc import Sequence
from typing import Final

from sqlalchemy import Connection, delete, select, update

from perpetua.store.schema import sign_in_failures

__all__ = [
    "BACKOFF_BASE_NS",
    "BACKOFF_MAX_NS",
    "FAILURES_FREE",
    "backoff_ns",
    "email_key",
    "ip_key",
    "record_failure",
    "clear",
    "wait_ns",
]

FAILURES_FREE: Final = 5
BACKOFF_BASE_NS: Final = 1_000_000_000
BACKOFF_MAX_NS: Final = 15 * 60 * 10**9
FAILURE_MEMORY_NS: Final = 24 * 3600 * 10**9
FAILURES_COUNTED_MAX: Final = 64  # the count stops growing here (the wait is long capped)


def email_key(email: str) -> str:
    return "e:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def ip_key(address: str) -> str:
    return "ip:" + address[:64]


def backoff_ns(failures: int, free: int = FAILURES_FREE) -> int:
    if failures < free:
        return 0
    return min(BACKOFF_BASE_NS << min(failures - free, 40), BACKOFF_MAX_NS)


def wait_ns(conn: Connection, keys: Sequence[str], now_ns: int, free: int = FAILURES_FREE) -> int:
    """How long the caller must still wait (0: may try now)."""
    rows = conn.execute(select(sign_in_failures).where(sign_in_failures.c.key.in_(keys))).all()
    longest = 0
    for row in rows:
        if now_ns - row.last_ns > FAILURE_MEMORY_NS:
            continue
        longest = max(longest, row.last_ns + backoff_ns(row.failures, free) - now_ns)
    return longest


def record_failure(conn: Connection, keys: Sequence[str], now_ns: int) -> None:
    for key in keys:
        row = conn.execute(select(sign_in_failures).where(sign_in_failures.c.key == key)).first()
        if row is None:
            conn.execute(sign_in_failures.insert().values(key=key, failures=1, last_ns=now_ns))
            continue
        failures = 1 if now_ns - row.last_ns > FAILURE_MEMORY_NS else row.failures + 1
        conn.execute(
            update(sign_in_failures)
            .where(sign_in_failures.c.key == key)
            .values(failures=min(failures, FAILURES_COUNTED_MAX), last_ns=now_ns)
        )


def clear(conn: Connection, keys: Sequence[str]) -> None:
    conn.execute(delete(sign_in_failures).where(sign_in_failures.c.key.in_(keys)))
