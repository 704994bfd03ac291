"""The small closed vocabularies of trading: sides, order types, time in force, execInst flags,
order status and execution types.

Values are ints so commands, events and snapshots stay plain data. ``ExecInst`` is a bit set
because BitMEX sends it as a comma list (``"LastPrice,Close"``); iteration over it is always in
``EXEC_INST_ORDER`` so the text form is deterministic.
"""

from enum import IntEnum
from typing import Final

__all__ = [
    "EXEC_INST_ALL",
    "EXEC_INST_NAMES",
    "EXEC_INST_ORDER",
    "ContingencyType",
    "ExecInst",
    "ExecType",
    "Liquidity",
    "OrdStatus",
    "OrdType",
    "PRODUCT_CLASS_ALL",
    "PegPriceType",
    "ProductClass",
    "RestrictionCause",
    "Side",
    "TimeInForce",
    "TradingMode",
    "TriggerSource",
    "exec_inst_text",
]


class Side(IntEnum):
    BUY = 1
    SELL = -1


# Plain-int values of the members that hot paths compare with ``int`` fields (``Order.side``,
# ``.ord_type``, ...). The ExecInst reason: compiled code compares an ``int`` with an IntEnum
# member by boxing it and a generic rich comparison (~100 instructions, ~5% of an amend), and a
# ``Final`` int literal with one machine compare (mypyc inlines it). Equal to the members
# (tests/core/test_units.py); the enums stay what commands and events carry.
SIDE_BUY: Final = 1
ORD_LIMIT: Final = 1
ORD_MARKET: Final = 2
ORD_STOP: Final = 3
ORD_STOP_LIMIT: Final = 4
ORD_MARKET_IF_TOUCHED: Final = 5
ORD_LIMIT_IF_TOUCHED: Final = 6
ORD_PEGGED: Final = 7
TIF_IMMEDIATE_OR_CANCEL: Final = 2
TIF_FILL_OR_KILL: Final = 3


class OrdType(IntEnum):
    LIMIT = 1
    MARKET = 2
    STOP = 3
    STOP_LIMIT = 4
    MARKET_IF_TOUCHED = 5
    LIMIT_IF_TOUCHED = 6
    PEGGED = 7


TRIGGERED_TYPES = frozenset(
    {OrdType.STOP, OrdType.STOP_LIMIT, OrdType.MARKET_IF_TOUCHED, OrdType.LIMIT_IF_TOUCHED}
)
LIMIT_PRICED_TYPES = frozenset(
    {OrdType.LIMIT, OrdType.STOP_LIMIT, OrdType.LIMIT_IF_TOUCHED, OrdType.PEGGED}
)


class TimeInForce(IntEnum):
    GOOD_TILL_CANCEL = 1
    IMMEDIATE_OR_CANCEL = 2
    FILL_OR_KILL = 3
    DAY = 4


class ExecInst:
    """Bit values of execInst. Plain ints, not an IntFlag: ``IntFlag.__and__`` costs about a
    microsecond on the hot path, where orders test their flags on every match and amend."""

    NONE: Final = 0
    PARTICIPATE_DO_NOT_INITIATE: Final = 1
    ALL_OR_NONE: Final = 2
    MARK_PRICE: Final = 4
    LAST_PRICE: Final = 8
    INDEX_PRICE: Final = 16
    LAST_WITHIN_MARK: Final = 32
    REDUCE_ONLY: Final = 64
    CLOSE: Final = 128
    FIXED: Final = 256


EXEC_INST_ORDER: tuple[int, ...] = (
    ExecInst.PARTICIPATE_DO_NOT_INITIATE,
    ExecInst.ALL_OR_NONE,
    ExecInst.MARK_PRICE,
    ExecInst.LAST_PRICE,
    ExecInst.INDEX_PRICE,
    ExecInst.LAST_WITHIN_MARK,
    ExecInst.REDUCE_ONLY,
    ExecInst.CLOSE,
    ExecInst.FIXED,
)

EXEC_INST_ALL = 511  # every bit above

EXEC_INST_NAMES: dict[int, str] = {
    ExecInst.PARTICIPATE_DO_NOT_INITIATE: "ParticipateDoNotInitiate",
    ExecInst.ALL_OR_NONE: "AllOrNone",
    ExecInst.MARK_PRICE: "MarkPrice",
    ExecInst.LAST_PRICE: "LastPrice",
    ExecInst.INDEX_PRICE: "IndexPrice",
    ExecInst.LAST_WITHIN_MARK: "LastWithinMark",
    ExecInst.REDUCE_ONLY: "ReduceOnly",
    ExecInst.CLOSE: "Close",
    ExecInst.FIXED: "Fixed",
}


def exec_inst_text(flags: int) -> str:
    return ",".join(EXEC_INST_NAMES[f] for f in EXEC_INST_ORDER if flags & f)


class TriggerSource(IntEnum):
    MARK = 1
    LAST = 2
    INDEX = 3


class PegPriceType(IntEnum):
    NONE = 0
    PRIMARY_PEG = 1
    MARKET_PEG = 2
    TRAILING_STOP_PEG = 3


class ContingencyType(IntEnum):
    NONE = 0
    ONE_CANCELS_THE_OTHER = 1
    ONE_TRIGGERS_THE_OTHER = 2


class OrdStatus(IntEnum):
    NEW = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELED = 4
    REJECTED = 5
    EXPIRED = 6


TERMINAL_STATUSES = frozenset(
    {OrdStatus.FILLED, OrdStatus.CANCELED, OrdStatus.REJECTED, OrdStatus.EXPIRED}
)


class ExecType(IntEnum):
    NEW = 1
    TRADE = 2
    CANCELED = 3
    REPLACED = 4
    RESTATED = 5
    EXPIRED = 6
    TRIGGERED = 7  # BitMEX: TriggeredOrActivatedBySystem
    FUNDING = 8
    SETTLEMENT = 9


class Liquidity(IntEnum):
    NONE = 0
    MAKER = 1  # AddedLiquidity
    TAKER = 2  # RemovedLiquidity


# Account restrictions (core.restrictions) -------------------------------------------------------


class TradingMode(IntEnum):
    """What an account may do with orders. ALLOWED: anything; CLOSE_ONLY: only orders that
    reduce a position (ReduceOnly or Close) and cancels; FROZEN: cancels only (no orders, no
    amends, no deposits, no withdrawals)."""

    ALLOWED = 0
    CLOSE_ONLY = 1
    FROZEN = 2


class ProductClass(IntEnum):
    """Bits of a restriction's ``products_denied``: new exposure there is refused (reducing an
    existing position stays allowed). ``instruments.product_class`` names each market's."""

    SPOT = 1
    DERIVATIVES = 2  # crypto perpetuals and futures (always open)
    TRADFI = 4  # perpetuals on traditional assets (with trading hours)


PRODUCT_CLASS_ALL = 7  # every bit above


class RestrictionCause(IntEnum):
    """Why an account is restricted: carried by the restriction and by every rejection it
    causes, so an error can say why (``reasons.CAUSE_TEXT``)."""

    NONE = 0
    OPERATOR = 1  # an operator's decision
    KYC_REQUIRED = 2  # identity not verified (KYC level 0)
    KYC_REVIEW_OVERDUE = 3  # periodic review overdue or documents expired
    JURISDICTION = 4  # restricted residence, citizenship, incorporation or product region
    SANCTIONS = 5  # confirmed sanctions hit
    IP_LOCATION = 6  # access from a restricted location
    UNDER_REVIEW = 7  # a compliance case is open
