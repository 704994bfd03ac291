"""Events: what happened, as immutable plain data, in the order it happened.

The event stream is the core's only output. Read models, the WebSocket fan-out and responses
are all built from it, so each event carries enough to be understood alone:

* ``OrderEvent`` is a full order row plus the execution fields of BitMEX's ``execution`` table
  (one per New, Trade, Canceled, Replaced, Restated, Expired, Triggered).
* ``Trade`` is the public print; its two ``OrderEvent`` rows carry each side's cost and fee.
* ``BookLevel`` is an L2 delta: the visible size at a price after the change (0 removes it).
* ``Transfer`` is one double-entry ledger movement; replaying them rebuilds every balance.
* ``Rejected`` answers a command that changed nothing.
* ``OrderMarginChanged`` and ``DeleverageRanked`` are what BitMEX shows beside a position and
  the core alone knows exactly: the working orders' margin after an order change, and each
  position's fifth of its side's auto-deleveraging queue after a mark update (``indicators``).

Building events. The hot ones (``OrderEvent``, ``BookLevel``, ``Transfer``, ``Trade``,
``PositionChanged``, ``OrderMarginChanged``) are built in the core through ``core/emit.py``, as
``tuple.__new__(Cls, (field, ...))`` with every field given in order, not as ``Cls(...)``: a
NamedTuple's ``__new__`` is an interpreted function, and calling it (34 arguments for an
``OrderEvent``) was ~29% of the compiled core's instructions on the exchange-core mix
(decisions §18). The result is the same tuple of the same class. The short ones have typed
builders there; mypy does not check the fields of ``OrderEvent`` and ``PositionChanged``, built
with ``emit.NEW``, so tests/core/test_events_shape.py checks every event a real run builds
against its annotations.
"""

from typing import NamedTuple

__all__ = [
    "FutureSeriesDefined",
    "AnnouncementPublished",
    "AnnouncementWithdrawn",
    "AccountRestricted",
    "BookLevel",
    "CancelAllAfterSet",
    "Converted",
    "DeleverageRanked",
    "DepositCredited",
    "Event",
    "FeeSettingsChanged",
    "IndexUpdated",
    "InstrumentStateChanged",
    "OrderEvent",
    "Deleveraged",
    "Funding",
    "FundingPaid",
    "MarkUpdated",
    "OrderMarginChanged",
    "PositionChanged",
    "PositionLiquidated",
    "PositionSettled",
    "PremiumSampled",
    "Settled",
    "StakingChanged",
    "Rejected",
    "Trade",
    "TradingCalendarChanged",
    "Transfer",
    "UnstakingUpdated",
    "WithdrawalUpdated",
]


class OrderEvent(NamedTuple):
    ts_ns: int
    exec_type: int  # enums.ExecType
    exec_id: int  # unique per execution row, a pure function of the command stream
    order_id: int
    account: int
    symbol: str
    side: int  # enums.Side
    ord_type: int
    time_in_force: int
    exec_inst: int
    order_qty: int
    price: int | None
    stop_px: int | None
    display_qty: int | None
    peg_price_type: int
    peg_offset: int | None
    contingency_type: int
    cl_ord_id: str
    cl_ord_link_id: str
    ord_status: int  # enums.OrdStatus
    triggered: bool
    working: bool
    leaves_qty: int
    cum_qty: int
    cum_px_qty: int  # sum of fill price ticks x qty: avgPx = cum_px_qty / cum_qty
    text: str
    last_qty: int
    last_px: int | None
    trd_match_id: int
    exec_cost: int  # signed settlement minor units (BitMEX sign convention)
    exec_comm: int  # fee in settlement minor units; negative is a rebate
    fee_rate_ppm: int
    liquidity: int  # enums.Liquidity
    transact_ts_ns: int


class Trade(NamedTuple):
    ts_ns: int
    symbol: str
    trd_match_id: int
    side: int  # the aggressor's side
    qty: int
    price: int
    gross_value: int  # |value| in settlement minor units
    maker_account: int
    taker_account: int
    maker_order_id: int
    taker_order_id: int


