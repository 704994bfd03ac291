"""Events: what happened, as immutable plain data, in the order it happened.

The event stream is the core's only output. Read models, the WebSocket fan-out and responses
are all built from it, so each event carries enough to be understood alone:

* ``OrderEvent`` is a full order row plus the execution fields of BitMEX's ``execution`` table
  (one per New, Trade, Canceled, Replaced, Restated, Expired, Triggered).
* ``Trade`` is the public print; its two ``OrderEvent`` rows carry each side's cost and fee.
* ``BookLevel`` is an L2 delta: the visible size at a price after the change (0 removes it).
* ``Transfer`` is one double-entry ledger movement; replaying them rebuilds every balance.
* ``Rejected`` answers a command that changed nothing.
"""

from typing import NamedTuple

__all__ = [
    "BookLevel",
    "CancelAllAfterSet",
    "DepositCredited",
    "Event",
    "FeeSettingsChanged",
    "IndexUpdated",
    "InstrumentStateChanged",
    "OrderEvent",
    "PositionChanged",
    "Rejected",
    "Trade",
    "Transfer",
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
    ts_ns: int
    account: int
    symbol: str
    current_qty: int
    current_cost: int
    realised_pnl: int  # cumulative, settlement minor units
    exec_realised_pnl: int  # realised by this change


class Rejected(NamedTuple):
    ts_ns: int
    command: str  # the command's type name
    account: int
    reason: int  # reasons.Reason
    cl_ord_id: str
    order_id: int
    required: int  # for balance rejections: the amount required (minor units)
    currency: str


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


Event = (
    OrderEvent
    | Trade
    | BookLevel
    | Transfer
    | PositionChanged
    | Rejected
    | IndexUpdated
    | InstrumentStateChanged
    | FeeSettingsChanged
    | CancelAllAfterSet
    | DepositCredited
    | WithdrawalUpdated
)
