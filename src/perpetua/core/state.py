"""The core's whole mutable state, keyed so it can be sharded later: instrument state by symbol
(``Market``), account state by account id (``Account``), and their intersection
(``Position``: one per account and market, holding the position and the open-order sums that
margin and limits need).

Everything here is plain data with a defined iteration order: dicts keep insertion order, and
snapshots sort by key, so ``state_hash`` is the same on every machine.
"""

from sortedcontainers import SortedList

from perpetua.core.book import OrderBook
from perpetua.core.catalogue import FutureSeries
from perpetua.core.enums import TriggerSource
from perpetua.core.instruments import InstrumentSpec, Payout
from perpetua.core.ledger import Ledger
from perpetua.core.orders import Order
from perpetua.core.position import POSITION_FIELDS, Position
from perpetua.core.risk import PositionMargin, TierRates
from perpetua.core.units import PRICE_FINE_PER_TICK

__all__ = [
    "FUNDING_FIELDS",
    "POSITION_FIELDS",
    "PRICE_FINE_PER_TICK",
    "Account",
    "FundingState",
    "Market",
    "Position",
    "Restriction",
    "Stake",
    "State",
    "Unstaking",
    "Withdrawal",
]

# Every attribute of a market's funding state, in snapshot order.
FUNDING_FIELDS = (
    "basis_rates_ppb",
    "index_ts_ns",
    "indicative_rate_ppb",
    "interest_ppb",
    "next_funding_ns",
    "next_sample_ns",
    "premium_count",
    "premium_sum_ppb",
    "rate_ppb",
    "twap_ns",
    "twap_sum",
)


# The funding interest component per interval: 0.01%, (0.06% - 0.03%) / 3, BitMEX's usual.
DEFAULT_INTEREST_PPB = 100_000


class FundingState:
    """A market's funding, fair-price and settlement state (funding.py, pricing.py,
    settlement.py)."""

    __slots__ = FUNDING_FIELDS

    def __init__(self) -> None:
        self.rate_ppb = 0  # the rate paid at next_funding_ns
        self.indicative_rate_ppb = 0  # projection for the interval after it
        self.next_funding_ns = 0  # 0: not scheduled yet
        self.next_sample_ns = 0
        self.premium_sum_ppb = 0  # premium index samples of the current interval
        self.premium_count = 0
        self.basis_rates_ppb: list[int] = []  # futures: recent annualised fair-basis samples
        self.twap_sum = 0  # futures: index x ns over the settlement window
        self.twap_ns = 0
        self.index_ts_ns = 0  # when the current index arrived
        self.interest_ppb = DEFAULT_INTEREST_PPB


class RequirementMemo:
    """The inputs and result of one ``margin.derivative_requirement`` call on a market."""

    __slots__ = ("buy_value", "cost", "figures", "position", "qty", "requirement", "sell_value")

    def __init__(
        self,
        position: Position,
        figures: PositionMargin,
        qty: int,
        cost: int,
        buy_value: int,
        sell_value: int,
        requirement: int,
    ) -> None:
        self.position = position
        self.figures = figures
        self.qty = qty
        self.cost = cost
        self.buy_value = buy_value
        self.sell_value = sell_value
        self.requirement = requirement


