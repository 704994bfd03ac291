"""Copy trading in a real venue: each mirrored leader action (fill, partial fill, amend, cancel,
leverage change, close), a failing follower order reported without blocking the leader, the
drawdown stop (on the mark, not on a print), profit share on a high-water mark over gains and
losses, the leaderboard, and conservation (the core's audit) after each scenario."""

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from perpetua.core.commands import (
    AmendOrder,
    CancelAll,
    CancelOrders,
    Command,
    Deposit,
    PlaceOrder,
    SetLeverage,
)
from perpetua.core.enums import OrdType, Side, TimeInForce
from perpetua.services.copytrading import CopyService
from tests.services.bot_venue import BotVenue, Key, bot_venue

USDT = 1_000_000
SYMBOL = "XBTUSDT"
LEADER, MM, TAKER = 10, 1_000_010, 1_000_011
FOLLOWER = 1  # alice, the harness's user


class Copy:
    def __init__(self, v: BotVenue, leader: Key) -> None:
        self.v = v
        self.leader = leader

    @property
    def service(self) -> CopyService:
        assert self.v.venue.copy is not None
        return self.v.venue.copy

    def run(self, command: Command) -> Any:
        result = self.v.execute(command)
        self.v.wait_idle()
        return result

    def order(
        self,
        account: int,
        side: Side,
        qty: int,
        price: int,
        tif: TimeInForce | None = None,
        cl: str = "",
    ) -> Any:
        return self.run(
            PlaceOrder(0, account, SYMBOL, side, qty, OrdType.LIMIT, price, None, tif, cl_ord_id=cl)
        )

    def print_at(self, price: int) -> None:
        """Move the last price: the maker rests one lot, the taker takes it."""
        self.run(PlaceOrder(0, MM, SYMBOL, Side.BUY, 1000, OrdType.LIMIT, price))
        self.run(
            PlaceOrder(
                0,
                TAKER,
                SYMBOL,
                Side.SELL,
                1000,
                OrdType.LIMIT,
                price,
                None,
                TimeInForce.IMMEDIATE_OR_CANCEL,
            )
        )

    def move_to(self, price: int) -> None:
        """Move the index (so the mark, at which positions are valued) and the last price."""
        self.v.index(SYMBOL, price)
        self.print_at(price)

    def follow(self, **params: Any) -> dict[str, Any]:
        body = {"leader": LEADER, "allocation": "1000", **params}
        response = self.v.signed("POST", "/copy/follow", body)
        assert response.status_code == 200, response.text
        self.v.wait_idle()
        return response.json()

    def position(self, account: int) -> int:
        pos = self.v.venue.sequencer.engine.state.markets[SYMBOL].positions.get(account)
        return 0 if pos is None else int(pos.qty)

    def open_orders(self, account: int) -> list[Any]:
        return [
            o for o in self.v.venue.sequencer.engine.state.orders.values() if o.account == account
        ]


@contextmanager
def copying(tmp_path: Path, leader_share: str = "10") -> Iterator[Copy]:
    with bot_venue(tmp_path, {"USDt": 10_000 * USDT}) as v:
        leader = v.add_user(LEADER, {"USDt": 100_000 * USDT})
        for account in (MM, TAKER):
            v.execute(Deposit(0, account, "USDt", 10**9 * USDT, f"mm-{account}"))
        v.index(SYMBOL, 40000)
        c = Copy(v, leader)
        profile = v.signed(
            "POST",
            "/copy/leader",
            {"name": "Lead", "symbols": SYMBOL, "leverageCap": "5", "profitShare": leader_share},
            key=leader,
        )
        assert profile.status_code == 200, profile.text
        c.print_at(40000)
        yield c
        v.audit()


def test_a_leader_fill_is_mirrored_in_the_next_batch_by_ratio(tmp_path: Path) -> None:
    with copying(tmp_path) as c:
        row = c.follow(mode="ratio", ratio="0.5", slippage="0.5")
        follower = row["account"]
        c.order(MM, Side.SELL, 100_000, 40000)
        leader_fill = c.order(
            LEADER, Side.BUY, 10_000, 40000, TimeInForce.IMMEDIATE_OR_CANCEL, "L1"
        )
        assert c.position(LEADER) == 10_000
        assert c.position(follower) == 5_000
        rows = c.v.signed("GET", "/copy/follow").json()
        assert rows[0]["mirrored"] == 1 and rows[0]["positions"] == {SYMBOL: 5000}
        follow = c.service.follows[row["followId"]]
        assert follow.open == {}  # IOC: the leader's order is done, nothing left working
        # the follower's order is the very next command after the leader's
        assert follow.last_command_seq == leader_fill.seq + 1


