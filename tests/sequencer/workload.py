"""Seeded random workloads for replay and crash tests: commands only, no engine needed.

A workload is a list of steps: a command to submit, or ``Advance(ns)`` (move the simulated
clock). It covers every kind of command the core knows: orders of several types (Limit GTC,
IOC, FOK, Day, post-only, hidden, iceberg, Market, Stop, StopLimit, MIT, ReduceOnly), bulk
placement, amends (by order id and by clOrdID), cancels (by id, by clOrdID, all),
cancelAllAfter, index moves, deposits, withdrawals (request, cancel, complete), fee settings,
instrument state changes, ticks, and risk: leverage, isolated margin, funding interest and sharp
index moves (funding and liquidations follow from these and from the clock). The generator
does not watch the engine: it refers to orders by the ids the engine hands out in order (1, 2,
3...) and by the clOrdIDs it chose, so some cancels and amends miss and are rejected, which is
part of what replay must reproduce.
"""

import random
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import NamedTuple

from perpetua.core.commands import (
    AmendOrder,
    Batch,
    CancelAll,
    CancelAllAfter,
    CancelOrders,
    Command,
    Deposit,
    IndexPrice,
    PlaceOrder,
    SetFeeDiscount,
    SetFeeTier,
    SetInstrumentState,
    SetInterestRate,
    SetLeverage,
    Tick,
    TransferMargin,
    WithdrawalCancel,
    WithdrawalComplete,
    WithdrawalRequest,
)
from perpetua.core.enums import ExecInst, OrdType, Side, TimeInForce
from perpetua.sequencer.clock import SimulatedClock
from perpetua.sequencer.runner import Result, Sequencer

NS_PER_S = 1_000_000_000


class Market(NamedTuple):
    symbol: str
    index: str
    index_price: int  # whole units of quote per base, the starting index
    ticks_per_unit: int  # price ticks per whole unit of price
    lot: int


MARKETS = (
    Market("XBTUSD", ".BXBT", 50_000, 10, 100),
    Market("XBTUSDT", ".BXBTT", 50_000, 2, 1000),
    Market("ETHUSD", ".BETH", 3_000, 20, 1),
    Market("XBT_USDT", ".BXBTT", 50_000, 2, 100),
)
FUNDS = (("XBt", 10**12), ("USDt", 10**13), ("Gwei", 10**13), ("BMEx", 10**12))


class Advance(NamedTuple):
    ns: int


Step = Command | Advance


