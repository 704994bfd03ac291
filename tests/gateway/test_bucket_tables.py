"""Per-client budgets stay bounded without letting a flood of new clients reset a spent one.

Before, a table that reached ``BUCKETS_MAX`` was cleared: anyone able to send from that many
addresses (an IPv6 network holds far more) gave every client, a throttled brute-forcer
included, a full budget again. Now a full table forgets the bucket closest to full among its
oldest few, and an IPv6 client's budget is its /64's.
"""

import pytest

from perpetua.gateway.errors import ApiError
from perpetua.gateway.ratelimit import (
    EVICTION_SCAN,
    NS_PER_S,
    AuthFailures,
    Bucket,
    BucketTable,
    RateLimitConfig,
    RateLimits,
    address_key,
)
from perpetua.gateway.ws.endpoint import ConnectionLimiter

MINUTE_NS = 60 * NS_PER_S


def _charge(limits: RateLimits, key: str) -> bool:
    try:
        limits.charge(key, False, 1, False, {})
    except ApiError as error:
        assert error.status == 429
        return False
    return True


def test_a_flood_of_new_addresses_does_not_reset_a_spent_budget() -> None:
    limits = RateLimits(RateLimitConfig(anonymous_per_minute=30), buckets_max=100)
    spent = 0
    while _charge(limits, "ip:203.0.113.7"):
        spent += 1
    assert spent == 30
    for n in range(1_000):  # ten times the table, each new address a little spent
        assert _charge(limits, f"ip:198.51.{n // 256}.{n % 256}")
    assert not _charge(limits, "ip:203.0.113.7")  # still throttled
    assert len(limits._main) == 100


def test_a_full_table_forgets_the_fullest_of_its_oldest_buckets() -> None:
    scan = EVICTION_SCAN
    table = BucketTable(limit=2 * scan)
    left = {3: 9, 5: 8, scan + 4: 5}  # tokens left of 10; every other bucket keeps 1
    for n in range(2 * scan):
        table.get_or_add(f"k{n}", 10, MINUTE_NS, 0).take(10 - left.get(n, 1), 0)
    table.get_or_add("new", 10, MINUTE_NS, 0)
    assert table.get("k3") is None  # the fullest of the oldest scan
    # the rest of that window went to the young end: the next scan sees the next buckets,
    # where k{scan + 4} is the fullest, though k5 (outside the window now) is fuller
    table.get_or_add("new2", 10, MINUTE_NS, 0)
    assert table.get(f"k{scan + 4}") is None and table.get("k5") is not None
    # the window is back at k0..: with "new" in it, a full bucket, as good as forgotten
    table.get_or_add("new3", 10, MINUTE_NS, 0)
    assert table.get("new") is None and table.get("k5") is not None
    assert len(table) == 2 * scan


def test_each_eviction_looks_at_a_bounded_window(monkeypatch: pytest.MonkeyPatch) -> None:
    table = BucketTable(limit=10_000)
    for n in range(10_000):
        table.get_or_add(f"k{n}", 30, MINUTE_NS, 0).take(1, 0)
    looked = 0
    share_left = Bucket.share_left

    def counted(bucket: Bucket) -> float:
        nonlocal looked
        looked += 1
        share: float = share_left(bucket)
        return share

    monkeypatch.setattr(Bucket, "share_left", counted)
    for n in range(1_000):
        table.get_or_add(f"new{n}", 30, MINUTE_NS, 0)
    assert len(table) == 10_000
    assert looked == 1_000 * EVICTION_SCAN  # a window per new key, never the whole table


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
    ],
)
def test_an_ipv6_client_is_budgeted_by_its_network(ip: str, key: str) -> None:
    assert address_key(ip) == key


def test_failed_authentications_count_per_ipv6_network() -> None:
    failures = AuthFailures(RateLimitConfig(auth_failures_per_minute=3))
    for host in range(3):  # three addresses of one /64
        failures.record(f"2001:db8:0:1::{host + 1}")
    with pytest.raises(ApiError) as refused:
        failures.check("2001:db8:0:1:dead:beef::9")
    assert refused.value.status == 429
    failures.check("2001:db8:0:2::1")  # another network: its own budget


def test_websocket_connections_count_per_ipv6_network() -> None:
    limiter = ConnectionLimiter(2)
    assert limiter.take("2001:db8::1", 0) == (True, 1)
    assert limiter.take("2001:db8::2", 0) == (True, 0)
    assert limiter.take("2001:db8::3", 0) == (False, 0)
    assert limiter.take("2001:db9::1", 0) == (True, 1)
