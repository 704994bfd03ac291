"""BitMEX's wire names for the core's small vocabularies, and back: one table per vocabulary,
keyed by the core's own enum members (``perpetua.core.enums``, ``core.ledger.TransferCode``),
so a value cannot drift from the core's.

The read models add three execution types the core has no event kind for (liquidation,
bankruptcy and deleverage rows, numbered above the core's ``ExecType``); they are named here
too, since REST and WebSocket rows and SQL filters all speak them.
"""

from functools import lru_cache
from typing import Final

from perpetua.core.enums import (
    EXEC_INST_NAMES,
    EXEC_INST_ORDER,
    ContingencyType,
    ExecType,
    Liquidity,
    OrdStatus,
    OrdType,
    PegPriceType,
    ProductClass,
    RestrictionCause,
    Side,
    TimeInForce,
    TradingMode,
)
from perpetua.core.ledger import TransferCode

__all__ = [
    "PRODUCT_CLASS_NAMES",
    "RESTRICTION_CAUSE_NAMES",
    "TRADING_MODE_NAMES",
    "product_class_names",
    "CONTINGENCY_NAMES",
    "EXEC_INST_BITS",
    "EXEC_TYPE_BANKRUPTCY",
    "EXEC_TYPE_DELEVERAGE",
    "EXEC_TYPE_FUNDING",
    "EXEC_TYPE_LIQUIDATION",
    "EXEC_TYPE_NAMES",
    "EXEC_TYPES_WITHOUT_ORDER",
    "EXEC_TYPE_TRADE",
    "LIQUIDITY_NAMES",
    "ORD_STATUS_NAMES",
    "ORD_STATUS_OPEN_VALUES",
    "ORD_STATUS_TERMINAL",
    "ORD_STATUS_TERMINAL_VALUES",
    "ORD_TYPE_NAMES",
    "PEG_NAMES",
    "READ_MODEL_EXEC_TYPE_NAMES",
    "SIDE_BUY",
    "SIDE_NAMES",
    "SIDE_SELL",
    "TIF_NAMES",
    "TRANSFER_CODE_NAMES",
    "TRANSFER_DEPOSIT",
    "TRANSFER_WITHDRAWAL_HOLD",
    "TRANSFER_WITHDRAWAL_RELEASE",
    "by_name",
    "exec_inst_text",
]

SIDE_BUY: Final = int(Side.BUY)
SIDE_SELL: Final = int(Side.SELL)
SIDE_NAMES: dict[int, str] = {Side.BUY: "Buy", Side.SELL: "Sell"}

ORD_TYPE_NAMES: dict[int, str] = {
    OrdType.LIMIT: "Limit",
    OrdType.MARKET: "Market",
    OrdType.STOP: "Stop",
    OrdType.STOP_LIMIT: "StopLimit",
    OrdType.MARKET_IF_TOUCHED: "MarketIfTouched",
    OrdType.LIMIT_IF_TOUCHED: "LimitIfTouched",
    OrdType.PEGGED: "Pegged",
}

TIF_NAMES: dict[int, str] = {
    TimeInForce.GOOD_TILL_CANCEL: "GoodTillCancel",
    TimeInForce.IMMEDIATE_OR_CANCEL: "ImmediateOrCancel",
    TimeInForce.FILL_OR_KILL: "FillOrKill",
    TimeInForce.DAY: "Day",
}

EXEC_INST_BITS: dict[str, int] = {EXEC_INST_NAMES[bit]: bit for bit in EXEC_INST_ORDER}

PEG_NAMES: dict[int, str] = {
    PegPriceType.NONE: "",
    PegPriceType.PRIMARY_PEG: "PrimaryPeg",
    PegPriceType.MARKET_PEG: "MarketPeg",
    PegPriceType.TRAILING_STOP_PEG: "TrailingStopPeg",
}

CONTINGENCY_NAMES: dict[int, str] = {
    ContingencyType.NONE: "",
    ContingencyType.ONE_CANCELS_THE_OTHER: "OneCancelsTheOther",
    ContingencyType.ONE_TRIGGERS_THE_OTHER: "OneTriggersTheOther",
}

ORD_STATUS_NAMES: dict[int, str] = {
    OrdStatus.NEW: "New",
    OrdStatus.PARTIALLY_FILLED: "PartiallyFilled",
    OrdStatus.FILLED: "Filled",
    OrdStatus.CANCELED: "Canceled",
    OrdStatus.REJECTED: "Rejected",
    OrdStatus.EXPIRED: "Expired",
}
ORD_STATUS_OPEN_VALUES = frozenset({int(OrdStatus.NEW), int(OrdStatus.PARTIALLY_FILLED)})
ORD_STATUS_TERMINAL_VALUES = frozenset(int(s) for s in OrdStatus) - ORD_STATUS_OPEN_VALUES
ORD_STATUS_TERMINAL = frozenset(ORD_STATUS_NAMES[s] for s in ORD_STATUS_TERMINAL_VALUES)

# Read-model execution types beyond the core's ExecType (their rows have no order behind them).
EXEC_TYPE_LIQUIDATION: Final = 101
EXEC_TYPE_BANKRUPTCY: Final = 102
EXEC_TYPE_DELEVERAGE: Final = 103
READ_MODEL_EXEC_TYPE_NAMES: dict[int, str] = {
    EXEC_TYPE_LIQUIDATION: "Liquidation",
    EXEC_TYPE_BANKRUPTCY: "Bankruptcy",
    EXEC_TYPE_DELEVERAGE: "Deleverage",
}

