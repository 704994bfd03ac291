"""The core's whole mutable state, keyed so it can be sharded later: instrument state by symbol
(``Market``), account state by account id (``Account``), and their intersection
(``Position``: one per account and market, holding the position and the open-order sums that
margin and limits need).

Everything here is plain data with a defined iteration order: dicts keep insertion order, and
snapshots sort by key, so ``state_hash`` is the same on every machine.
"""

from perpetua.core.book import OrderBook
from perpetua.core.enums import TriggerSource
from perpetua.core.instruments import InstrumentSpec, Payout
from perpetua.core.ledger import Ledger
from perpetua.core.orders import Order

__all__ = ["POSITION_FIELDS", "Account", "Market", "Position", "State", "Withdrawal"]

# Every attribute of a position, in snapshot order.
POSITION_FIELDS = (
        "account",
        "buy_qty",
        "buy_value",
        "cost",
        "margin_required",
        "open_orders_count",
        "qty",
        "realised_pnl",
        "sell_qty",
        "sell_value",
        "stop_orders_count",
        "symbol",
)

PRICE_FINE_PER_TICK = 1_000_000  # mark and index prices are kept in millionths of a tick


class Position:
    """One account's position and open orders on one market."""

    __slots__ = POSITION_FIELDS

    def __init__(self, account: int, symbol: str) -> None:
        self.account = account
        self.symbol = symbol
        self.qty = 0  # signed contracts
        self.cost = 0  # signed settlement minor units, BitMEX's currentCost convention
        self.realised_pnl = 0
        self.open_orders_count = 0  # live orders, stops included
        self.stop_orders_count = 0  # untriggered stops
        self.buy_qty = 0  # working (not untriggered) orders
        self.buy_value = 0  # |value| at the orders' prices
        self.sell_qty = 0
        self.sell_value = 0
        self.margin_required = 0  # this position's part of Account.margin_required

    def is_empty(self) -> bool:
        return (
            self.qty == 0
            and self.cost == 0
            and self.open_orders_count == 0
            and self.margin_required == 0
        )


class Market:
    """Runtime state of one tradable instrument."""

    __slots__ = (
        "book",
        "index_fine",
        "inverse",
        "value_den",
        "value_num",
        "value_sign",
        "last_price",
        "mark_fine",
        "positions",
        "spec",
        "state",
        "stops",
        "trailing",
    )

    def __init__(self, spec: InstrumentSpec) -> None:
        self.spec = spec
        self.state = spec.state
        self.book = OrderBook(spec.symbol)
        self.positions: dict[int, Position] = {}
        self.last_price: int | None = None  # ticks
        self.mark_fine: int | None = None  # ticks * PRICE_FINE_PER_TICK
        self.index_fine: int | None = None
        # Untriggered orders by trigger source: order id -> order, insertion-ordered.
        self.stops: dict[TriggerSource, dict[int, Order]] = {s: {} for s in TriggerSource}
        self.trailing: dict[int, Order] = {}
        # Contract value, pre-reduced for the hot path; equal to instruments.contract_value
        # (tested): |value| = qty*num // (price*den) inverse, qty*price*num // den otherwise.
        multiplier = spec.multiplier
        self.inverse = spec.payout == Payout.INVERSE
        self.value_sign = -1 if multiplier < 0 else 1
        if self.inverse:
            self.value_num = -multiplier * spec.tick_den
            self.value_den = spec.tick_num
        else:
            self.value_num = abs(multiplier) * spec.tick_num
            self.value_den = spec.tick_den

    def value_abs(self, qty: int, price: int) -> int:
        """|contract value| of ``qty`` >= 0 contracts at ``price`` ticks (truncated)."""
        if self.inverse:
            return qty * self.value_num // (price * self.value_den)
        return qty * price * self.value_num // self.value_den

    def value(self, qty: int, price: int) -> int:
        """Signed contract value, BitMEX's convention (an inverse long is negative)."""
        if qty >= 0:
            return self.value_sign * self.value_abs(qty, price)
        return -self.value_sign * self.value_abs(-qty, price)

    def position(self, account: int) -> Position:
        pos = self.positions.get(account)
        if pos is None:
            pos = Position(account, self.spec.symbol)
            self.positions[account] = pos
        return pos

    def reference_fine(self, source: TriggerSource) -> int | None:
        if source == TriggerSource.MARK:
            return self.mark_fine
        if source == TriggerSource.INDEX:
            return self.index_fine
        last = self.last_price
        return None if last is None else last * PRICE_FINE_PER_TICK


class Account:
    __slots__ = (
        "account",
        "cancel_deadline_ns",
        "cl_ord_ids",
        "discount_ppm",
        "fee_tier",
        "links",
        "margin_required",
        "orders",
        "terminated",
    )

    def __init__(self, account: int) -> None:
        self.account = account
        self.fee_tier = 0
        self.discount_ppm = 0
        self.cancel_deadline_ns = 0  # 0: the dead man's switch is disarmed
        self.orders: dict[int, Order] = {}  # live orders by id
        self.cl_ord_ids: dict[str, int] = {}  # clOrdID -> order id, live and recently ended
        self.terminated: dict[int, str] = {}  # recently ended order id -> clOrdID, bounded
        self.links: dict[str, list[int]] = {}  # clOrdLinkID -> live order ids in order
        self.margin_required: dict[str, int] = {}  # settlement currency -> minor units


class Withdrawal:
    __slots__ = ("account", "amount", "currency", "fee", "status", "withdrawal_id")

    def __init__(
        self, withdrawal_id: str, account: int, currency: str, amount: int, fee: int
    ) -> None:
        self.withdrawal_id = withdrawal_id
        self.account = account
        self.currency = currency
        self.amount = amount
        self.fee = fee
        self.status = "Pending"


class State:
    __slots__ = (
        "accounts",
        "deadlines",
        "deposits",
        "executed",
        "index_subscribers",
        "ledger",
        "markets",
        "next_day_ns",
        "next_exec_id",
        "next_order_id",
        "next_timer_ns",
        "orders",
        "ts_ns",
        "withdrawals",
    )

    def __init__(self) -> None:
        self.markets: dict[str, Market] = {}
        self.index_subscribers: dict[str, list[str]] = {}  # index symbol -> market symbols
        self.accounts: dict[int, Account] = {}
        self.orders: dict[int, Order] = {}
        self.ledger = Ledger()
        self.deposits: dict[str, int] = {}  # transfer id -> account (idempotency)
        self.withdrawals: dict[str, Withdrawal] = {}
        self.next_order_id = 1
        self.next_exec_id = 1
        self.ts_ns = 0
        self.next_day_ns = 0  # next 00:00 UTC (Day expiry); 0 until the first command
        self.next_timer_ns = 0  # earliest of next_day_ns and the cancelAllAfter deadlines
        self.deadlines: dict[int, int] = {}  # account -> cancelAllAfter deadline
        # Orders that executed during the current command, for linked-order and reduce-only
        # follow-up; cleared at the start of every command.
        self.executed: dict[int, Order] = {}

    def account(self, account: int) -> Account:
        acct = self.accounts.get(account)
        if acct is None:
            acct = Account(account)
            self.accounts[account] = acct
        return acct

    def new_exec_id(self) -> int:
        exec_id = self.next_exec_id
        self.next_exec_id = exec_id + 1
        return exec_id