@dataclass
class Generator:
    seed: int
    accounts: int = 8
    rng: random.Random = field(init=False)
    index_units: dict[str, int] = field(init=False)
    cl_ord_ids: list[tuple[int, str]] = field(default_factory=list)  # (account, clOrdID)
    orders_placed: int = 0  # an upper bound on the order ids handed out
    withdrawals: list[str] = field(default_factory=list)
    serial: int = 0
    # SetFeeTier/SetFeeDiscount. Off by default: with open spot orders they break the core's
    # audit today ("order N hold drift": holds are not re-sized to the new fee rate).
    fee_settings: bool = False

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.index_units = {m.index: m.index_price for m in MARKETS}

    def _next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.seed}-{self.serial}"

    def setup(self) -> list[Step]:
        steps: list[Step] = []
        for account in range(1, self.accounts + 1):
            for currency, amount in FUNDS:
                steps.append(Deposit(0, account, currency, amount, self._next_id("d")))
        for index, units in sorted(self.index_units.items()):
            steps.append(IndexPrice(0, index, units, 1))
        return steps

    def _price(self, market: Market, side: int, spread_ticks: int) -> int:
        mid = self.index_units[market.index] * market.ticks_per_unit
        offset = self.rng.randint(-spread_ticks // 4, spread_ticks)
        return max(1, mid - side * offset)

    def place(self, market: Market | None = None) -> PlaceOrder:
        rng = self.rng
        market = market or rng.choice(MARKETS)
        side = rng.choice((Side.BUY, Side.SELL))
        qty = market.lot * rng.randint(1, 20)
        account = rng.randint(1, self.accounts)
        cl_ord_id = self._next_id("c")
        self.cl_ord_ids.append((account, cl_ord_id))
        self.orders_placed += 1
        spot = market.symbol == "XBT_USDT"
        kind = rng.randrange(100)
        price = self._price(market, side, 40)
        base = PlaceOrder(
            0, account, market.symbol, side, qty, OrdType.LIMIT, price=price, cl_ord_id=cl_ord_id
        )
        if kind < 45:
            return base
        if kind < 52:
            return base._replace(time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL)
        if kind < 56:
            return base._replace(time_in_force=TimeInForce.FILL_OR_KILL)
        if kind < 61:
            return base._replace(time_in_force=TimeInForce.DAY)
        if kind < 66:
            return base._replace(exec_inst=ExecInst.PARTICIPATE_DO_NOT_INITIATE)
        if kind < 70:
            return base._replace(display_qty=0)
        if kind < 74:
            return base._replace(display_qty=market.lot)
        if kind < 80:
            return base._replace(ord_type=OrdType.MARKET, price=None)
        stop_px = self._price(market, -side, 60)
        if kind < 85:
            return base._replace(ord_type=OrdType.STOP, price=None, stop_px=stop_px)
        if kind < 90:
            return base._replace(ord_type=OrdType.STOP_LIMIT, stop_px=stop_px)
        if kind < 94:
            return base._replace(
                ord_type=OrdType.MARKET_IF_TOUCHED,
                price=None,
                stop_px=self._price(market, side, 60),
            )
        if kind < 97 and not spot:
            return base._replace(exec_inst=ExecInst.REDUCE_ONLY)
        return base._replace(text="note", order_qty=qty * 2)

    def _known_order(self) -> tuple[int, int | None, str]:
        """(account, order id or None, clOrdID or ""): a guess at a live order."""
        rng = self.rng
        if self.cl_ord_ids and rng.random() < 0.6:
            account, cl_ord_id = rng.choice(self.cl_ord_ids[-50:])
            return account, None, cl_ord_id
        order_id = rng.randint(1, max(1, self.orders_placed))
        return rng.randint(1, self.accounts), order_id, ""

    def amend(self) -> AmendOrder:
        rng = self.rng
        account, order_id, cl_ord_id = self._known_order()
        market = rng.choice(MARKETS)
        change = rng.randrange(3)
        price = self._price(market, rng.choice((1, -1)), 40) if change != 1 else None
        qty = market.lot * rng.randint(1, 30) if change != 0 else None
        return AmendOrder(
            0, account, order_id, orig_cl_ord_id=cl_ord_id, price=price, order_qty=qty
        )

    def cancel(self) -> Command:
        rng = self.rng
        roll = rng.randrange(10)
        if roll < 6:
            account, order_id, cl_ord_id = self._known_order()
            if order_id is not None:
                return CancelOrders(0, account, (order_id,))
            return CancelOrders(0, account, cl_ord_ids=(cl_ord_id,))
        if roll < 8:
            return CancelAll(0, rng.randint(1, self.accounts), rng.choice(MARKETS).symbol)
        if roll < 9:
            return CancelAll(0, rng.randint(1, self.accounts), side=rng.choice((Side.BUY, None)))
        return CancelAllAfter(0, rng.randint(1, self.accounts), rng.choice((0, 500, 2_000, 60_000)))

    def index_move(self) -> IndexPrice:
        rng = self.rng
        index = rng.choice(sorted(self.index_units))
        units = self.index_units[index]
        units = max(1, units + rng.randint(-units // 200 - 1, units // 200 + 1))
        self.index_units[index] = units
        return IndexPrice(0, index, units * 100 + rng.randint(0, 99), 100)

    def money(self) -> Command:
        rng = self.rng
        account = rng.randint(1, self.accounts)
        roll = rng.randrange(10)
        if roll < 4:
            currency, amount = rng.choice(FUNDS)
            return Deposit(0, account, currency, rng.randint(1, amount // 1000), self._next_id("d"))
        if roll < 7 or not self.withdrawals:
            withdrawal_id = self._next_id("w")
            self.withdrawals.append(withdrawal_id)
            currency, amount = rng.choice(FUNDS)
            return WithdrawalRequest(
                0,
                account,
                currency,
                rng.randint(1, amount // 100),
                rng.randint(0, 1000),
                withdrawal_id,
            )
        withdrawal_id = rng.choice(self.withdrawals)
        if roll < 9:
            return WithdrawalComplete(0, withdrawal_id)
        return WithdrawalCancel(0, withdrawal_id)

    def risk(self) -> Command:
        """Leverage, margin and funding settings, and sharp index moves: liquidations."""
        rng = self.rng
        account = rng.randint(1, self.accounts)
        market = rng.choice(MARKETS[:3])  # derivatives
        roll = rng.randrange(10)
        if roll < 4:
            return SetLeverage(0, account, market.symbol, rng.choice((0, 100, 500, 2_500, 10_000)))
        if roll < 6:
            return TransferMargin(0, account, market.symbol, rng.randint(-(10**6), 10**7))
        if roll < 7:
            return SetInterestRate(0, market.symbol, rng.randint(-100_000, 300_000))
        index = market.index
        units = self.index_units[index]
        units = max(1, units + units * rng.choice((-8, -5, 5, 8)) // 100)
        self.index_units[index] = units
        return IndexPrice(0, index, units, 1)

    def other(self) -> Command:
        rng = self.rng
        roll = rng.randrange(6)
        if roll < 2 and not self.fee_settings:
            roll = 2
        if roll == 0:
            return SetFeeTier(0, rng.randint(1, self.accounts), rng.randint(0, 3))
        if roll == 1:
            return SetFeeDiscount(0, rng.randint(1, self.accounts), rng.randint(0, 300_000))
        if roll == 2:
            return Tick(0)
        if roll == 3:
            return SetInstrumentState(0, "ETHUSD", rng.choice(("Open", "Closed", "Open")))
        orders = [self.place() for _ in range(rng.randint(1, 4))]
        orders += [self.amend() for _ in range(rng.randint(0, 2))]
        rng.shuffle(orders)
        return Batch(0, tuple(orders))

    def step(self) -> Step:
        roll = self.rng.randrange(100)
        if roll < 40:
            return self.place()
        if roll < 55:
            return self.amend()
        if roll < 70:
            return self.cancel()
        if roll < 80:
            return self.index_move()
        if roll < 86:
            return self.money()
        if roll < 91:
            return self.other()
        if roll < 95:
            return self.risk()
        # Time passes: sometimes across cancelAllAfter deadlines, sometimes a day boundary.
        return Advance(self.rng.choice((1_000_000, 700_000_000, 3 * NS_PER_S, 3_600 * NS_PER_S)))


def workload(seed: int, steps: int, accounts: int = 8, fee_settings: bool = False) -> list[Step]:
    """Setup (funding, starting index prices), then ``steps`` random steps."""
    generator = Generator(seed, accounts, fee_settings=fee_settings)
    out = generator.setup()
    out.extend(generator.step() for _ in range(steps))
    return out


def stamp(steps: list[Step], start_ns: int) -> list[Command]:
    """The workload's commands stamped as a sequencer would (Advance moves the time), for
    driving an engine directly."""
    now = start_ns
    out: list[Command] = []
    for step in steps:
        if isinstance(step, Advance):
            now += step.ns
        else:
            out.append(step._replace(ts_ns=now))
    return out


def drive(
    sequencer: Sequencer, clock: SimulatedClock, steps: list[Step], chunk: int = 16
) -> list[Result]:
    """Submit the steps in chunks, waiting for each chunk's results before moving the clock.

    Returns the results in order. The clock moves only between chunks, so a run is
    reproducible for a given seed and chunk.
    """
    results: list[Result] = []
    pending: list[Future[Result]] = []

    def settle() -> None:
        results.extend(future.result(30) for future in pending)
        pending.clear()

    for step in steps:
        if isinstance(step, Advance):
            settle()
            clock.advance(step.ns)
            continue
        pending.append(sequencer.submit_future(step))
        if len(pending) >= chunk:
            settle()
    settle()
    return results