EXEC_TYPE_TRADE: Final = int(ExecType.TRADE)
EXEC_TYPE_FUNDING: Final = int(ExecType.FUNDING)
EXEC_TYPE_NAMES: dict[int, str] = {
    ExecType.NEW: "New",
    ExecType.TRADE: "Trade",
    ExecType.CANCELED: "Canceled",
    ExecType.REPLACED: "Replaced",
    ExecType.RESTATED: "Restated",
    ExecType.EXPIRED: "Expired",
    ExecType.TRIGGERED: "TriggeredOrActivatedBySystem",
    ExecType.FUNDING: "Funding",
    ExecType.SETTLEMENT: "Settlement",
    **READ_MODEL_EXEC_TYPE_NAMES,
}
# Executions of the risk engine's events: no order behind them (BitMEX's all-zero orderID),
# and their ordType names the event (BitMEX's funding rows say ordType "Funding").
EXEC_TYPES_WITHOUT_ORDER = frozenset(
    {int(ExecType.FUNDING), int(ExecType.SETTLEMENT), *READ_MODEL_EXEC_TYPE_NAMES}
)

LIQUIDITY_NAMES: dict[int, str] = {
    Liquidity.NONE: "",
    Liquidity.MAKER: "AddedLiquidity",
    Liquidity.TAKER: "RemovedLiquidity",
}

# ledger.TransferCode -> BitMEX transactType
TRANSFER_CODE_NAMES: dict[int, str] = {
    TransferCode.DEPOSIT: "Deposit",
    TransferCode.WITHDRAWAL_HOLD: "Withdrawal",
    TransferCode.WITHDRAWAL_RELEASE: "Withdrawal",
    TransferCode.WITHDRAWAL_COMPLETE: "Withdrawal",
    TransferCode.WITHDRAWAL_FEE: "Withdrawal",
    TransferCode.TRADE_FEE: "RealisedPNL",
    TransferCode.TRADE_REBATE: "RealisedPNL",
    TransferCode.SPOT_BASE: "SpotTrade",
    TransferCode.SPOT_QUOTE: "SpotTrade",
    TransferCode.REALISED_PNL: "RealisedPNL",
    TransferCode.BANKRUPTCY_COVER: "RealisedPNL",
    TransferCode.FUNDING: "RealisedPNL",
    TransferCode.SETTLEMENT: "RealisedPNL",
    TransferCode.INSURANCE: "Transfer",
    TransferCode.LIQUIDATION_FEE: "RealisedPNL",
    TransferCode.FUNDING_RESIDUE: "Transfer",  # system accounts only
    TransferCode.SETTLEMENT_RESIDUE: "Transfer",  # system accounts only
    TransferCode.SETTLEMENT_FEE: "RealisedPNL",
    TransferCode.WALLET_TRANSFER: "Transfer",  # between one owner's accounts
    TransferCode.STAKE: "Staking",
    TransferCode.UNSTAKE: "Unstaking",
    TransferCode.STAKING_REWARD: "StakingReward",
    TransferCode.STAKING_REWARDS_FUNDING: "Transfer",  # system accounts only
    TransferCode.CONVERT: "Conversion",
    TransferCode.CONVERT_DESK_FUNDING: "Transfer",  # system accounts only
}
TRANSFER_DEPOSIT: Final = int(TransferCode.DEPOSIT)
TRANSFER_WITHDRAWAL_HOLD: Final = int(TransferCode.WITHDRAWAL_HOLD)
TRANSFER_WITHDRAWAL_RELEASE: Final = int(TransferCode.WITHDRAWAL_RELEASE)


# Account restrictions (core.restrictions): the names the admin routes and /user/restrictions use.
TRADING_MODE_NAMES: dict[int, str] = {
    TradingMode.ALLOWED: "Allowed",
    TradingMode.CLOSE_ONLY: "CloseOnly",
    TradingMode.FROZEN: "Frozen",
}
PRODUCT_CLASS_NAMES: dict[int, str] = {
    ProductClass.SPOT: "Spot",
    ProductClass.DERIVATIVES: "Derivatives",
    ProductClass.TRADFI: "TradFi",
}
RESTRICTION_CAUSE_NAMES: dict[int, str] = {
    RestrictionCause.NONE: "None",
    RestrictionCause.OPERATOR: "Operator",
    RestrictionCause.KYC_REQUIRED: "KycRequired",
    RestrictionCause.KYC_REVIEW_OVERDUE: "KycReviewOverdue",
    RestrictionCause.JURISDICTION: "Jurisdiction",
    RestrictionCause.SANCTIONS: "Sanctions",
    RestrictionCause.IP_LOCATION: "IpLocation",
    RestrictionCause.UNDER_REVIEW: "UnderReview",
}


def product_class_names(bits: int) -> list[str]:
    """The names of a ``products_denied`` bit set, in bit order."""
    return [name for bit, name in PRODUCT_CLASS_NAMES.items() if bits & bit]


@lru_cache(maxsize=1024)
def exec_inst_text(flags: int) -> str:
    """The comma list BitMEX sends for a bit set, in the core's fixed order."""
    return ",".join(EXEC_INST_NAMES[bit] for bit in EXEC_INST_ORDER if flags & bit)


def by_name(names: dict[int, str]) -> dict[str, int]:
    """Reverse a value->name table, skipping empty names."""
    return {name: int(value) for value, name in names.items() if name}
