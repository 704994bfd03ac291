"""Commands: everything that can change the core's state, as immutable plain data.

Each command is a ``NamedTuple`` (immutable, cheap to build: see docs/decisions.md) whose first
field is ``ts_ns``, the time the sequencer stamped on it. Callers leave ``ts_ns`` at 0 and the
sequencer stamps it with ``cmd._replace(ts_ns=...)``; the core never reads a clock.

Prices are integer ticks of the instrument (``price = ticks * tick_num / tick_den``); the gateway
rejects off-grid prices before a command is built. Index prices are exact rationals
(``price_num / price_den``). Quantities are integer contracts (spot: position units). Money is
integer minor units. ``None`` means "not given" for optional order fields, never "zero".
"""

from typing import NamedTuple

from perpetua.core.enums import (
    ContingencyType,
    OrdType,
    PegPriceType,
    Side,
    TimeInForce,
)
from perpetua.core.instruments import Payout

__all__ = [
    "COMMAND_TYPES",
    "DefineFutureSeries",
    "AmendOrder",
    "Batch",
    "CancelAll",
    "CancelAllAfter",
    "CancelOrders",
    "Command",
    "Deposit",
    "Convert",
    "FundConvertDesk",
    "SetTradingCalendar",
    "FundStakingRewards",
    "IndexPrice",
    "LiquidateAccount",
    "PlaceOrder",
    "PublishAnnouncement",
    "SetAccountRestriction",
    "SetFeeDiscount",
    "ListFuture",
    "SetFeeTier",
    "SetInterestRate",
    "SetLeverage",
    "SetRiskLimit",
    "Stake",
    "TransferMargin",
    "SetInstrumentState",
    "Tick",
    "UnstakeCancel",
    "UnstakeRequest",
    "WithdrawalCancel",
    "WalletTransfer",
    "WithdrawAnnouncement",
    "DepositReverse",
    "WithdrawalComplete",
    "WithdrawalRequest",
]


class PlaceOrder(NamedTuple):
    ts_ns: int
    account: int
    symbol: str
    side: Side | None  # None only with execInst Close: the side that closes the position
    order_qty: int | None  # None only with execInst Close: the whole position
    ord_type: OrdType = OrdType.LIMIT
    price: int | None = None
    stop_px: int | None = None
    time_in_force: TimeInForce | None = None  # None: the ordType's default
    exec_inst: int = 0
    display_qty: int | None = None
    peg_price_type: PegPriceType = PegPriceType.NONE
    peg_offset: int | None = None  # signed ticks
    cl_ord_id: str = ""
    cl_ord_link_id: str = ""
    contingency_type: ContingencyType = ContingencyType.NONE
    text: str = ""


class AmendOrder(NamedTuple):
    ts_ns: int
    account: int
    order_id: int | None = None
    orig_cl_ord_id: str = ""
    cl_ord_id: str = ""  # new clOrdID (rename), with orig_cl_ord_id or order_id
    order_qty: int | None = None
    leaves_qty: int | None = None
    price: int | None = None
    stop_px: int | None = None
    peg_offset: int | None = None
    text: str | None = None


class CancelOrders(NamedTuple):
    ts_ns: int
    account: int
    order_ids: tuple[int, ...] = ()
    cl_ord_ids: tuple[str, ...] = ()
    text: str = ""


class CancelAll(NamedTuple):
    ts_ns: int
    account: int
    symbol: str = ""  # "" means every symbol
    side: Side | None = None  # None means both sides
    text: str = ""


class CancelAllAfter(NamedTuple):
    ts_ns: int
    account: int
    timeout_ms: int  # 0 disarms the dead man's switch


class Batch(NamedTuple):
    """Bulk place or amend: sub-commands applied in order, each with its own result."""

    ts_ns: int
    commands: tuple["PlaceOrder | AmendOrder", ...]


class Tick(NamedTuple):
    """Time passes: Day expiry, cancelAllAfter deadlines, trailing-stop and trigger checks."""

    ts_ns: int


class IndexPrice(NamedTuple):
    ts_ns: int
    symbol: str  # an index such as ".BXBT"
    price_num: int
    price_den: int


