"""Every limit the core enforces, in one place, each with its unit in its name.

A limit reached by a client is a named rejection (``reasons.Reason``); a limit reached by the
core's own loops (levels walked, trigger rounds) ends the loop in a defined way and is documented
where it is used.
"""

__all__ = [
    "ANNOUNCEMENT_CONTENT_LENGTH_MAX",
    "ANNOUNCEMENT_LINK_LENGTH_MAX",
    "ANNOUNCEMENT_TITLE_LENGTH_MAX",
    "BATCH_COMMANDS_MAX",
    "CANCEL_ALL_AFTER_TIMEOUT_MS_MAX",
    "CL_ORD_ID_LENGTH_MAX",
    "DAY_NS",
    "LAST_WITHIN_MARK_BAND_PPM",
    "LEVELS_WALKED_MAX",
    "MATCHES_PER_ORDER_MAX",
    "OPEN_ORDERS_PER_SYMBOL_MAX",
    "STOP_ORDERS_PER_SYMBOL_MAX",
    "TERMINATED_ORDERS_RETAINED_MAX",
    "TEXT_LENGTH_MAX",
    "TRIGGER_ROUNDS_MAX",
]

OPEN_ORDERS_PER_SYMBOL_MAX = 200  # per account and symbol, stops included (BitMEX)
STOP_ORDERS_PER_SYMBOL_MAX = 10  # untriggered stops per account and symbol (BitMEX)
CL_ORD_ID_LENGTH_MAX = 36  # characters (BitMEX)
TEXT_LENGTH_MAX = 256  # characters of order annotation
BATCH_COMMANDS_MAX = 100  # orders in one bulk place or amend
LEVELS_WALKED_MAX = 1_000  # price levels one taker order may walk
MATCHES_PER_ORDER_MAX = 10_000  # resting orders one taker order may touch
TERMINATED_ORDERS_RETAINED_MAX = 1_000  # per account, for "Invalid ordStatus" and clOrdID reuse
TRIGGER_ROUNDS_MAX = 64  # trigger -> trade -> trigger cascades per command
LAST_WITHIN_MARK_BAND_PPM = 50_000  # LastWithinMark: last must be within 5% of mark
CANCEL_ALL_AFTER_TIMEOUT_MS_MAX = 7 * 24 * 3_600_000  # a week
DAY_NS = 86_400_000_000_000
ANNOUNCEMENT_TITLE_LENGTH_MAX = 200  # characters
ANNOUNCEMENT_CONTENT_LENGTH_MAX = 10_000  # characters
ANNOUNCEMENT_LINK_LENGTH_MAX = 1_000  # characters