class BookLevel(NamedTuple):
    ts_ns: int
    symbol: str
    side: int
    price: int
    size: int  # visible size after the change; 0 deletes the level


class Transfer(NamedTuple):
    ts_ns: int
    debit_account: int
    credit_account: int
    currency: str
    amount: int  # > 0
    code: int  # ledger.TransferCode
    ref: int  # order, execution or sequence reference for audit


class PositionChanged(NamedTuple):
    """A position after a command changed it; mark-dependent fields are derived by readers."""

    ts_ns: int
    account: int
    symbol: str
    current_qty: int
    current_cost: int
    realised_pnl: int  # cumulative, settlement minor units
    exec_realised_pnl: int = 0  # realised by the change that published this row (fills)
    leverage_e2: int = 0  # 0: cross; else isolated leverage in hundredths
    risk_limit: int = 0
    deposit: int = 0
    pos_init: int = 0
    pos_comm: int = 0
    pos_margin: int = 0
    pos_maint: int = 0
    init_margin_ppm: int = 0
    maint_margin_ppm: int = 0
    bankrupt_price: int | None = None  # ticks
    liquidation_price: int | None = None  # ticks
    order_margin: int = 0  # initial margin of the working orders
    open_comm: int = 0  # fees paid to open what is held (rebates negative)


class OrderMarginChanged(NamedTuple):
    """The initial margin of ``account``'s working orders on ``symbol`` after a command changed
    it while the position stayed as it was (a changed position's ``PositionChanged`` carries
    its ``order_margin`` instead). User accounts only."""

    ts_ns: int
    account: int
    symbol: str
    order_margin: int  # settlement minor units, core.risk.orders_margin


class DeleverageRanked(NamedTuple):
    """Every open user position of ``symbol`` in its side's auto-deleveraging queue at the mark,
    by the rank ADL uses (``liquidation.adl_rank_of``): ``quintiles[i]`` is ``accounts[i]``'s
    fifth, 5 for the first fifth to be deleveraged down to 1 (BitMEX's deleveragePercentile is
    ``quintile / 5``). Published after a mark update (``indicators``); a position opened since
    is not in it until the next."""

    ts_ns: int
    symbol: str
    accounts: tuple[int, ...]  # longs, then shorts, each in queue order
    quintiles: tuple[int, ...]


class PositionLiquidated(NamedTuple):
    """The liquidation engine (insurance fund) took ``qty`` over at the bankruptcy ``price``."""

    ts_ns: int
    account: int
    symbol: str
    qty: int
    price: int  # ticks
    realised_pnl: int
    fee: int  # liquidation fee paid to the insurance fund


class Deleveraged(NamedTuple):
    """Auto-deleveraging closed ``qty`` (signed change) of a position at ``price``."""

    ts_ns: int
    account: int
    symbol: str
    qty: int
    price: int
    realised_pnl: int


class Funding(NamedTuple):
    """A funding time passed: every open position paid or received ``rate_ppb`` of its value."""

    ts_ns: int
    symbol: str
    rate_ppb: int
    interval_ns: int
    next_rate_ppb: int  # the rate for the next funding time
    indicative_rate_ppb: int


class FundingPaid(NamedTuple):
    """One position's funding: ``mark_value`` is |value| of ``qty`` at ``mark_price`` (the
    mark to the nearest tick), ``amount`` its ``rate_ppb`` share (ceil paid, floor received)."""

    ts_ns: int
    account: int
    symbol: str
    qty: int
    mark_value: int
    rate_ppb: int
    amount: int  # positive received, negative paid
    mark_price: int  # ticks


class Settled(NamedTuple):
    ts_ns: int
    symbol: str
    price_fine: int  # millionths of a tick
    settlement_type: str


class PositionSettled(NamedTuple):
    ts_ns: int
    account: int
    symbol: str
    qty: int  # the position closed
    price_fine: int
    realised_pnl: int
    fee: int


class MarkUpdated(NamedTuple):
    ts_ns: int
    symbol: str
    mark_fine: int
    index_fine: int
    funding_rate_ppb: int
    indicative_funding_rate_ppb: int
    next_funding_ns: int