class SetInstrumentState(NamedTuple):
    ts_ns: int
    symbol: str
    state: str  # "Open" | "Closed" | "Unlisted" | "Settled" | "Delisted"


class SetLeverage(NamedTuple):
    """``leverage_e2`` 0 makes the position cross-margined; 1..10_000 isolates it at that
    leverage (hundredths: 300 = 3x)."""

    ts_ns: int
    account: int
    symbol: str
    leverage_e2: int


class SetRiskLimit(NamedTuple):
    ts_ns: int
    account: int
    symbol: str
    risk_limit: int  # settlement minor units: base + n * step


class TransferMargin(NamedTuple):
    """Add (amount > 0) or remove (amount < 0) margin on an isolated position."""

    ts_ns: int
    account: int
    symbol: str
    amount: int


class SetInterestRate(NamedTuple):
    """Operator setting: a perpetual's funding interest component per interval (ppb). Before
    the market's first index it is also the opening funding rate."""

    ts_ns: int
    symbol: str
    interest_ppb: int


class ListFuture(NamedTuple):
    """List the quarterly future on ``root`` expiring in ``year`` Q``quarter``."""

    ts_ns: int
    root: str
    year: int
    quarter: int


class SetFeeTier(NamedTuple):
    ts_ns: int
    account: int
    tier: int  # index into the fee tier table


class SetFeeDiscount(NamedTuple):
    ts_ns: int
    account: int
    discount_ppm: int  # 0..1_000_000 of the positive fee, e.g. from BMEX staking


class Deposit(NamedTuple):
    ts_ns: int
    account: int
    currency: str
    amount: int
    transfer_id: str


class WithdrawalRequest(NamedTuple):
    ts_ns: int
    account: int
    currency: str
    amount: int  # sent to the address
    fee: int  # kept by the exchange
    withdrawal_id: str


class WalletTransfer(NamedTuple):
    """Move ``amount`` between two accounts of one owner (a main account and its
    sub-accounts), checked like a withdrawal; ``transfer_id`` makes it idempotent."""

    ts_ns: int
    account: int  # the debited account
    to_account: int
    currency: str
    amount: int
    transfer_id: str


class DepositReverse(NamedTuple):
    """Take back a credited deposit whose block left the chain (a reorg): ``amount`` of
    ``currency`` from ``account`` to ``EXTERNAL``, once per ``transfer_id``, which must name a
    credited deposit of that account. What the account cannot give back (spent, or margin
    held) is taken from the insurance fund, so the ledger stays whole."""

    ts_ns: int
    transfer_id: str
    account: int
    currency: str
    amount: int


class WithdrawalCancel(NamedTuple):
    ts_ns: int
    withdrawal_id: str


class WithdrawalComplete(NamedTuple):
    ts_ns: int
    withdrawal_id: str


class PublishAnnouncement(NamedTuple):
    """Operator: publish a site announcement (``urgent``: also a banner, BitMEX's
    ``/announcement/urgent``). It changes no trading state: the core echoes it as an event and
    the announcement's id is this command's seq, so replay gives the same ids."""

    ts_ns: int
    title: str
    content: str = ""
    link: str = ""
    urgent: bool = False


class WithdrawAnnouncement(NamedTuple):
    """Operator: take down the announcement published by the command of seq
    ``announcement_id`` (an unknown id changes nothing)."""

    ts_ns: int
    announcement_id: int


class SetAccountRestriction(NamedTuple):
    """What an account may do (core.restrictions): ``trading`` an ``enums.TradingMode``,
    ``products_denied`` ``enums.ProductClass`` bits, the deposit and withdrawal permissions,
    and the ``enums.RestrictionCause`` every rejection it causes will name. ALLOWED, no bits,
    both permissions: the account is unrestricted again."""

    ts_ns: int
    account: int
    trading: int
    products_denied: int = 0
    deposits: bool = True
    withdrawals: bool = True
    cause: int = 0
    text: str = ""  # the operator's note, kept in the journal


class LiquidateAccount(NamedTuple):
    """Operator: cancel every open order of ``account`` and close each of its positions at
    market, no worse than ``band_ppm`` from the mark (else last) price: one recorded command."""

    ts_ns: int
    account: int
    band_ppm: int
    text: str = ""


