"""Why the core said no: one IntEnum of named rejection reasons.

Every expected rejection is a value, never an exception. Numbers are grouped by subsystem
(1xx request shape, 2xx instrument and price, 3xx quantity, 4xx order identity and state,
5xx money, 6xx limits, 7xx account/compliance, 8xx platform, 9xx trading costs), and
checks run in a fixed precedence order so the same bad request always yields the same reason.
The gateway maps each reason to BitMEX's error text (``MESSAGES``) and HTTP status
(``HTTP_STATUS``); clients such as ccxt match on the exact text, so these strings are part of
the wire contract.
"""

from enum import IntEnum

__all__ = ["CAUSE_TEXT", "HTTP_STATUS", "MESSAGES", "RESTRICTION_REASONS", "Reason"]


class Reason(IntEnum):
    OK = 0
    # 1xx: request shape
    SIDE_INVALID = 101
    ORD_TYPE_INVALID = 102
    TIME_IN_FORCE_INVALID = 103
    EXEC_INST_INVALID = 104
    EXEC_INST_CONFLICT = 105
    STOP_PX_INVALID_FOR_ORD_TYPE = 106
    PRICE_REQUIRED = 107
    STOP_PX_REQUIRED = 108
    PEG_REQUIRES_FIXED = 109
    PEG_PRICE_TYPE_INVALID = 110
    DISPLAY_QTY_INVALID = 111
    ALL_OR_NONE_REQUIRES_HIDDEN = 112
    CONTINGENCY_TYPE_INVALID = 113
    CL_ORD_ID_TOO_LONG = 114
    TEXT_TOO_LONG = 115
    PRICE_NOT_ALLOWED_FOR_ORD_TYPE = 116
    LAST_WITHIN_MARK_REQUIRES_LAST_PRICE = 117
    BATCH_TOO_LARGE = 118
    AMEND_NOTHING_TO_CHANGE = 119
    PEG_OFFSET_SIGN_INVALID = 120
    # 2xx: instrument and price
    INSTRUMENT_UNKNOWN = 201
    INSTRUMENT_EXISTS = 213
    INSTRUMENT_NOT_OPEN = 202
    INSTRUMENT_OUTSIDE_TRADING_HOURS = 203
    PRICE_MUST_BE_MULTIPLE_OF_TICK = 204
    PRICE_MUST_BE_POSITIVE = 205
    PRICE_ABOVE_MAX = 206
    PRICE_OUTSIDE_BAND = 207
    STOP_PX_MUST_BE_MULTIPLE_OF_TICK = 208
    NO_REFERENCE_PRICE_FOR_TRIGGER = 209
    PEG_NO_REFERENCE_PRICE = 210
    INDEX_PRICE_NOT_FOR_SPOT = 211
    NO_LIQUIDITY = 212
    # 3xx: quantity
    QTY_MUST_BE_POSITIVE = 301
    QTY_MUST_BE_MULTIPLE_OF_LOT = 302
    QTY_ABOVE_MAX = 303
    REDUCE_ONLY_NOT_FOR_SPOT = 304
    REDUCE_ONLY_WOULD_INCREASE_POSITION = 305
    CLOSE_WITHOUT_POSITION = 306
    FILL_OR_KILL_NOT_FILLABLE = 307
    # 4xx: order identity and state
    CL_ORD_ID_DUPLICATE = 401
    ORDER_NOT_FOUND = 402
    ORDER_STATUS_INVALID = 403
    ORDER_NOT_OWNED = 404
    CL_ORD_LINK_ID_UNKNOWN = 405
    # 5xx: money
    BALANCE_INSUFFICIENT = 501
    AMOUNT_MUST_BE_POSITIVE = 502
    TRANSFER_ID_DUPLICATE = 503
    WITHDRAWAL_NOT_FOUND = 504
    WITHDRAWAL_STATE_INVALID = 505
    CURRENCY_UNKNOWN = 506
    DEPOSIT_NOT_FOUND = 507
    # 6xx: limits
    OPEN_ORDERS_MAX = 601
    STOP_ORDERS_MAX = 602
    RISK_LIMIT_EXCEEDED = 603
    RISK_LIMIT_INVALID = 604
    LEVERAGE_INVALID = 605
    MARGIN_TRANSFER_INVALID = 606
    POSITION_NOT_ISOLATED = 607
    # 7xx: account
    ACCOUNT_UNKNOWN = 701
    ACCOUNT_EXISTS = 702
    FEE_TIER_UNKNOWN = 703
    DISCOUNT_INVALID = 704
    # 7xx (705..): account restrictions (core.restrictions); the rejection names the cause
    ACCOUNT_FROZEN = 705
    ACCOUNT_CLOSE_ONLY = 706
    PRODUCT_NOT_PERMITTED = 707
    DEPOSITS_NOT_PERMITTED = 708
    WITHDRAWALS_NOT_PERMITTED = 709
    RESTRICTION_INVALID = 710
    NOTHING_TO_LIQUIDATE = 711
    # 8xx: platform (announcements, futures series)
    ANNOUNCEMENT_INVALID = 801
    SERIES_INVALID = 802
    # 9xx: trading costs (staking, convert, TradFi calendars)
    STAKING_CURRENCY_INVALID = 901
    STAKED_INSUFFICIENT = 902
    UNSTAKING_NOT_FOUND = 903
    UNSTAKING_STATE_INVALID = 904
    UNSTAKING_REQUESTS_MAX = 905
    UNSTAKING_ID_INVALID = 906
    CONVERT_PAIR_UNKNOWN = 910
    CONVERT_QUOTE_EXPIRED = 911
    CONVERT_QUOTE_USED = 912
    CONVERT_ASSET_PAUSED = 913
    CONVERT_LIQUIDITY_INSUFFICIENT = 914
    CONVERT_PRICE_MOVED = 915
    CALENDAR_INVALID = 920