def test_partial_fill_amend_and_cancel_are_mirrored(tmp_path: Path) -> None:
    with copying(tmp_path) as c:
        row = c.follow(mode="fixed", fixedQty="2000", slippage="0.5")
        follower = row["account"]
        c.order(MM, Side.SELL, 3000, 40000)
        c.order(MM, Side.SELL, 100_000, 41000)
        c.order(LEADER, Side.BUY, 10_000, 40000, None, "L2")  # fills 3000, the rest works
        mirrors = c.open_orders(follower)
        assert len(mirrors) == 1 and mirrors[0].price == 40200  # +0.5%, resting while L2 works
        c.run(AmendOrder(0, LEADER, orig_cl_ord_id="L2", price=40100))
        mirrors = c.open_orders(follower)
        assert len(mirrors) == 1 and mirrors[0].price == 40300  # re-priced from the new price
        c.run(CancelOrders(0, LEADER, cl_ord_ids=("L2",)))
        assert c.open_orders(follower) == []


def test_leverage_change_and_close_are_mirrored(tmp_path: Path) -> None:
    with copying(tmp_path) as c:
        row = c.follow(mode="ratio", ratio="0.5", leverageCap="3")
        follower = row["account"]
        c.order(MM, Side.SELL, 100_000, 40000)
        c.order(MM, Side.BUY, 100_000, 39990)
        c.run(SetLeverage(0, LEADER, SYMBOL, 200))
        c.order(LEADER, Side.BUY, 10_000, 40000, TimeInForce.IMMEDIATE_OR_CANCEL)
        c.run(SetLeverage(0, LEADER, SYMBOL, 500))
        positions = c.v.venue.sequencer.engine.state.markets[SYMBOL].positions
        assert positions[follower].leverage_e2 == 300  # capped by the follower's 3x
        assert c.position(follower) == 5000
        # the leader sells 4000 (ratio: the follower 2000), then closes: so does the follower
        c.order(LEADER, Side.SELL, 4000, 39990, TimeInForce.IMMEDIATE_OR_CANCEL)
        assert c.position(follower) == 3000
        c.order(LEADER, Side.SELL, 6000, 39990, TimeInForce.IMMEDIATE_OR_CANCEL)
        assert c.position(LEADER) == 0
        assert c.position(follower) == 0


def test_a_failing_follower_order_is_reported_and_never_blocks_the_leader(tmp_path: Path) -> None:
    with copying(tmp_path) as c:
        row = c.follow(mode="fixed", fixedQty="1000000", allocation="1")  # cannot afford it
        c.order(MM, Side.SELL, 100_000, 40000)
        c.order(LEADER, Side.BUY, 10_000, 40000, TimeInForce.IMMEDIATE_OR_CANCEL)
        assert c.position(LEADER) == 10_000
        assert c.position(row["account"]) == 0
        copied = c.v.signed("GET", "/copy/follow").json()[0]
        assert copied["failed"] == 1 and "insufficient" in copied["lastError"]
        notes = c.v.venue.notifications.private_rows(FOLLOWER)
        assert any("not copied" in n["title"] for n in notes)


def test_stop_loss_on_the_allocation_stops_copying_and_closes(tmp_path: Path) -> None:
    with copying(tmp_path) as c:
        row = c.follow(mode="ratio", ratio="1", stopLoss="1")
        follower = row["account"]
        c.order(MM, Side.SELL, 100_000, 40000)
        c.order(LEADER, Side.BUY, 20_000, 40000, TimeInForce.IMMEDIATE_OR_CANCEL)
        assert c.position(follower) == 20_000  # 0.02 XBT: 400 USDT of 1000 allocated
        c.print_at(39000)  # a print 2.5% down, the mark unmoved: positions are valued at the mark
        assert c.v.signed("GET", "/copy/follow").json()[0]["state"] == "active"
        c.v.index(SYMBOL, 39000)  # the mark -2.5%: -10 USDT = -1% of the allocation
        c.v.wait_idle()
        copied = c.v.signed("GET", "/copy/follow").json()[0]
        assert copied["state"] == "stopped" and copied["reason"].startswith("stop-loss")
        assert c.position(follower) == 20_000  # no bid to close into: it waits for the market
        assert "no liquidity" in copied["lastError"]
        c.order(MM, Side.BUY, 100_000, 38500)  # within the 5% band of the mark
        c.print_at(38900)
        assert c.position(follower) == 0  # closed into the maker's bid on the next print
        c.order(LEADER, Side.BUY, 1000, 40000, TimeInForce.IMMEDIATE_OR_CANCEL)
        assert c.position(follower) == 0  # no longer copying