class Stake(NamedTuple):
    """Lock ``amount`` of a staking currency (BMEx) from the account's available balance."""

    ts_ns: int
    account: int
    currency: str
    amount: int


class UnstakeRequest(NamedTuple):
    """Start unstaking ``amount``: paid back after the cooling-off period unless cancelled;
    ``request_id`` (the redemptionID) is chosen by the caller and unique."""

    ts_ns: int
    account: int
    currency: str
    amount: int
    request_id: str


class UnstakeCancel(NamedTuple):
    ts_ns: int
    account: int
    request_id: str


class FundStakingRewards(NamedTuple):
    """Operator: credit the staking rewards account from outside (idempotent by id)."""

    ts_ns: int
    currency: str
    amount: int
    transfer_id: str


class Convert(NamedTuple):
    """Swap ``from_amount`` for exactly ``to_amount`` against the convert desk (core.convert),
    if the books still give that much and the quote has not expired."""

    ts_ns: int
    account: int
    from_currency: str
    to_currency: str
    from_amount: int
    to_amount: int
    quote_id: str
    expires_ns: int


class SetTradingCalendar(NamedTuple):
    """The holidays and half-days of a TradFi market (``core.calendar``), replacing the ones it
    had: days since the epoch, strictly increasing; a half-day's sessions end by its minute."""

    ts_ns: int
    symbol: str
    holiday_days: tuple[int, ...]
    early_close_days: tuple[int, ...] = ()
    early_close_minutes: tuple[int, ...] = ()


class FundConvertDesk(NamedTuple):
    """Operator: credit the convert desk's inventory from outside (idempotent by id)."""

    ts_ns: int
    currency: str
    amount: int
    transfer_id: str


class DefineFutureSeries(NamedTuple):
    """Define a quarterly futures series (``catalogue.FutureSeries``'s fields after ``ts_ns``)
    so ``ListFuture`` can list its contracts: the runtime sends one per series of its catalogue
    file, and the journal keeps them, so a replay defines the same series."""

    ts_ns: int
    key: str
    payout: Payout
    root: str
    quote: str
    settl: str
    position_currency: str
    reference: str
    settlement_index: str
    tick_num: int
    tick_den: int
    lot_size: int
    max_order_qty: int
    max_price: int
    multiplier: int
    u2p: int
    u2s: int
    q2s: int
    init_margin_ppm: int
    maint_margin_ppm: int
    risk_limit: int
    risk_step: int
    impact_notional: int


Command = (
    PlaceOrder
    | AmendOrder
    | CancelOrders
    | CancelAll
    | CancelAllAfter
    | Batch
    | Tick
    | IndexPrice
    | SetInstrumentState
    | SetFeeTier
    | SetFeeDiscount
    | Deposit
    | WithdrawalRequest
    | WithdrawalCancel
    | WithdrawalComplete
    | WalletTransfer
    | DepositReverse
    | SetLeverage
    | SetRiskLimit
    | TransferMargin
    | ListFuture
    | SetInterestRate
    | PublishAnnouncement
    | WithdrawAnnouncement
    | SetAccountRestriction
    | LiquidateAccount
    | Stake
    | UnstakeRequest
    | UnstakeCancel
    | FundStakingRewards
    | Convert
    | FundConvertDesk
    | SetTradingCalendar
    | DefineFutureSeries
)

COMMAND_TYPES: tuple[type, ...] = (
    PlaceOrder,
    AmendOrder,
    CancelOrders,
    CancelAll,
    CancelAllAfter,
    Batch,
    Tick,
    IndexPrice,
    SetInstrumentState,
    SetFeeTier,
    SetFeeDiscount,
    Deposit,
    WithdrawalRequest,
    WithdrawalCancel,
    WithdrawalComplete,
    SetLeverage,
    SetRiskLimit,
    TransferMargin,
    ListFuture,
    SetInterestRate,
    WalletTransfer,
    PublishAnnouncement,
    WithdrawAnnouncement,
    SetAccountRestriction,
    LiquidateAccount,
    DepositReverse,
    Stake,
    UnstakeRequest,
    UnstakeCancel,
    FundStakingRewards,
    Convert,
    FundConvertDesk,
    SetTradingCalendar,
    DefineFutureSeries,
)
