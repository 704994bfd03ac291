"""BitMEX's wire names for the core's small vocabularies, and back.

The core's enums (``perpetua.core.enums``) are not part of its public surface, so the gateway
keeps its own copy of the integer values here; ``tests/gateway/test_vocabulary.py`` checks that
every value still equals the core's, so the two cannot drift apart silently.
"""

from functools import lru_cache
from typing import Final

from perpetua.store.risk_rows import READ_MODEL_EXEC_TYPE_NAMES

__all__ = [
    "CONTINGENCY_NAMES",
    "EXEC_INST_BITS",
    "EXEC_TYPE_FUNDING",
    "EXEC_TYPE_NAMES",
    "EXEC_TYPES_WITHOUT_ORDER",
    "EXEC_TYPE_TRADE",
    "LIQUIDITY_NAMES",
    "ORD_STATUS_NAMES",
    "ORD_STATUS_TERMINAL",
    "ORD_STATUS_TERMINAL_VALUES",
    "ORD_TYPE_NAMES",
    "PEG_NAMES",
    "SIDE_NAMES",
    "TIF_NAMES",
    "TRANSFER_CODE_NAMES",
    "by_name",
    "exec_inst_text",
]

SIDE_BUY: Final = 1
SIDE_SELL: Final = -1
SIDE_NAMES: dict[int, str] = {SIDE_BUY: "Buy", SIDE_SELL: "Sell"}

ORD_TYPE_LIMIT: Final = 1
ORD_TYPE_MARKET: Final = 2
ORD_TYPE_STOP: Final = 3
ORD_TYPE_STOP_LIMIT: Final = 4
ORD_TYPE_MARKET_IF_TOUCHED: Final = 5
ORD_TYPE_LIMIT_IF_TOUCHED: Final = 6
ORD_TYPE_PEGGED: Final = 7
ORD_TYPE_NAMES: dict[int, str] = {
    ORD_TYPE_LIMIT: "Limit",
    ORD_TYPE_MARKET: "Market",
    ORD_TYPE_STOP: "Stop",
    ORD_TYPE_STOP_LIMIT: "StopLimit",
    ORD_TYPE_MARKET_IF_TOUCHED: "MarketIfTouched",
    ORD_TYPE_LIMIT_IF_TOUCHED: "LimitIfTouched",
    ORD_TYPE_PEGGED: "Pegged",
}

TIF_NAMES: dict[int, str] = {
    1: "GoodTillCancel",
    2: "ImmediateOrCancel",
    3: "FillOrKill",
    4: "Day",
}

EXEC_INST_BITS: dict[str, int] = {
    "ParticipateDoNotInitiate": 1,
    "AllOrNone": 2,
    "MarkPrice": 4,
    "LastPrice": 8,
    "IndexPrice": 16,
    "LastWithinMark": 32,
    "ReduceOnly": 64,
    "Close": 128,
    "Fixed": 256,
}

PEG_NAMES: dict[int, str] = {
    0: "",
    1: "PrimaryPeg",
    2: "MarketPeg",
    3: "TrailingStopPeg",
}

CONTINGENCY_NAMES: dict[int, str] = {
    0: "",
    1: "OneCancelsTheOther",
    2: "OneTriggersTheOther",
}

ORD_STATUS_NAMES: dict[int, str] = {
    1: "New",
    2: "PartiallyFilled",
    3: "Filled",
    4: "Canceled",
    5: "Rejected",
    6: "Expired",
}
ORD_STATUS_TERMINAL = frozenset({"Filled", "Canceled", "Rejected", "Expired"})
ORD_STATUS_TERMINAL_VALUES = frozenset({3, 4, 5, 6})

EXEC_TYPE_TRADE: Final = 2
EXEC_TYPE_FUNDING: Final = 8
EXEC_TYPE_NAMES: dict[int, str] = {
    1: "New",
    2: "Trade",
    3: "Canceled",
    4: "Replaced",
    5: "Restated",
    6: "Expired",
    7: "TriggeredOrActivatedBySystem",
    8: "Funding",
    9: "Settlement",
    **READ_MODEL_EXEC_TYPE_NAMES,  # Liquidation, Bankruptcy, Deleverage (store.risk_rows)
}
# Executions of the risk engine's events: no order behind them (BitMEX's all-zero orderID),
# and their ordType names the event (BitMEX's funding rows say ordType "Funding").
EXEC_TYPES_WITHOUT_ORDER = frozenset({8, 9, *READ_MODEL_EXEC_TYPE_NAMES})

LIQUIDITY_NAMES: dict[int, str] = {0: "", 1: "AddedLiquidity", 2: "RemovedLiquidity"}

# ledger.TransferCode -> BitMEX transactType
TRANSFER_CODE_NAMES: dict[int, str] = {
    1: "Deposit",
    2: "Withdrawal",
    3: "Withdrawal",
    4: "Withdrawal",
    5: "Withdrawal",
    6: "RealisedPNL",
    7: "RealisedPNL",
    8: "SpotTrade",
    9: "SpotTrade",
    10: "RealisedPNL",
    11: "RealisedPNL",
    12: "RealisedPNL",
    13: "RealisedPNL",
    14: "Transfer",
    15: "RealisedPNL",  # liquidation fee
    16: "Transfer",  # funding residue (system accounts only)
    17: "Transfer",  # settlement residue (system accounts only)
    18: "RealisedPNL",  # settlement fee
    19: "Transfer",  # wallet transfer between one owner's accounts
}
TRANSFER_DEPOSIT: Final = 1
TRANSFER_WITHDRAWAL_HOLD: Final = 2
TRANSFER_WITHDRAWAL_RELEASE: Final = 3


@lru_cache(maxsize=1024)
def exec_inst_text(flags: int) -> str:
    """The comma list BitMEX sends for a bit set, in the core's fixed order."""
    return ",".join(name for name, bit in EXEC_INST_BITS.items() if flags & bit)


def by_name(names: dict[int, str]) -> dict[str, int]:
    """Reverse a value->name table, skipping empty names."""
    return {name: value for value, name in names.items() if name}