class Market:
    """Runtime state of one tradable instrument."""

    __slots__ = (
        "account_positions",
        "adl_ranked_ns",
        "book",
        "funding",
        "hours",
        "index_fine",
        "inverse",
        "last_price",
        "liq_longs",
        "liq_pending",
        "liq_rescan",
        "liq_scanned_mark",
        "liq_shorts",
        "mark_fine",
        "positions",
        "reduce_only_counts",
        "requirement_memo",
        "spec",
        "spot",
        "state",
        "stops",
        "tiers",
        "trailing",
        "value_den",
        "value_num",
        "value_sign",
    )

    def __init__(
        self, spec: InstrumentSpec, account_positions: dict[int, dict[str, Position]] | None = None
    ) -> None:
        self.spec = spec
        self.state = spec.state
        # Trading hours now: the spec's, with the holidays and half-days SetTradingCalendar gave.
        self.hours = spec.trading_hours
        self.book = OrderBook(spec.symbol)
        self.positions: dict[int, Position] = {}
        # Shared with State: account -> symbol -> position, for account-wide margin sums.
        self.account_positions = {} if account_positions is None else account_positions
        # Liquidation index: (threshold in millionths of a tick, account), sorted. A long is
        # liquidated when mark <= its threshold, a short when mark >= it.
        self.liq_longs: SortedList = SortedList()
        self.liq_shorts: SortedList = SortedList()
        # Positions whose threshold changed since the index last caught up, in that order; the
        # mark at the last scan of the whole index; whether the next scan must be whole
        # (liquidation.py, "The index"). Derived, not in snapshots.
        self.liq_pending: dict[Position, None] = {}
        self.liq_scanned_mark: int | None = None
        self.liq_rescan = False
        self.funding = FundingState()
        # Risk tier rates by chosen risk limit: derived from the spec, cached (not state).
        self.tiers: dict[int, TierRates] = {}
        self.last_price: int | None = None  # ticks
        self.mark_fine: int | None = None  # ticks * PRICE_FINE_PER_TICK
        self.index_fine: int | None = None
        # Untriggered orders by trigger source: order id -> order, insertion-ordered.
        self.stops: dict[TriggerSource, dict[int, Order]] = {s: {} for s in TriggerSource}
        self.trailing: dict[int, Order] = {}
        # account -> its live ReduceOnly/Close orders here (derived, not in snapshots): an
        # execution looks for orders to trim only when the account has some.
        self.reduce_only_counts: dict[int, int] = {}
        # margin.derivative_requirement's last answer here (derived, not state, not in
        # snapshots): an amend asks it twice with the same inputs (the check, then the retrack).
        self.requirement_memo: RequirementMemo | None = None
        # When the ADL queue was last published here (indicators; derived, not in snapshots):
        # a market with many holders is re-ranked at most once per a period of market time.
        self.adl_ranked_ns = 0
        # Contract value, pre-reduced for the hot path; equal to instruments.contract_value
        # (tested): |value| = qty*num // (price*den) inverse, qty*price*num // den otherwise.
        multiplier = spec.multiplier
        self.inverse = spec.payout == Payout.INVERSE
        # Read on every order and fill: a bool attribute, not an IntEnum compare (~100
        # instructions compiled, see enums.SIDE_BUY).
        self.spot = spec.payout == Payout.SPOT
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

    def value_fine(self, qty: int, price_fine: int) -> int:
        """Signed contract value at a price in millionths of a tick (marks), truncated."""
        magnitude = qty if qty >= 0 else -qty
        if self.inverse:
            amount = (
                magnitude * self.value_num * PRICE_FINE_PER_TICK // (price_fine * self.value_den)
            )
        else:
            amount = (
                magnitude * price_fine * self.value_num // (self.value_den * PRICE_FINE_PER_TICK)
            )
        return self.value_sign * amount if qty >= 0 else -self.value_sign * amount

    def position(self, account: int) -> Position:
        pos = self.positions.get(account)
        if pos is None:
            pos = Position(account, self.spec.symbol, self.spec.risk_limit)
            self.positions[account] = pos
            self.account_positions.setdefault(account, {})[self.spec.symbol] = pos
        return pos

    def position_of(self, order: Order) -> Position:
        """``order``'s position: the one it holds while registered, else by its account."""
        pos = order.position
        if pos is None:
            return self.position(order.account)
        return pos

    def drop_position_if_empty(self, pos: Position) -> None:
        if (
            self.positions.get(pos.account) is pos
            and pos.liq_fine is None
            and pos.is_empty(self.spec.risk_limit)
        ):
            del self.positions[pos.account]
            held = self.account_positions[pos.account]
            del held[self.spec.symbol]
            if not held:
                del self.account_positions[pos.account]

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
        "staking_discount_ppm",
        "links",
        "margin_required",
        "orders",
        "terminated",
    )

    def __init__(self, account: int) -> None:
        self.account = account
        self.fee_tier = 0
        self.discount_ppm = 0  # the operator's (SetFeeDiscount)
        self.staking_discount_ppm = 0  # the staking tier's (core.staking); fills use the larger
        self.cancel_deadline_ns = 0  # 0: the dead man's switch is disarmed
        self.orders: dict[int, Order] = {}  # live orders by id
        self.cl_ord_ids: dict[str, int] = {}  # clOrdID -> order id, live and recently ended
        self.terminated: dict[int, str] = {}  # recently ended order id -> clOrdID, bounded
        self.links: dict[str, list[int]] = {}  # clOrdLinkID -> live order ids in order
        self.margin_required: dict[str, int] = {}  # settlement currency -> minor units


