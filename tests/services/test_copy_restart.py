"""Copy trading across restarts of the venue (same data dir): a leader fill made durable while
the copy service was not running is mirrored once when the venue opens again (``missed``), and
mirrors already placed are never placed again."""

import os
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from perpetua.core import audit
from perpetua.core.commands import Deposit, IndexPrice, PlaceOrder
from perpetua.core.enums import OrdType, Side, TimeInForce
from perpetua.runtime.config import FeedsConfig, VenueConfig
from perpetua.runtime.venue import Venue, open_venue
from tests.services.bot_venue import PASSWORD, BotVenue, Key

SYMBOL = "XBTUSDT"
USDT = 1_000_000
FOLLOWER, LEADER, MM = 1, 10, 1_000_010
IOC = TimeInForce.IMMEDIATE_OR_CANCEL


def _open(data_dir: Path) -> Venue:
    saved = os.umask(0o022)
    try:
        return open_venue(
            VenueConfig(data_dir=data_dir, operator_key="k", feeds=FeedsConfig(default="none"))
        )
    finally:
        os.umask(saved)


def _position(venue: Venue, account: int) -> int:
    pos = venue.sequencer.engine.state.markets[SYMBOL].positions.get(account)
    return 0 if pos is None else int(pos.qty)


def _serve(venue: Venue, key: Key, then: Any) -> Any:
    venue.start()
    try:
        with TestClient(venue.app) as client:
            v = BotVenue(venue, client, key)
            v.wait_idle()
            return then(v)
    finally:
        venue.stop()


def test_a_fill_missed_while_down_is_mirrored_once_after_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    venue = _open(data_dir)
    venue.accounts.create_user("alice@example.com", PASSWORD, FOLLOWER)
    follower_key = Key(*venue.accounts.issue_api_key(FOLLOWER, ["order"], [], "k"))
    venue.accounts.create_user("lead@example.com", PASSWORD, LEADER)
    leader_key = Key(*venue.accounts.issue_api_key(LEADER, ["order"], [], "k"))

    def setup(v: BotVenue) -> int:
        v.execute(Deposit(0, FOLLOWER, "USDt", 10_000 * USDT, "f"))
        v.execute(Deposit(0, LEADER, "USDt", 100_000 * USDT, "l"))
        v.execute(Deposit(0, MM, "USDt", 10**9 * USDT, "m"))
        v.execute(IndexPrice(0, ".BXBTT", 20_000, 1))
        v.execute(PlaceOrder(0, MM, SYMBOL, Side.SELL, 100_000, OrdType.LIMIT, 40000))
        profile = {"name": "Lead", "symbols": SYMBOL, "profitShare": "10"}
        assert v.signed("POST", "/copy/leader", profile, key=leader_key).status_code == 200
        row = v.signed("POST", "/copy/follow", {"leader": LEADER, "allocation": "1000"})
        assert row.status_code == 200, row.text
        v.execute(PlaceOrder(0, LEADER, SYMBOL, Side.BUY, 2000, OrdType.LIMIT, 40000, None, IOC))
        v.wait_idle()
        return int(row.json()["account"])

    follower = _serve(venue, follower_key, setup)
    # the venue runs without its services (no server): the leader's fill is durable, unmirrored
    venue = _open(data_dir)
    venue.start()
    try:
        venue.sequencer.execute(
            PlaceOrder(0, LEADER, SYMBOL, Side.BUY, 3000, OrdType.LIMIT, 40000, None, IOC)
        )
    finally:
        venue.stop()
    assert _position(venue, LEADER) == 5000
    assert _position(venue, follower) == 2000
    # opened and served again: the missed fill is mirrored, the first one is not repeated
    venue = _open(data_dir)
    _serve(venue, follower_key, lambda v: None)
    assert _position(venue, follower) == 5000
    venue = _open(data_dir)
    _serve(venue, follower_key, lambda v: None)
    assert _position(venue, follower) == 5000  # a further restart changes nothing
    audit.audit(venue.sequencer.engine.state)
