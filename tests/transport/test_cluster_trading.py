"""Users' trading bots and copy trading in cluster mode with real processes: one nats-server,
two sequencers (s1 leads, s2 stands by), a projector and two gateways over PostgreSQL.

1. A neutral futures grid on XBTUSDT created through gateway 1 places its four orders from the
   leader; gateway 2 lists it (the mirror), a backtest runs on a gateway; a taker's fill makes
   it place the next order of that interval.
2. A lead trader's profile and a follower's copy relationship made through the gateways; a
   leader fill on ETHUSDT is copied into the follower's sub-account.
3. A leader fill and a grid fill, then at once ``kill -9`` of the leader: the standby takes
   the lease, seeds the services from the read models and the stream, and places what the
   dead leader had not (the copy of the last fill, the grid's next order), once. A fill after
   the failover is copied and worked by the new leader.
4. Every clOrdID of the follower's and the bot's accounts names one order; one copy per
   leader fill; the follower's position is the leader's (ratio 1); the stream replayed into a
   fresh engine passes the core's audit (conservation); stopping both through a gateway
   cancels the bot's orders.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from sqlalchemy import select, update

from perpetua.core.commands import PlaceOrder, WalletTransfer
from perpetua.core.enums import ExecType
from perpetua.runtime.cluster_dev import DevCluster, node_status
from perpetua.runtime.natsd import free_port, nats_server_binary
from perpetua.store import open_engine
from perpetua.store.schema import copy_follows, executions, orders, wallets
from tests.store.databases import postgres_schema_url
from tests.transport.load import records_of
from tests.transport.test_cluster import Client, leader, wait_http

pytestmark = pytest.mark.slow

BOT_SYMBOL, COPY_SYMBOL = "XBTUSDT", "ETHUSDT"
MAKER, TAKER, BOTTER, LEAD, FOLLOWER = 21, 22, 23, 24, 25
USDT = 10**6
WAIT_S = 60.0
STEP = 100  # the grid's spacing in USDT


class Api(Client):
    """A ``Client`` whose signed requests wait 60 s: a failover can hold one that long."""

    timeout_s = 60.0

    def call(self, verb: str, path: str, body: dict[str, Any] | None = None) -> Any:
        response = self.signed(verb, path, body)
        assert response.status_code == 200, response.text
        return response.json()

    def as_user(self, user: int, currency: str, amount: int) -> Api:
        key = self.admin("apiKey", {"userId": user, "permissions": "order"})
        self.admin("faucet", {"account": user, "currency": currency, "amount": amount})
        return Api(self.port, (key["id"], key["secret"]))

    def on(self, port: int) -> Api:
        return Api(port, self.key)


@dataclass
class Rig:
    cluster: DevCluster
    g1: int
    g2: int
    url: str

    def log(self, name: str) -> str:
        return self.cluster.procs[name].log.read_text(errors="replace")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed")
    root: Path = tmp_path_factory.mktemp("cluster-trading")
    with postgres_schema_url() as url:
        cluster = DevCluster(
            root / "c", nats_nodes=1, prefix="tr", database_url=url, reuse_port=False,
            rate_limits=False,
        )  # fmt: skip
        cluster.start_nats()
        try:
            for role, name in (("sequencer", "s1"), ("projector", "p1")):
                cluster.add(role, name)
                cluster.start(name)
            cluster.add("sequencer", "s2")  # a standby, started once s1 leads
            assert asyncio.run(leader(cluster)) == "s1"
            cluster.start("s2")
            ports = {"g1": free_port(), "g2": free_port()}
            for name, port in ports.items():
                cluster.add("gateway", name, port=port)
                cluster.start(name)
            for port in ports.values():
                wait_http(port)
            yield Rig(cluster, ports["g1"], ports["g2"], url)
        except BaseException:
            for name, proc in cluster.procs.items():
                if proc.log.exists():
                    print(f"--- {name}\n{proc.log.read_text(errors='replace')[-4000:]}")
            raise
        finally:
            codes = cluster.stop()
        assert all(code in (0, -9, None) for code in codes.values()), codes


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def post_until_ok(api: Api, path: str, body: dict[str, Any]) -> Any:
    """POST until 200 (a 400 changed nothing), or fail with the last answer."""
    deadline = time.monotonic() + WAIT_S
    while True:
        response = api.signed("POST", path, body)
        if response.is_success or time.monotonic() > deadline:
            assert response.status_code == 200, response.text
            return response.json()
        time.sleep(0.2)


def instrument(api: Api, symbol: str) -> dict[str, Any]:
    [row] = api.call("GET", f"/instrument?symbol={symbol}")
    return dict(row)


def order(symbol: str, side: str, qty: int, price: Decimal, tif: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {
        "symbol": symbol, "side": side, "orderQty": qty, "price": float(price), "ordType": "Limit",
    }  # fmt: skip
    if tif:
        body["timeInForce"] = tif
    return body


def away(price: Decimal, factor: str) -> Decimal:
    """``price`` x ``factor`` in whole units (on the tick grid of both markets)."""
    return (price * Decimal(factor)).quantize(Decimal(1))


def cl_ord_ids(url: str, account: int) -> Counter[str]:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(orders.c.cl_ord_id).where(orders.c.account == account))
            return Counter(str(r.cl_ord_id) for r in rows)
    finally:
        engine.dispose()


def fills_of(url: str, account: int) -> list[int]:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(executions.c.exec_id).where(
                    executions.c.account == account, executions.c.exec_type == int(ExecType.TRADE)
                )
            )
            return [int(r.exec_id) for r in rows]
    finally:
        engine.dispose()


def services_started(log: str) -> bool:
    return "bots and copy trading started" in log


def test_bots_and_copy_trading_through_a_failover(rig: Rig) -> None:
    try:
        _phases(rig)
    except BaseException:
        for name, proc in rig.cluster.procs.items():
            if proc.log.exists():
                print(f"--- {name}\n{proc.log.read_text(errors='replace')[-6000:]}")
        raise


def _phases(rig: Rig) -> None:
    g1 = Api(rig.g1)
    maker = g1.as_user(MAKER, "USDt", 1_000_000 * USDT)
    taker = g1.as_user(TAKER, "USDt", 1_000_000 * USDT)
    botter = g1.as_user(BOTTER, "USDt", 10_000 * USDT)
    lead = g1.as_user(LEAD, "USDt", 100_000 * USDT)
    follower = g1.as_user(FOLLOWER, "USDt", 10_000 * USDT)
    wait_for(lambda: services_started(rig.log("s1")), "the leader's bots and copy trading")
    assert not services_started(rig.log("s2"))
    # a last price on each market: a trade at the mark, and the maker's quotes 1% away
    prices: dict[str, Decimal] = {}
    for symbol in (BOT_SYMBOL, COPY_SYMBOL):
        spec = instrument(g1, symbol)
        mark = wait_for(lambda s=symbol: instrument(g1, s).get("markPrice"), f"{symbol} mark")
        price = Decimal(int(mark))
        prices[symbol] = price
        lot = int(spec["lotSize"])
        maker.call("POST", "/order", order(symbol, "Sell", lot, price))
        taker.call("POST", "/order", order(symbol, "Buy", lot, price, "ImmediateOrCancel"))
        maker.call("POST", "/order", order(symbol, "Sell", 1000 * lot, away(price, "1.01")))
        maker.call("POST", "/order", order(symbol, "Buy", 1000 * lot, away(price, "0.99")))
    p = prices[BOT_SYMBOL]
    wait_for(lambda: instrument(g1, BOT_SYMBOL).get("lastPrice") == float(p), "the last price")

    # 1. a neutral grid: buys at p-200, p-100, sells at p+100, p+200
    grid = {
        "kind": "futuresGrid", "symbol": BOT_SYMBOL, "lowerPrice": str(p - 2 * STEP),
        "upperPrice": str(p + 2 * STEP), "grids": 4, "direction": "neutral",
        "investment": "1000", "leverage": "1",
    }  # fmt: skip
    now = time.time_ns()
    csv = f"{now},{p}\n{now + 10**9},{p - STEP}\n"
    backtest = botter.call("POST", "/bot/backtest", {**grid, "csv": csv})
    assert backtest["trades"] == 2 and backtest["kind"] == "futuresGrid", backtest
    created = botter.call("POST", "/bot", grid)
    bot_id, bot_account = int(created["botId"]), int(created["account"])
    assert created["state"] == "running", created
    prefix = f"b{bot_id}."
    first = {f"{prefix}g0.0", f"{prefix}g1.0", f"{prefix}g2.0", f"{prefix}g3.0"}
    wait_for(lambda: set(cl_ord_ids(rig.url, bot_account)) == first, "the grid's orders")
    on_g2 = botter.on(rig.g2)
    listed = wait_for(lambda: on_g2.call("GET", "/bot"), "the bot on gateway 2")
    assert [row["botId"] for row in listed] == [bot_id]
    status = wait_for(
        lambda: (s := on_g2.call("GET", f"/bot/status?botId={bot_id}"))["orders"] and s,
        "the bot's orders on gateway 2",
    )
    qty = int(status["plan"]["qty"])
    taker.call("POST", "/order", order(BOT_SYMBOL, "Sell", qty, p - STEP, "ImmediateOrCancel"))
    wait_for(lambda: f"{prefix}g1.1" in cl_ord_ids(rig.url, bot_account), "the grid's next order")

    # 2. a lead trader and a follower; a leader fill is copied
    e = prices[COPY_SYMBOL]
    ask = away(e, "1.01")
    lot = int(instrument(g1, COPY_SYMBOL)["lotSize"])
    profile = lead.call("POST", "/copy/leader", {"name": "Lead", "symbols": COPY_SYMBOL})
    assert profile["account"] == LEAD
    terms = {"leader": LEAD, "allocation": "5000", "slippage": "1"}
    # gateway 2 knows the profile once the leader's mirror reaches it
    follow = post_until_ok(follower.on(rig.g2), "/copy/follow", terms)
    follow_id, copier = int(follow["followId"]), int(follow["account"])
    leaders = wait_for(lambda: lead.on(rig.g2).call("GET", "/copy/leaders"), "the leaders")
    assert [row["account"] for row in leaders] == [LEAD] and leaders[0]["followers"] == 1
    board = httpx.get(f"http://127.0.0.1:{rig.g1}/api/v1/leaderboard", timeout=30)
    assert board.status_code == 200 and [r["name"] for r in board.json()] == ["Lead"], board.text

    def lead_buys() -> None:
        filled = lead.call(
            "POST", "/order", order(COPY_SYMBOL, "Buy", lot, ask, "ImmediateOrCancel")
        )
        assert filled["ordStatus"] == "Filled", filled

    def copied(n: int) -> bool:
        [row] = follower.call("GET", "/copy/follow")
        return bool(row["positions"].get(COPY_SYMBOL) == n * lot)

    lead_buys()
    wait_for(lambda: copied(1), "the first copy")

    # 3. fills, then kill -9 of the leader at once: the new leader carries on
    taker.call("POST", "/order", order(BOT_SYMBOL, "Buy", qty, p, "ImmediateOrCancel"))
    lead_buys()
    assert "stepping down" not in rig.log("s1")
    rig.cluster.kill("s1")
    assert asyncio.run(leader(rig.cluster, exclude="s1")) == "s2"
    wait_for(lambda: services_started(rig.log("s2")), "the new leader's services")
    wait_for(lambda: copied(2), "the copy of the fill before the kill")
    wait_for(lambda: f"{prefix}g1.2" in cl_ord_ids(rig.url, bot_account), "the grid after")
    lead_buys()
    wait_for(lambda: copied(3), "a copy after the failover")
    taker.call("POST", "/order", order(BOT_SYMBOL, "Sell", qty, p - STEP, "ImmediateOrCancel"))
    wait_for(lambda: f"{prefix}g1.3" in cl_ord_ids(rig.url, bot_account), "the grid's next")

    # 4. nothing twice
    time.sleep(2)  # anything a duplicate would be has had time to land
    copies = cl_ord_ids(rig.url, copier)
    leader_fills = fills_of(rig.url, LEAD)
    assert sorted(copies) == sorted(f"c{follow_id}.{exec_id}" for exec_id in leader_fills)
    assert all(n == 1 for n in copies.values()), copies
    grid_ids = cl_ord_ids(rig.url, bot_account)
    assert all(n == 1 for n in grid_ids.values()), grid_ids
    assert set(grid_ids) == first | {f"{prefix}g1.1", f"{prefix}g1.2", f"{prefix}g1.3"}
    [position] = [r for r in lead.call("GET", "/position") if r["symbol"] == COPY_SYMBOL]
    assert position["currentQty"] == 3 * lot  # and the follower's (copied(3)): ratio 1
    row = botter.on(rig.g2).call("GET", f"/bot/status?botId={bot_id}")
    assert row["fillCount"] == 3 and row["state"] == "running", row
    stopped = botter.on(rig.g2).call("DELETE", "/bot", {"botId": bot_id})
    assert stopped["state"] == "stopped"
    wait_for(lambda: not botter.call("GET", f"/bot/status?botId={bot_id}")["orders"], "cancelled")
    unfollowed = follower.call("DELETE", "/copy/follow", {"followId": follow_id, "close": False})
    assert unfollowed["state"] == "stopped"
    _replica, records = asyncio.run(records_of(rig.cluster.nats.urls, rig.cluster.names))
    placed = Counter(
        c.cl_ord_id for c in records.values() if type(c) is PlaceOrder and c.account == copier
    )
    assert all(n == 1 for n in placed.values()), placed  # none even refused as a duplicate
    assert "Traceback" not in rig.log("s2"), rig.log("s2")[-3000:]


LEAD2, FOLLOWER2, BIDDER = 41, 42, 43  # above the sub-accounts test 1 made (26, 27)


async def _role(cluster: DevCluster, name: str) -> str:
    nc = await nats.connect(list(cluster.nats.urls))
    try:
        status = await node_status(nc, cluster.names, name)
        return "" if status is None else str(status["role"])
    finally:
        await nc.close()


def fail_over(rig: Rig, old: str, new: str) -> None:
    """Start ``new`` as a standby, then ``kill -9`` the leader ``old``: ``new`` leads and its
    services start (one more line in its log)."""
    started = rig.log(new).count("bots and copy trading started") if new in rig.cluster.procs else 0
    rig.cluster.start(new)
    wait_for(lambda: asyncio.run(_role(rig.cluster, new)) == "standby", f"{new} standing by")
    rig.cluster.kill(old)
    assert asyncio.run(leader(rig.cluster, exclude=old)) == new
    wait_for(
        lambda: rig.log(new).count("bots and copy trading started") > started,
        f"{new}'s services",
    )


def follow_row(url: str, follow_id: int) -> Any:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(select(copy_follows).where(copy_follows.c.id == follow_id)).one()
    finally:
        engine.dispose()


def transfers_in(url: str, account: int) -> int:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            value = conn.execute(
                select(wallets.c.transfer_in).where(
                    wallets.c.account == account, wallets.c.currency == "USDt"
                )
            ).scalar()
            return int(value or 0)
    finally:
        engine.dispose()


def test_profit_share_is_paid_once_across_failovers(rig: Rig) -> None:
    """A follower's realised gain pays the leader its share when the next leader starts (each
    leadership settles at its start); a leader that died after the transfer and before storing
    the new mark (the row set back) makes its successor send the same transfer id, which the
    core refuses: the leader is paid once."""
    try:
        _profit_share(rig)
    except BaseException:
        for name, proc in rig.cluster.procs.items():
            if proc.log.exists():
                print(f"--- {name}\n{proc.log.read_text(errors='replace')[-6000:]}")
        raise


def _profit_share(rig: Rig) -> None:
    g1 = Api(rig.g1)
    maker = g1.as_user(MAKER, "USDt", 1_000 * USDT)
    bidder = g1.as_user(BIDDER, "USDt", 1_000_000 * USDT)
    lead = g1.as_user(LEAD2, "USDt", 100_000 * USDT)
    follower = g1.as_user(FOLLOWER2, "USDt", 10_000 * USDT)
    e = Decimal(int(instrument(g1, COPY_SYMBOL)["markPrice"]))
    lot = int(instrument(g1, COPY_SYMBOL)["lotSize"])
    maker.call("DELETE", "/order/all", {"symbol": COPY_SYMBOL})
    maker.call("POST", "/order", order(COPY_SYMBOL, "Sell", 10 * lot, e))
    lead.call("POST", "/copy/leader", {"name": "Lead two", "symbols": COPY_SYMBOL})
    terms = {"leader": LEAD2, "allocation": "1000", "slippage": "1"}
    # gateway 2 knows the profile once the leader's mirror reaches it
    follow = post_until_ok(follower.on(rig.g2), "/copy/follow", terms)
    follow_id, allocation = int(follow["followId"]), int(follow["allocation"])

    def position() -> int | None:
        [row] = follower.call("GET", "/copy/follow")
        return row["positions"].get(COPY_SYMBOL)  # type: ignore[no-any-return]

    buy = lead.call("POST", "/order", order(COPY_SYMBOL, "Buy", lot, e, "ImmediateOrCancel"))
    assert buy["ordStatus"] == "Filled", buy
    wait_for(lambda: position() == lot, "the copied buy")
    maker.call("DELETE", "/order/all", {"symbol": COPY_SYMBOL})
    high = away(e, "1.05")
    bidder.call("POST", "/order", order(COPY_SYMBOL, "Buy", 10 * lot, high))
    sell = lead.call("POST", "/order", order(COPY_SYMBOL, "Sell", lot, high, "ImmediateOrCancel"))
    assert sell["ordStatus"] == "Filled", sell
    wait_for(lambda: position() is None, "the copied close")
    assert transfers_in(rig.url, LEAD2) == 0  # nothing settled yet (hourly, and at a start)

    fail_over(rig, "s2", "s1")  # s1 settles at its start: the realised gain pays the share
    fee = wait_for(lambda: transfers_in(rig.url, LEAD2), "the profit share")
    stored = follow_row(rig.url, follow_id)
    assert stored.high_water > allocation, stored
    # the leader "died" after the transfer, before storing the new mark: the row set back
    engine = open_engine(rig.url)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(copy_follows)
                .where(copy_follows.c.id == follow_id)
                .values(high_water=allocation)
            )
    finally:
        engine.dispose()
    fail_over(rig, "s1", "s2")  # s2 sends the same transfer id: "duplicate"; the mark catches up
    wait_for(lambda: follow_row(rig.url, follow_id).high_water > allocation, "the mark again")
    time.sleep(2)
    assert transfers_in(rig.url, LEAD2) == fee
    _replica, records = asyncio.run(records_of(rig.cluster.nats.urls, rig.cluster.names))
    shares = [
        c.transfer_id
        for c in records.values()
        if type(c) is WalletTransfer and c.transfer_id.startswith(f"ps{follow_id}-")
    ]
    assert shares == [f"ps{follow_id}-{allocation}"] * 2, shares  # sent twice, applied once
    assert "Traceback" not in rig.log("s2"), rig.log("s2")[-3000:]