class Restriction:
    """What a restricted account may do (core.restrictions); unrestricted accounts have none."""

    __slots__ = ("cause", "deposits", "products_denied", "trading", "withdrawals")

    def __init__(
        self, trading: int, products_denied: int, deposits: bool, withdrawals: bool, cause: int
    ) -> None:
        self.trading = trading  # enums.TradingMode
        self.products_denied = products_denied  # enums.ProductClass bits
        self.deposits = deposits
        self.withdrawals = withdrawals
        self.cause = cause  # enums.RestrictionCause


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


class Stake:
    """One account's stake of one currency (core.staking)."""

    __slots__ = ("account", "currency", "eligible", "pending", "staked", "unstaking")

    def __init__(self, account: int, currency: str) -> None:
        self.account = account
        self.currency = currency
        self.staked = 0  # locked, earning
        self.unstaking = 0  # in pending unstaking requests
        self.eligible = 0  # least staked since the last day boundary
        self.pending: list[str] = []  # pending unstaking request ids, in request order


class Unstaking:
    __slots__ = ("account", "amount", "currency", "release_ns", "request_id", "status")

    def __init__(
        self, request_id: str, account: int, currency: str, amount: int, release_ns: int
    ) -> None:
        self.request_id = request_id
        self.account = account
        self.currency = currency
        self.amount = amount
        self.release_ns = release_ns
        self.status = "Pending"


class State:
    __slots__ = (
        "account_positions",
        "accounts",
        "deadlines",
        "deposits",
        "executed",
        "index_subscribers",
        "ledger",
        "listed",
        "multi_cross",
        "markets",
        "next_day_ns",
        "next_exec_id",
        "next_order_id",
        "next_timer_ns",
        "order_margins_changed",
        "orders",
        "publish",
        "restrictions",
        "stakes",
        "series",
        "touched_marks",
        "touched_positions",
        "ts_ns",
        "unstaking",
        "withdrawals",
    )

    def __init__(self) -> None:
        self.markets: dict[str, Market] = {}
        self.index_subscribers: dict[str, list[str]] = {}  # index symbol -> market symbols
        self.accounts: dict[int, Account] = {}
        self.account_positions: dict[int, dict[str, Position]] = {}  # account -> symbol -> pos
        self.orders: dict[int, Order] = {}
        self.ledger = Ledger()
        self.deposits: dict[str, int] = {}  # transfer id -> account (idempotency)
        self.withdrawals: dict[str, Withdrawal] = {}
        self.restrictions: dict[int, Restriction] = {}  # account -> its restriction, if any
        self.stakes: dict[tuple[int, str], Stake] = {}  # (account, currency) -> stake
        self.unstaking: dict[str, Unstaking] = {}  # request id -> pending request
        self.next_order_id = 1
        # currency -> accounts with cross positions in two or more markets of it: a mark move
        # in one of them moves the others' liquidation thresholds.
        self.multi_cross: dict[str, dict[int, None]] = {}
        # Futures listed by ListFuture, in order: (root, year, quarter, listing time), the time
        # kept so a restored spec is the one listed.
        self.listed: list[tuple[str, int, int, int]] = []
        # Futures series defined by DefineFutureSeries (the catalogue file's), by key.
        self.series: dict[str, FutureSeries] = {}
        self.next_exec_id = 1
        self.ts_ns = 0
        self.next_day_ns = 0  # next 00:00 UTC (Day expiry); 0 until the first command
        self.next_timer_ns = 0  # earliest of next_day_ns and the cancelAllAfter deadlines
        self.deadlines: dict[int, int] = {}  # account -> cancelAllAfter deadline
        # Orders that executed during the current command, for linked-order and reduce-only
        # follow-up; cleared at the start of every command.
        self.executed: dict[int, Order] = {}
        # Positions changed during the current command: (symbol, account) -> position; the
        # engine re-derives their thresholds and publishes them, then clears this.
        self.touched_positions: dict[tuple[str, int], Position] = {}
        self.touched_marks: dict[str, None] = {}  # markets whose mark moved this command
        # Positions whose requirement changed this command while publishing (margin.
        # refresh_requirement), in that order (keyed by the object: no tuple to build and hash);
        # those not published whole get an OrderMarginChanged (indicators). Not state: never
        # in the image or hash.
        self.order_margins_changed: dict[Position, None] = {}
        # Build the events that only readers need (orders, book, trades, transfers, positions);
        # off while recovery replays (Engine.apply). Not state: never in the image or hash.
        self.publish = True

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
