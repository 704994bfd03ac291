"""A real event stream: an ``Engine(default_catalogue())`` driven through deposits, orders,
trades on two days, an amend, cancels, spot fills, withdrawals and one order left open,
numbered as the sequencer does (seq from 1, one record per command)."""

from typing import Any

from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import (
    AmendOrder,
    CancelOrders,
    Deposit,
    PlaceOrder,
    WithdrawalCancel,
    WithdrawalComplete,
    WithdrawalRequest,
)
from perpetua.core.engine import Engine
from perpetua.core.enums import OrdType, Side
from perpetua.store.projector import Record

T0 = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
S = 1_000_000_000
DAY = 86_400 * S
XBT = 100_000_000
USDT = 1_000_000
P = 200_000  # XBTUSD 20,000.0 in ticks of 0.1
SP = 40_000  # XBT_USDT 20,000.0 in ticks of 0.5


def buy(ts: int, account: int, symbol: str, qty: int, price: int | None, cl: str) -> PlaceOrder:
    kind = OrdType.LIMIT if price is not None else OrdType.MARKET
    return PlaceOrder(ts, account, symbol, Side.BUY, qty, kind, price, cl_ord_id=cl)


def sell(ts: int, account: int, symbol: str, qty: int, price: int | None, cl: str) -> PlaceOrder:
    kind = OrdType.LIMIT if price is not None else OrdType.MARKET
    return PlaceOrder(ts, account, symbol, Side.SELL, qty, kind, price, cl_ord_id=cl)


def commands() -> list[Any]:
    return [
        Deposit(T0, 1, "XBt", 10 * XBT, "dep-1x"),
        Deposit(T0, 2, "XBt", 10 * XBT, "dep-2x"),
        Deposit(T0, 3, "XBt", 10 * XBT, "dep-3x"),
        Deposit(T0, 1, "USDt", 100_000 * USDT, "dep-1u"),
        Deposit(T0, 2, "USDt", 100_000 * USDT, "dep-2u"),
        buy(T0 + 1 * S, 1, "XBTUSD", 100, P, "a1"),
        sell(T0 + 2 * S, 2, "XBTUSD", 200, P, "b1"),  # trade 100 @ P, rests 100
        AmendOrder(T0 + 3 * S, 2, orig_cl_ord_id="b1", order_qty=300),
        buy(T0 + 70 * S, 3, "XBTUSD", 100, P + 10, "c1"),  # trade 100 @ P, next 1m bin
        CancelOrders(T0 + 80 * S, 2, cl_ord_ids=("b1",)),
        buy(T0 + 130 * S, 1, "XBTUSD", 100, P - 10, "a2"),
        sell(T0 + 140 * S, 3, "XBTUSD", 100, None, "c2"),  # 100 @ P-10: closes 3's long
        buy(T0 + 150 * S, 1, "XBT_USDT", 100, SP, "s1"),
        sell(T0 + 151 * S, 2, "XBT_USDT", 100, None, "s2"),
        WithdrawalRequest(T0 + 200 * S, 1, "XBt", 1_000_000, 10_000, "w1"),
        WithdrawalComplete(T0 + 210 * S, "w1"),
        WithdrawalRequest(T0 + 220 * S, 2, "XBt", 2_000_000, 10_000, "w2"),
        WithdrawalCancel(T0 + 230 * S, "w2"),
        buy(T0 + 240 * S, 3, "XBTUSD", 100, P + 20, "c3"),  # rests: open at the end
        sell(T0 + DAY + 5 * S, 2, "XBTUSD", 100, P + 20, "b2"),  # next day: fills c3
        buy(T0 + DAY + 10 * S, 3, "XBTUSD", 100, P - 1000, "c4"),  # stays open
    ]


def run() -> tuple[Engine, list[Record]]:
    engine = Engine(default_catalogue())
    records: list[Record] = []
    for seq, command in enumerate(commands(), start=1):
        records.append((seq, command.ts_ns, command, engine.apply(command)))
    return engine, records
