"""Token-bucket rate limits with BitMEX's headers (reference §5.3).

Two layers:
- per account (authenticated: ``ACCOUNT_REQUESTS_PER_MINUTE``) or per IP (anonymous:
  ``ANONYMOUS_REQUESTS_PER_MINUTE``), refilling continuously at limit/60 tokens per second;
- the order layer: ``ORDER_REQUESTS_PER_SECOND`` per account on order and position writes.

A bulk request costs ``ceil(0.1 * n)``. Every response carries ``x-ratelimit-limit``,
``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (unix seconds when the bucket is full again);
order-layer responses add ``x-ratelimit-remaining-1s``. A refused request gets 429 with
``Retry-After``.

Budgets are per client address: an IPv4 address, or an IPv6 address's /64 network
(``address_key``), which is what one subscriber line gets, so the addresses of one network
share one budget. Buckets live in a bounded ``BucketTable`` (``BUCKETS_MAX``). To make room
for a new client, a full table looks at its ``EVICTION_SCAN`` oldest buckets, forgets the one
with the largest share of its capacity left (the oldest among equals), and moves the others to
the young end. Forgetting a bucket gives its client a full one again, so this loses the least: a
refilled bucket is the same as a new one, and a client that has spent its budget is forgotten
last. A flood of new addresses, each a little spent, cannot reset it; to push it out, the flood
would have to spend the whole budget of every bucket it is compared with. Each new client costs
at most one scan, so no pass over the whole table stalls the event loop.
"""

import ipaddress
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from perpetua.gateway.errors import ApiError

__all__ = [
    "BUCKETS_MAX",
    "EVICTION_SCAN",
    "IPV6_PREFIX_BITS",
    "AuthFailures",
    "Bucket",
    "BucketTable",
    "RateLimits",
    "RateLimitConfig",
    "address_key",
    "bulk_cost",
]

ACCOUNT_REQUESTS_PER_MINUTE = 120
ANONYMOUS_REQUESTS_PER_MINUTE = 30
ORDER_REQUESTS_PER_SECOND = 10
AUTH_FAILURES_PER_MINUTE = 30  # per IP: bad keys, signatures, nonces, before 429
BUCKETS_MAX = 100_000  # buckets per table (clients tracked at once)
EVICTION_SCAN = 16  # the oldest buckets a full table compares to make room for a new one
IPV6_PREFIX_BITS = 64  # an IPv6 client's budget is its /64 network's
NS_PER_S = 1_000_000_000


@lru_cache(maxsize=65_536)
def address_key(ip: str) -> str:
    """The budget key of client address ``ip``: an IPv4 address as it is, an IPv6 address as
    its /64 network (an IPv4-mapped one as its IPv4 address); a string that is no address
    (a test client's name) as it is."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, IPV6_PREFIX_BITS), strict=False))
    return ip


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    account_per_minute: int = ACCOUNT_REQUESTS_PER_MINUTE
    anonymous_per_minute: int = ANONYMOUS_REQUESTS_PER_MINUTE
    order_per_second: int = ORDER_REQUESTS_PER_SECOND
    auth_failures_per_minute: int = AUTH_FAILURES_PER_MINUTE
    enabled: bool = True


def bulk_cost(orders_count: int) -> int:
    """BitMEX charges a bulk request ceil(0.1 * n) requests (at least one)."""
    return max(1, math.ceil(orders_count / 10))


class Bucket:
    """``capacity`` tokens refilling at ``capacity / period_ns`` per ns."""

    __slots__ = ("capacity", "period_ns", "tokens_ns", "stamp_ns")

    def __init__(self, capacity: int, period_ns: int, now_ns: int) -> None:
        self.capacity = capacity
        self.period_ns = period_ns
        # tokens scaled by period_ns so refill stays in integers
        self.tokens_ns = capacity * period_ns
        self.stamp_ns = now_ns

    def _refill(self, now_ns: int) -> None:
        elapsed = max(0, now_ns - self.stamp_ns)
        full = self.capacity * self.period_ns
        self.tokens_ns = min(full, self.tokens_ns + elapsed * self.capacity)
        self.stamp_ns = now_ns

    def take(self, cost: int, now_ns: int) -> bool:
        self._refill(now_ns)
        need = cost * self.period_ns
        if self.tokens_ns < need:
            return False
        self.tokens_ns -= need
        return True

    def remaining(self) -> int:
        return self.tokens_ns // self.period_ns

    def share_left(self) -> float:
        """The part of its capacity the bucket holds (1.0: as a new one), as last refilled."""
        return self.tokens_ns / (self.capacity * self.period_ns)

    def reset_s(self, now_wall_s: int) -> int:
        missing = self.capacity * self.period_ns - self.tokens_ns
        return now_wall_s + -(-missing // (self.capacity * NS_PER_S))

    def wait_s(self, cost: int) -> int:
        missing = cost * self.period_ns - self.tokens_ns
        return max(1, -(-missing // (self.capacity * NS_PER_S)))


class BucketTable:
    """Buckets by key, at most ``limit``; see the module docstring for what a full table
    forgets."""

    def __init__(self, limit: int = BUCKETS_MAX) -> None:
        if limit < 1:
            raise ValueError("a bucket table holds at least one bucket")
        self.limit = limit
        self._buckets: dict[str, Bucket] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def get(self, key: str) -> Bucket | None:
        return self._buckets.get(key)

    def get_or_add(self, key: str, capacity: int, period_ns: int, now_ns: int) -> Bucket:
        """``key``'s bucket; a full one when it has none."""
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            if len(buckets) >= self.limit:
                self._evict_one(now_ns)
            bucket = buckets[key] = Bucket(capacity, period_ns, now_ns)
        return bucket

    def _evict_one(self, now_ns: int) -> None:
        buckets = self._buckets
        window: list[str] = []
        forget = ""
        most = -1.0
        for key in buckets:  # oldest first
            bucket = buckets[key]
            bucket._refill(now_ns)
            share = bucket.share_left()  # buckets differ in size (accounts and addresses)
            if share > most:  # strictly: the oldest stays chosen among equals
                most, forget = share, key
            window.append(key)
            if len(window) == EVICTION_SCAN:
                break
        del buckets[forget]
        for key in window:  # the rest go to the young end: the next scan sees others
            if key != forget:
                buckets[key] = buckets.pop(key)