MESSAGES: dict[Reason, str] = {
    Reason.OK: "",
    Reason.SIDE_INVALID: "Invalid side",
    Reason.ORD_TYPE_INVALID: "Invalid ordType",
    Reason.TIME_IN_FORCE_INVALID: "Invalid timeInForce",
    Reason.EXEC_INST_INVALID: "Invalid execInst",
    Reason.EXEC_INST_CONFLICT: "Invalid execInst: conflicting instructions",
    Reason.STOP_PX_INVALID_FOR_ORD_TYPE: "Invalid stopPx for ordType",
    Reason.PRICE_REQUIRED: "Invalid price",
    Reason.STOP_PX_REQUIRED: "Invalid stopPx for ordType",
    Reason.PEG_REQUIRES_FIXED: "Invalid execInst: Pegged orders require Fixed",
    Reason.PEG_PRICE_TYPE_INVALID: "Invalid pegPriceType",
    Reason.DISPLAY_QTY_INVALID: "Invalid displayQty",
    Reason.ALL_OR_NONE_REQUIRES_HIDDEN: "Invalid displayQty: AllOrNone requires displayQty 0",
    Reason.CONTINGENCY_TYPE_INVALID: "Invalid contingencyType",
    Reason.CL_ORD_ID_TOO_LONG: "Invalid clOrdID: at most 36 characters",
    Reason.TEXT_TOO_LONG: "Invalid text: too long",
    Reason.PRICE_NOT_ALLOWED_FOR_ORD_TYPE: "Invalid price for ordType",
    Reason.LAST_WITHIN_MARK_REQUIRES_LAST_PRICE: (
        "Invalid execInst: LastWithinMark requires LastPrice and a Stop or StopLimit"
    ),
    Reason.BATCH_TOO_LARGE: "Too many orders in one request",
    Reason.AMEND_NOTHING_TO_CHANGE: "Invalid amend: nothing to change",
    Reason.PEG_OFFSET_SIGN_INVALID: (
        "Invalid pegOffsetValue: a trailing sell Stop or buy IfTouched order needs a negative"
        " offset, a trailing buy Stop or sell IfTouched order a positive one"
    ),
    Reason.INSTRUMENT_UNKNOWN: "Invalid symbol",
    Reason.INSTRUMENT_EXISTS: "Instrument already listed",
    Reason.INSTRUMENT_NOT_OPEN: "Instrument is not open for trading",
    Reason.INSTRUMENT_OUTSIDE_TRADING_HOURS: "Instrument is outside its trading hours",
    Reason.PRICE_MUST_BE_MULTIPLE_OF_TICK: "Invalid price",
    Reason.PRICE_MUST_BE_POSITIVE: "Invalid price",
    Reason.PRICE_ABOVE_MAX: "Invalid price",
    Reason.PRICE_OUTSIDE_BAND: "Invalid price: outside the price band",
    Reason.STOP_PX_MUST_BE_MULTIPLE_OF_TICK: "Invalid stopPx",
    Reason.NO_REFERENCE_PRICE_FOR_TRIGGER: "Invalid stopPx: no reference price yet",
    Reason.PEG_NO_REFERENCE_PRICE: "Invalid pegPriceType: no price to peg to",
    Reason.INDEX_PRICE_NOT_FOR_SPOT: "Invalid execInst: IndexPrice does not apply to spot",
    Reason.NO_LIQUIDITY: "Canceled: no liquidity",
    Reason.QTY_MUST_BE_POSITIVE: "orderQty is invalid",
    Reason.QTY_MUST_BE_MULTIPLE_OF_LOT: "orderQty is invalid",
    Reason.QTY_ABOVE_MAX: "orderQty is invalid",
    Reason.REDUCE_ONLY_NOT_FOR_SPOT: "Invalid execInst: ReduceOnly and Close are not for spot",
    Reason.REDUCE_ONLY_WOULD_INCREASE_POSITION: (
        "Canceled: ReduceOnly order would have increased position"
    ),
    Reason.CLOSE_WITHOUT_POSITION: "Invalid orderQty: no position to close",
    Reason.FILL_OR_KILL_NOT_FILLABLE: "Canceled: FillOrKill order could not be filled",
    Reason.CL_ORD_ID_DUPLICATE: "Duplicate clOrdID",
    Reason.ORDER_NOT_FOUND: "Not Found",
    Reason.ORDER_STATUS_INVALID: "Invalid ordStatus",
    Reason.ORDER_NOT_OWNED: "Not Found",
    Reason.CL_ORD_LINK_ID_UNKNOWN: "Invalid clOrdLinkID",
    Reason.BALANCE_INSUFFICIENT: "Account has insufficient Available Balance",
    Reason.AMOUNT_MUST_BE_POSITIVE: "Invalid amount",
    Reason.TRANSFER_ID_DUPLICATE: "Duplicate transfer id",
    Reason.WITHDRAWAL_NOT_FOUND: "Withdrawal not found",
    Reason.WITHDRAWAL_STATE_INVALID: "Invalid withdrawal state",
    Reason.DEPOSIT_NOT_FOUND: "Deposit not found",
    Reason.CURRENCY_UNKNOWN: "Invalid currency",
    Reason.OPEN_ORDERS_MAX: "Too many open orders on this symbol",
    Reason.STOP_ORDERS_MAX: "Too many open stop orders on this symbol",
    Reason.RISK_LIMIT_EXCEEDED: (
        "Order would exceed your risk limit: raise the risk limit of this position"
    ),
    Reason.RISK_LIMIT_INVALID: "Invalid riskLimit",
    Reason.LEVERAGE_INVALID: "Invalid leverage",
    Reason.MARGIN_TRANSFER_INVALID: "Invalid amount: the transfer would leave too little margin",
    Reason.POSITION_NOT_ISOLATED: "Position is not isolated",
    Reason.ACCOUNT_UNKNOWN: "Invalid account",
    Reason.ACCOUNT_EXISTS: "Account already exists",
    Reason.FEE_TIER_UNKNOWN: "Invalid fee tier",
    Reason.DISCOUNT_INVALID: "Invalid fee discount",
    Reason.ANNOUNCEMENT_INVALID: "Invalid announcement: a title, and text within the limits",
    Reason.SERIES_INVALID: "Invalid futures series",
    Reason.ACCOUNT_FROZEN: "Account is frozen: it may only cancel orders",
    Reason.ACCOUNT_CLOSE_ONLY: (
        "Account is close-only: it may only reduce positions (ReduceOnly or Close orders)"
        " and cancel orders"
    ),
    Reason.PRODUCT_NOT_PERMITTED: (
        "This product is not available to this account: it may only reduce positions in it"
        " (ReduceOnly or Close orders)"
    ),
    Reason.DEPOSITS_NOT_PERMITTED: "Deposits are not permitted for this account",
    Reason.WITHDRAWALS_NOT_PERMITTED: "Withdrawals are not permitted for this account",
    Reason.RESTRICTION_INVALID: "Invalid account restriction",
    Reason.NOTHING_TO_LIQUIDATE: "Account has no positions or orders to liquidate",
    Reason.STAKING_CURRENCY_INVALID: "Invalid currency: only BMEX can be staked",
    Reason.STAKED_INSUFFICIENT: "Invalid amount: more than is staked",
    Reason.UNSTAKING_NOT_FOUND: "Unstaking request not found",
    Reason.UNSTAKING_STATE_INVALID: "Unstaking request is no longer pending",
    Reason.UNSTAKING_REQUESTS_MAX: "Too many pending unstaking requests",
    Reason.UNSTAKING_ID_INVALID: "Invalid redemptionID",
    Reason.CONVERT_PAIR_UNKNOWN: "Convert: these currencies cannot be converted",
    Reason.CONVERT_QUOTE_EXPIRED: "Convert: the quote has expired, ask for a new one",
    Reason.CONVERT_QUOTE_USED: "Convert: the quote was already used",
    Reason.CONVERT_ASSET_PAUSED: "Convert: trading in this asset is paused",
    Reason.CONVERT_LIQUIDITY_INSUFFICIENT: "Convert: the desk cannot fill this size now",
    Reason.CONVERT_PRICE_MOVED: "Convert: the price moved, ask for a new quote",
    Reason.CALENDAR_INVALID: "Invalid trading calendar",
}

