"""Volume tiers (services.volume): the whole venue (real sequencer, projector, accounts
database, gateway) with a simulated clock. A trade, then 00:00 UTC: the measured ADV crosses a
configured threshold, a SetFeeTier goes through the sequencer, and the next fill pays the new
tier's fee; /user/tradingVolume and /user/commission say the same. Measuring alone (with fake
reads) covers families of sub-accounts and tiers that fall again."""

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from perpetua.core.calendar import utc_ns
from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit, IndexPrice, SetFeeTier
from perpetua.core.limits import DAY_NS
from perpetua.gateway.auth import sign
from perpetua.runtime.config import FeedsConfig, FeesConfig, VenueConfig
from perpetua.runtime.venue import Venue, open_venue
from perpetua.sequencer import SimulatedClock
from perpetua.services.volume import TierTable, TradingVolume, VolumeTiers, usd_micro
from perpetua.wire.values import encode_json

T0 = utc_ns(2026, 3, 2, 12)
MIDNIGHT = utc_ns(2026, 3, 3)
# Tier 1 from $30 of ADV: one $1,000 trade (ADV $33) crosses it.
THRESHOLDS = (
    0,
    30,
    10**7,
    2 * 10**7,
    3 * 10**7,
    4 * 10**7,
    5 * 10**7,
    6 * 10**7,
    7 * 10**7,
    8 * 10**7,
)
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
XBT = 100_000_000


class Client:
    def __init__(self, http: TestClient, key: tuple[str, str]) -> None:
        self.http = http
        self.key_id, self.secret = key

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        target = "/api/v1" + path
        data = encode_json(body) if body is not None else b""
        expires = str(int(time.time()) + 60)
        headers = {
            "api-key": self.key_id,
            "api-expires": expires,
            "api-signature": sign(self.secret, method, target, expires, data),
            "content-type": "application/json",
        }
        response = self.http.request(method, target, content=data, headers=headers)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[tuple[Venue, SimulatedClock]]:
    clock = SimulatedClock(T0)
    saved = os.umask(0o022)
    try:
        opened = open_venue(
            VenueConfig(
                data_dir=tmp_path / "data",
                operator_key="k",
                feeds=FeedsConfig(default="none"),
                fees=FeesConfig(THRESHOLDS, volume_check_interval_s=3600),
            ),
            clock=clock,
            begin=lambda recovered: T0,
            password_hasher=FAST_HASHER,
        )
    finally:
        os.umask(saved)
    opened.start()
    try:
        yield opened, clock
    finally:
        opened.stop()


def _trade(maker: Client, taker: Client, qty: int) -> int:
    """``maker`` rests a sell, ``taker`` buys it at market; the taker's fee (execComm)."""
    order = {"symbol": "XBTUSD", "side": "Sell", "orderQty": qty, "price": 20000}
    maker.call("POST", "/order", order)
    taker.call("POST", "/order", {"symbol": "XBTUSD", "side": "Buy", "orderQty": qty})
    rows = taker.call("GET", "/execution/tradeHistory?reverse=true&count=1")
    return int(rows[0]["execComm"])


def test_crossing_a_volume_threshold_changes_the_next_fill_fee(
    venue: tuple[Venue, SimulatedClock],
) -> None:
    opened, clock = venue
    seq = opened.sequencer
    accounts = opened.accounts
    alice = accounts.issue_api_key(11, ["order"], [], "alice")
    bob = accounts.issue_api_key(12, ["order"], [], "bob")
    for account in (11, 12):
        seq.execute(Deposit(0, account, "XBt", 10 * XBT, f"fund-{account}"))
    seq.execute(IndexPrice(0, ".BXBT", 20_000, 1))
    with TestClient(opened.app) as http:
        a, b = Client(http, alice), Client(http, bob)
        fee = _trade(a, b, 1000)
        # 1,000 contracts at $20,000: 5,000,000 XBt; tier 0 taker 0.075%: 3,750 XBt
        assert fee == 3750
        assert b.call("GET", "/user/commission")["XBTUSD"]["takerFee"] == 0.00075
        volume = http.app.state.gateway.costs.volume  # type: ignore[attr-defined]
        clock.advance(MIDNIGHT - T0 + 5 * 10**9)
        assert asyncio.run(volume.run_boundary(MIDNIGHT)) == 2  # alice (maker) and bob
        assert b.call("GET", "/user/tradingVolume") == [
            {
                "advUsd": 33,
                "advUsdSpot": 0,
                "advUsdContract": 33,
                "feeTier": 1,
                "timestamp": "2026-03-03T00:00:00.000Z",
            }
        ]
        assert b.call("GET", "/user/commission")["XBTUSD"]["takerFee"] == 0.0005
        assert _trade(a, b, 1000) == 2500  # tier 1: 0.05%
        assert asyncio.run(volume.run_boundary(MIDNIGHT)) == 0  # nothing new to submit


class Row(NamedTuple):
    account: int
    symbol: str
    qty: int
    cost: int


def _measure(
    rows: list[Row], owners: dict[int, int], known: dict[int, int]
) -> tuple[VolumeTiers, list[SetFeeTier]]:
    class Owners:
        def owners(self) -> dict[int, int]:
            return owners

    async def submit(command: Any) -> None:
        return None

    service = VolumeTiers(
        {s.symbol: s for s in default_catalogue()},
        lambda start, end: rows,
        Owners(),
        submit,
        lambda: MIDNIGHT,
        table=TierTable(THRESHOLDS),
        usd_per_xbt=lambda: 20_000,
        known_tiers=known,
    )
    return service, service.measure(MIDNIGHT)


def test_sub_accounts_count_for_their_owner_and_share_its_tier() -> None:
    rows = [
        Row(21, "XBTUSD", 600, 0),
        Row(22, "XBT_USDT", 0, 500 * 1_000_000),
        Row(23, "XBTUSD", 30, 0),
    ]
    service, changes = _measure(rows, {22: 21}, {})
    # family 21: $600 contracts + $500 spot = $1,100 / 30 = $36 -> tier 1; 23: $1 -> tier 0
    assert changes == [SetFeeTier(0, 21, 1), SetFeeTier(0, 22, 1)]
    assert service.volume_of(22) == TradingVolume(36, 16, 20, 1, MIDNIGHT)
    assert service.volume_of(23).tier == 0


def test_a_tier_falls_back_when_the_volume_leaves_the_window() -> None:
    _, changes = _measure([], {}, {31: 1, 32: 0})
    assert changes == [SetFeeTier(0, 31, 0)]


def test_usd_value_by_contract_kind() -> None:
    specs = {s.symbol: s for s in default_catalogue()}
    assert usd_micro(specs["XBTUSD"], 100, 0, 0) == 100 * 1_000_000  # $1 a contract
    assert usd_micro(specs["ETHUSDT"], 0, 7 * 1_000_000, 0) == 7 * 1_000_000  # USDt is USD
    assert usd_micro(specs["ETHUSD"], 0, XBT, 20_000) == 20_000 * 1_000_000  # 1 XBT of quanto


def test_the_tier_table_is_checked() -> None:
    with pytest.raises(ValueError, match="thresholds"):
        TierTable((0, 1))
    with pytest.raises(ValueError, match="rise strictly"):
        TierTable((0, 5, 5, 6, 7, 8, 9, 10, 11, 12))
    assert TierTable(THRESHOLDS).tier(29) == 0 and TierTable(THRESHOLDS).tier(30) == 1
    assert MIDNIGHT - utc_ns(2026, 3, 2) == DAY_NS