class RateLimits:
    def __init__(self, config: RateLimitConfig, buckets_max: int = BUCKETS_MAX) -> None:
        self.config = config
        self._main = BucketTable(buckets_max)
        self._orders = BucketTable(buckets_max)
        self.rejected_count = 0  # requests answered 429 (metrics)
        # (key, authenticated, cost, order_layer) of each accepted charge, for other gateways
        self.on_charge: Callable[[str, bool, int, bool], None] | None = None

    def _bucket(
        self, table: BucketTable, key: str, capacity: int, period_ns: int, now: int
    ) -> Bucket:
        return table.get_or_add(key, capacity, period_ns, now)

    def charge(
        self, key: str, authenticated: bool, cost: int, order_layer: bool, headers: dict[str, str]
    ) -> None:
        """Take ``cost`` tokens; fill rate-limit headers; raise 429 when refused."""
        if not self.config.enabled:
            return
        now = time.monotonic_ns()
        wall = int(time.time())
        per_minute = (
            self.config.account_per_minute if authenticated else self.config.anonymous_per_minute
        )
        main = self._bucket(self._main, key, per_minute, 60 * NS_PER_S, now)
        ok = main.take(cost, now)
        headers["x-ratelimit-limit"] = str(per_minute)
        headers["x-ratelimit-remaining"] = str(main.remaining())
        headers["x-ratelimit-reset"] = str(main.reset_s(wall))
        if not ok:
            self.rejected_count += 1
            raise _limited(main.wait_s(cost), headers)
        if order_layer:
            per_second = self.config.order_per_second
            layer = self._bucket(self._orders, key, per_second, NS_PER_S, now)
            ok = layer.take(min(cost, per_second), now)
            headers["x-ratelimit-remaining-1s"] = str(layer.remaining())
            if not ok:
                self.rejected_count += 1
                raise _limited(1, headers)
        if self.on_charge is not None:
            self.on_charge(key, authenticated, cost, order_layer)

    def absorb(self, key: str, authenticated: bool, cost: int, order_layer: bool) -> None:
        """Take tokens another gateway charged for ``key`` (down to empty, never refusing)."""
        if not self.config.enabled:
            return
        now = time.monotonic_ns()
        per_minute = (
            self.config.account_per_minute if authenticated else self.config.anonymous_per_minute
        )
        buckets = [self._bucket(self._main, key, per_minute, 60 * NS_PER_S, now)]
        if order_layer:
            per_second = self.config.order_per_second
            buckets.append(self._bucket(self._orders, key, per_second, NS_PER_S, now))
        for bucket in buckets:
            bucket._refill(now)
            bucket.tokens_ns = max(
                0, bucket.tokens_ns - min(cost, bucket.capacity) * bucket.period_ns
            )


class AuthFailures:
    """Failed authentications per client IP, refilled continuously: an address that failed
    ``per_minute`` times is answered 429 before any key lookup or HMAC, on REST and WebSocket
    alike, until its bucket refills (brute force and HMAC-burning floods stop there)."""

    def __init__(self, config: RateLimitConfig, buckets_max: int = BUCKETS_MAX) -> None:
        self.enabled = config.enabled
        self.per_minute = config.auth_failures_per_minute
        self._buckets = BucketTable(buckets_max)

    def check(self, ip: str) -> None:
        bucket = self._buckets.get(address_key(ip))
        if not self.enabled or bucket is None:
            return
        now = time.monotonic_ns()
        bucket._refill(now)
        if bucket.remaining() < 1:
            raise ApiError(
                429,
                f"Too many failed authentications, retry in {bucket.wait_s(1)} seconds.",
                "HTTPError",
                {"retry-after": str(bucket.wait_s(1))},
            )

    def record(self, ip: str) -> None:
        if not self.enabled:
            return
        now = time.monotonic_ns()
        bucket = self._buckets.get_or_add(address_key(ip), self.per_minute, 60 * NS_PER_S, now)
        bucket.take(1, now)


def _limited(wait_s: int, headers: dict[str, str]) -> ApiError:
    out = dict(headers)
    out["retry-after"] = str(wait_s)
    return ApiError(429, f"Rate limit exceeded, retry in {wait_s} seconds.", "HTTPError", out)