# Rejections that an account restriction caused: their message gets the cause appended.
RESTRICTION_REASONS = frozenset(
    {
        Reason.ACCOUNT_FROZEN,
        Reason.ACCOUNT_CLOSE_ONLY,
        Reason.PRODUCT_NOT_PERMITTED,
        Reason.DEPOSITS_NOT_PERMITTED,
        Reason.WITHDRAWALS_NOT_PERMITTED,
    }
)

# Why, by enums.RestrictionCause value (plain ints: this module imports no other).
CAUSE_TEXT: dict[int, str] = {
    0: "account restricted",
    1: "restricted by the operator",
    2: "identity verification required (KYC level 0)",
    3: "periodic KYC review overdue or documents expired",
    4: "restricted jurisdiction",
    5: "sanctions screening",
    6: "access from a restricted location",
    7: "compliance review in progress",
}

HTTP_STATUS: dict[Reason, int] = {reason: 400 for reason in Reason}
HTTP_STATUS[Reason.OK] = 200
HTTP_STATUS[Reason.ORDER_NOT_FOUND] = 404
HTTP_STATUS[Reason.ORDER_NOT_OWNED] = 404
for _reason in RESTRICTION_REASONS:
    HTTP_STATUS[_reason] = 403
HTTP_STATUS[Reason.UNSTAKING_NOT_FOUND] = 404
