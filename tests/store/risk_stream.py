"""A real event stream through the risk engine: an isolated ETHUSDT long liquidated with a
surplus (the fund's order fills against a bid), funding on XBTUSD, a second isolated long whose
loss the fund cannot cover (auto-deleveraging), and XBTH27 settling at expiry. Numbered as the
sequencer does (seq from 1, one record per command)."""

from typing import Any

from perpetua.core.catalogue import default_catalogue, quarterly_expiry_ns
from perpetua.core.commands import (
    Deposit,
    IndexPrice,
    PlaceOrder,
    SetInterestRate,
    SetLeverage,
    Tick,
)
from perpetua.core.engine import Engine
from perpetua.core.enums import OrdType, Side
from perpetua.core.events import PositionChanged
from perpetua.store.projector import Record

HOUR = 3_600_000_000_000
USDT = 1_000_000
XBT = 100_000_000
ETH = "ETHUSDT"
P = 20  # ETHUSDT ticks per dollar
EXPIRY = quarterly_expiry_ns(2027, 1)  # XBTH27


class Stream:
    def __init__(self) -> None:
        self.engine = Engine(default_catalogue())
        self.records: list[Record] = []
        self.ts = HOUR // 2

    def apply(self, command: Any, at: int = 0) -> list[object]:
        self.ts = max(self.ts + 1, at)
        stamped = command._replace(ts_ns=self.ts)
        events = self.engine.apply(stamped)
        self.records.append((len(self.records) + 1, self.ts, stamped, events))
        return events

    def order(self, account: int, symbol: str, side: Side, qty: int, price: int) -> list[object]:
        return self.apply(PlaceOrder(0, account, symbol, side, qty, OrdType.LIMIT, price=price))

    def isolated_long(self, account: int) -> PositionChanged:
        self.apply(Deposit(0, account, "USDt", 100 * USDT, f"d{account}"))
        self.apply(IndexPrice(0, ".BETHT", 2000, 1))
        self.apply(SetLeverage(0, account, ETH, 1000))
        self.order(2, ETH, Side.SELL, 2000, 2000 * P)
        events = self.order(account, ETH, Side.BUY, 2000, 2000 * P)
        return [e for e in events if isinstance(e, PositionChanged) and e.account == account][-1]


def run() -> tuple[Engine, list[Record]]:
    s = Stream()
    for account in (2, 3):
        s.apply(Deposit(0, account, "USDt", 100_000 * USDT, f"d{account}"))
    for account in (5, 6):
        s.apply(Deposit(0, account, "XBt", 10 * XBT, f"d{account}"))
    s.apply(SetInterestRate(0, ETH, 0))
    row = s.isolated_long(1)
    assert row.bankrupt_price is not None and row.liquidation_price is not None
    s.order(3, ETH, Side.BUY, 2000, row.bankrupt_price + 20)  # takes the fund's order
    s.apply(IndexPrice(0, ".BETHT", row.liquidation_price - 1, P))  # liquidates account 1
    s.apply(IndexPrice(0, ".BXBT", 60_000, 1), at=2 * HOUR)
    s.order(6, "XBTUSD", Side.SELL, 1000, 600_000)
    s.order(5, "XBTUSD", Side.BUY, 1000, 600_000)
    s.apply(Tick(0), at=4 * HOUR)  # funding: 5 pays 6
    s.isolated_long(4)
    s.apply(IndexPrice(0, ".BETHT", 1000, 1))  # far below bankruptcy: deleverages account 2
    s.apply(IndexPrice(0, ".BXBT", 60_000, 1), at=EXPIRY - 2 * HOUR)
    s.order(6, "XBTH27", Side.SELL, 6000, 600_000)
    s.order(5, "XBTH27", Side.BUY, 6000, 600_000)
    s.apply(Tick(0), at=EXPIRY)  # XBTH27 settles
    return s.engine, s.records