class PremiumSampled(NamedTuple):
    """A perpetual's per-minute funding sample (§7.6, §7.8): ``premium_ppb`` is this minute's
    premium index (BitMEX ``.XBTUSDPI``), ``average_ppb`` the interval's average so far
    (``.XBTUSDPI8H``), ``interest_ppb`` the interest component per interval; rates in ppb."""

    ts_ns: int
    symbol: str
    premium_ppb: int
    average_ppb: int
    interest_ppb: int


class Rejected(NamedTuple):
    ts_ns: int
    command: str  # the command's type name
    account: int
    reason: int  # reasons.Reason
    cl_ord_id: str
    order_id: int
    required: int  # for balance rejections: the amount required (minor units)
    currency: str
    cause: int = 0  # for account-restriction rejections: enums.RestrictionCause


class IndexUpdated(NamedTuple):
    ts_ns: int
    symbol: str
    price_num: int
    price_den: int


class InstrumentStateChanged(NamedTuple):
    ts_ns: int
    symbol: str
    state: str


class FeeSettingsChanged(NamedTuple):
    ts_ns: int
    account: int
    tier: int
    discount_ppm: int


class CancelAllAfterSet(NamedTuple):
    ts_ns: int
    account: int
    deadline_ns: int  # 0: disarmed


class DepositCredited(NamedTuple):
    ts_ns: int
    transfer_id: str
    account: int
    currency: str
    amount: int


class WithdrawalUpdated(NamedTuple):
    ts_ns: int
    withdrawal_id: str
    account: int
    currency: str
    amount: int
    fee: int
    status: str  # "Pending" | "Canceled" | "Completed"


class AnnouncementPublished(NamedTuple):
    """An operator's announcement; its id is the seq of the command that published it."""

    ts_ns: int
    title: str
    content: str
    link: str
    urgent: bool


class AnnouncementWithdrawn(NamedTuple):
    ts_ns: int
    announcement_id: int


class AccountRestricted(NamedTuple):
    """An account's restriction as set (SetAccountRestriction); trading 0, no bits and both
    permissions mean unrestricted."""

    ts_ns: int
    account: int
    trading: int  # enums.TradingMode
    products_denied: int  # enums.ProductClass bits
    deposits: bool
    withdrawals: bool
    cause: int  # enums.RestrictionCause


class StakingChanged(NamedTuple):
    """An account's stake after a change (core.staking): locked, cooling off, and the amount
    that earns today's reward and sets the fee discount (``tier`` of ``STAKING_TIERS``)."""

    ts_ns: int
    account: int
    currency: str
    staked: int
    unstaking: int
    eligible: int
    tier: int


class UnstakingUpdated(NamedTuple):
    ts_ns: int
    request_id: str
    account: int
    currency: str
    amount: int
    release_ns: int
    status: str  # "Pending" | "Canceled" | "Released"


class Converted(NamedTuple):
    ts_ns: int
    quote_id: str
    account: int
    from_currency: str
    to_currency: str
    from_amount: int
    to_amount: int


class TradingCalendarChanged(NamedTuple):
    ts_ns: int
    symbol: str
    holiday_days: tuple[int, ...]
    early_close_days: tuple[int, ...]
    early_close_minutes: tuple[int, ...]


class FutureSeriesDefined(NamedTuple):
    """A ``DefineFutureSeries`` was accepted: ``ListFuture`` may list ``key``'s quarterlies."""

    ts_ns: int
    key: str


Event = (
    OrderEvent
    | Trade
    | BookLevel
    | Transfer
    | PositionChanged
    | OrderMarginChanged
    | DeleverageRanked
    | PositionLiquidated
    | Deleveraged
    | Funding
    | FundingPaid
    | Settled
    | PositionSettled
    | MarkUpdated
    | PremiumSampled
    | Rejected
    | IndexUpdated
    | InstrumentStateChanged
    | FeeSettingsChanged
    | CancelAllAfterSet
    | DepositCredited
    | WithdrawalUpdated
    | AnnouncementPublished
    | AnnouncementWithdrawn
    | AccountRestricted
    | StakingChanged
    | UnstakingUpdated
    | Converted
    | TradingCalendarChanged
    | FutureSeriesDefined
)