def test_profit_share_on_a_high_water_mark_over_gains_and_losses(tmp_path: Path) -> None:
    with copying(tmp_path, leader_share="10") as c:
        row = c.follow(mode="ratio", ratio="1")
        follow_id = row["followId"]
        c.order(MM, Side.SELL, 100_000, 40000)
        c.order(LEADER, Side.BUY, 10_000, 40000, TimeInForce.IMMEDIATE_OR_CANCEL)
        c.run(CancelAll(0, MM))  # the price may now rise through the maker's old asks
        follow = c.service.follows[follow_id]
        ledger = c.v.venue.sequencer.engine.state.ledger

        def settle() -> list[dict[str, Any]]:
            c.v.wait_idle()
            paid = asyncio.run_coroutine_threadsafe(c.service.settle(), _loop(c)).result(10)
            c.v.wait_idle()
            return paid

        start = follow.equity(c.service.marks)
        assert settle() == []  # no gain yet (fees paid: below the allocation)
        c.move_to(41000)  # +2.5% on 0.01 XBT: +5 USDT
        gain_equity = follow.equity(c.service.marks)
        leader_before = int(ledger.balance(LEADER, "USDt"))
        paid = settle()
        fee = (gain_equity - 1000 * USDT) // 10
        assert paid == [
            {"followId": follow_id, "leader": LEADER, "amount": fee, "highWater": gain_equity - fee}
        ]
        assert int(ledger.balance(LEADER, "USDt")) == leader_before + fee
        c.move_to(40000)  # a loss: nothing paid
        assert settle() == []
        c.move_to(40800)  # back up, but below the mark: nothing paid
        assert follow.equity(c.service.marks) < follow.high_water
        assert settle() == []
        c.move_to(42000)  # above the mark: the share of the excess only
        mark = follow.high_water
        equity = follow.equity(c.service.marks)
        paid = settle()
        assert paid[0]["amount"] == (equity - mark) // 10
        assert start < equity


def test_leaderboard_and_track_record(tmp_path: Path) -> None:
    with copying(tmp_path) as c:
        c.follow(mode="ratio", ratio="0.5")
        c.order(MM, Side.SELL, 100_000, 40000)
        c.order(MM, Side.BUY, 100_000, 39000)
        c.order(LEADER, Side.BUY, 10_000, 40000, TimeInForce.IMMEDIATE_OR_CANCEL)
        time.sleep(0.05)
        c.order(LEADER, Side.SELL, 10_000, 39000, TimeInForce.IMMEDIATE_OR_CANCEL)
        time.sleep(0.3)  # the read models follow the journal
        board = c.v.client.get("/api/v1/leaderboard?method=ROE").json()
        assert board[0]["name"] == "Lead" and board[0]["isRealName"] is False
        assert board[0]["profit"] < 0
        leaders = c.v.client.get("/api/v1/copy/leaders").json()
        record = leaders[0]
        assert record["trips"] == 1 and record["winRatePpm"] == 0
        assert record["averageHoldingMs"] >= 0 and record["maxDrawdownPpm"] > 0
        assert record["followers"] == 1 and record["assetsUnderCopy"] > 0
        assert c.v.client.get("/api/v1/leaderboard?method=bad").status_code == 400


def test_bad_follow_parameters_answer_400(tmp_path: Path) -> None:
    with copying(tmp_path) as c:
        for params, message in [
            ({"leader": 999}, "not a lead trader"),
            ({"leader": LEADER, "allocation": "0"}, "allocation: must be positive"),
            ({"leader": LEADER, "allocation": "100000"}, "more than the available balance"),
            ({"leader": LEADER, "allocation": "10", "mode": "x"}, "mode: ratio or fixed"),
            ({"leader": LEADER, "allocation": "10", "slippage": "50"}, "slippage"),
        ]:
            response = c.v.signed("POST", "/copy/follow", params)
            assert response.status_code == 400, response.text
            assert message in response.json()["error"]["message"]
        assert c.v.signed("GET", "/copy/follow").json() == []


def _loop(c: Copy) -> asyncio.AbstractEventLoop:
    loop = c.service._loop
    assert loop is not None
    return loop
