"""Token-bucket rate limits with BitMEX's headers (reference §5.3).

Two layers:
- per account (authenticated: ``ACCOUNT_REQUESTS_PER_MINUTE``) or per IP (anonymous:
  ``ANONYMOUS_REQUESTS_PER_MINUTE``), refilling continuously at limit/60 tokens per second;
- the order layer: ``ORDER_REQUESTS_PER_SECOND`` per account on order and position writes.

A bulk request costs ``ceil(0.1 * n)``. Every response carries ``x-ratelimit-limit``,
``x-ratelimit-remaining`` and ``x-ratelimit-reset`` (unix seconds when the bucket is full again);
order-layer responses add ``x-ratelimit-remaining-1s``. A refused request gets 429 with
``Retry-After``. Buckets are kept in a bounded dict; idle ones are evicted first.

Several gateways (cluster mode) share one allowance per client: ``on_charge`` is told of every
charge accepted here, the runtime passes it to the other gateways (``transport.gateway_port.
SharedLimits``), and each takes the same tokens from its own buckets with ``absorb``.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from perpetua.gateway.errors import ApiError

__all__ = ["AuthFailures", "Bucket", "RateLimits", "RateLimitConfig", "bulk_cost"]

ACCOUNT_REQUESTS_PER_MINUTE = 120
ANONYMOUS_REQUESTS_PER_MINUTE = 30
ORDER_REQUESTS_PER_SECOND = 10
AUTH_FAILURES_PER_MINUTE = 30  # per IP: bad keys, signatures, nonces, before 429
BUCKETS_MAX = 100_000
NS_PER_S = 1_000_000_000


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

    def reset_s(self, now_wall_s: int) -> int:
        missing = self.capacity * self.period_ns - self.tokens_ns
        return now_wall_s + -(-missing // (self.capacity * NS_PER_S))

    def wait_s(self, cost: int) -> int:
        missing = cost * self.period_ns - self.tokens_ns
        return max(1, -(-missing // (self.capacity * NS_PER_S)))


class RateLimits:
    def __init__(self, config: RateLimitConfig) -> None:
        self.config = config
        self._main: dict[str, Bucket] = {}
        self._orders: dict[str, Bucket] = {}
        self.rejected_count = 0  # requests answered 429 (metrics)
        # (key, authenticated, cost, order_layer) of each accepted charge, for other gateways
        self.on_charge: Callable[[str, bool, int, bool], None] | None = None

    def _bucket(
        self, table: dict[str, Bucket], key: str, capacity: int, period_ns: int, now: int
    ) -> Bucket:
        bucket = table.get(key)
        if bucket is None:
            if len(table) >= BUCKETS_MAX:
                table.clear()  # crude but bounded: everyone starts with a full bucket
            bucket = Bucket(capacity, period_ns, now)
            table[key] = bucket
        return bucket

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

    def __init__(self, config: RateLimitConfig) -> None:
        self.enabled = config.enabled
        self.per_minute = config.auth_failures_per_minute
        self._buckets: dict[str, Bucket] = {}

    def check(self, ip: str) -> None:
        bucket = self._buckets.get(ip)
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
        bucket = self._buckets.get(ip)
        if bucket is None:
            if len(self._buckets) >= BUCKETS_MAX:
                self._buckets.clear()
            bucket = self._buckets[ip] = Bucket(self.per_minute, 60 * NS_PER_S, now)
        bucket.take(1, now)


def _limited(wait_s: int, headers: dict[str, str]) -> ApiError:
    out = dict(headers)
    out["retry-after"] = str(wait_s)
    return ApiError(429, f"Rate limit exceeded, retry in {wait_s} seconds.", "HTTPError", out)
