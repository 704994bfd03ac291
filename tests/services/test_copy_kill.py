"""Kill -9 a real ``perpetua run`` right after a leader's fill, while the copy service mirrors
it, restart it, and check: every leader fill is mirrored exactly once (no follower clOrdID
names two orders, one follower order per leader fill), the follower's position is the
leader's (ratio 1), and the ledger is conserved. The bot equivalent is
``test_bots_restart.py``; a clean restart is ``test_copy_restart.py``."""

import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from perpetua.core import audit
from perpetua.core.commands import Deposit, IndexPrice, PlaceOrder
from perpetua.core.enums import OrdType, Side
from perpetua.runtime.config import FeedsConfig, VenueConfig
from perpetua.runtime.venue import open_venue
from perpetua.sequencer import Sequencer
from perpetua.store import default_url, open_engine
from perpetua.store.schema import orders
from tests.services.test_bots_restart import Api, _free_port, _start, _wait

pytestmark = pytest.mark.slow  # real processes

SYMBOL = "XBTUSDT"
USDT = 1_000_000
FOLLOWER, LEADER, MAKER = 1, 10, 2
KILLS = 3
FILL_QTY = 1_000  # each leader order: one fill against the maker's resting sell


def _prepare(data_dir: Path) -> dict[int, tuple[str, str]]:
    saved = os.umask(0o022)
    try:
        venue = open_venue(
            VenueConfig(data_dir=data_dir, operator_key="op", feeds=FeedsConfig(default="none"))
        )
    finally:
        os.umask(saved)
    keys = {}
    for user in (FOLLOWER, LEADER):
        venue.accounts.create_user(f"u{user}@example.com", "a long test password", user)
        keys[user] = venue.accounts.issue_api_key(user, ["order"], [], "k")
    venue.start()
    try:
        venue.sequencer.execute(Deposit(0, FOLLOWER, "USDt", 10_000 * USDT, "f"))
        venue.sequencer.execute(Deposit(0, LEADER, "USDt", 100_000 * USDT, "l"))
        venue.sequencer.execute(Deposit(0, MAKER, "USDt", 10**9 * USDT, "m"))
        venue.sequencer.execute(IndexPrice(0, ".BXBTT", 20_000, 1))
        venue.sequencer.execute(
            PlaceOrder(0, MAKER, SYMBOL, Side.SELL, 100_000, OrdType.LIMIT, 40000)
        )
    finally:
        venue.stop()
    return keys


def _mirrored(follower: Api, qty: int) -> bool:
    [row] = follower.call("GET", "/copy/follow")
    return bool(row["positions"].get(SYMBOL) == qty)


def test_kill_9_mid_mirroring_resumes_without_duplicate_follower_orders(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    keys = _prepare(data_dir)
    port = _free_port()
    config = tmp_path / "perpetua.toml"
    config.write_text(
        f'data_dir = "{data_dir}"\noperator_key = "op"\n[server]\nport = {port}\n'
        '[feeds]\ndefault = "none"\n[rate_limits]\nenabled = false\n'
    )
    follower, leader = Api(port, keys[FOLLOWER]), Api(port, keys[LEADER])
    process = _start(config)
    try:
        _wait(lambda: leader.call("GET", f"/instrument?symbol={SYMBOL}"))
        leader.call(
            "POST", "/copy/leader", {"name": "Lead", "symbols": SYMBOL, "profitShare": "10"}
        )
        account = follower.call("POST", "/copy/follow", {"leader": LEADER, "allocation": "1000"})[
            "account"
        ]
        order: dict[str, Any] = {
            "symbol": SYMBOL, "side": "Buy", "orderQty": FILL_QTY, "price": "20000",
            "timeInForce": "ImmediateOrCancel",
        }  # fmt: skip
        for kill in range(1, KILLS + 1):
            filled = leader.call("POST", "/order", order)
            assert filled["ordStatus"] == "Filled", filled
            process.send_signal(signal.SIGKILL)  # the fill is durable; its mirror may not be
            process.wait(30)
            process = _start(config)
            _wait(lambda kill=kill: _mirrored(follower, kill * FILL_QTY))
        process.send_signal(signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
    with open_engine(default_url(data_dir)).connect() as conn:
        ids = [
            r.cl_ord_id
            for r in conn.execute(select(orders.c.cl_ord_id).where(orders.c.account == account))
        ]
    assert len(ids) == KILLS and all(n == 1 for n in Counter(ids).values()), Counter(ids)
    engine = Sequencer.open(data_dir).engine
    positions = engine.state.markets[SYMBOL].positions
    assert positions[LEADER].qty == positions[account].qty == KILLS * FILL_QTY
    audit.audit(engine.state)
