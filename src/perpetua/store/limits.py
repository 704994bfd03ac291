"""Every limit of the store in one place (style rule 19)."""

from typing import Final

__all__ = [
    "BIN_SIZES_NS",
    "FILTER_KEYS_MAX",
    "FILTER_NUMBER_CHARS_MAX",
    "FILTER_NUMBER_EXPONENT_MAX",
    "FILTER_VALUES_MAX",
    "PROGRESS_LOG_INTERVAL_S",
    "PROJECTOR_QUEUE_RECORDS_MAX",
    "PROJECT_COMMANDS_PER_TRANSACTION_MAX",
    "PROJECT_EVENTS_PER_TRANSACTION_MAX",
    "PROJECT_LINGER_S",
    "QUERY_COUNT_MAX",
    "QUERY_START_MAX",
    "WALLET_HISTORY_COUNT_MAX",
]

# Queries (BitMEX: count <= 1000 on tables; walletHistory defaults to and allows 10,000).
QUERY_COUNT_MAX: Final = 1_000
WALLET_HISTORY_COUNT_MAX: Final = 10_000
QUERY_START_MAX: Final = 10_000_000  # an offset past this is a client bug, not a page
FILTER_KEYS_MAX: Final = 32
FILTER_VALUES_MAX: Final = 1_000  # values in one IN list
# a numeric filter value: its text length and |decimal exponent|, bounded before conversion
# (``Decimal("1e300000").as_integer_ratio()`` builds a 300,000-digit int)
FILTER_NUMBER_CHARS_MAX: Final = 40
FILTER_NUMBER_EXPONENT_MAX: Final = 30

# Projector: one SQL transaction covers at most this many commands or events (a whole command
# is never split, so one huge command may exceed the events bound alone).
PROJECT_COMMANDS_PER_TRANSACTION_MAX: Final = 1_000
PROJECT_EVENTS_PER_TRANSACTION_MAX: Final = 50_000
PROJECTOR_QUEUE_RECORDS_MAX: Final = 10_000  # ProjectorThread's bounded input queue
# ProjectorThread: after a record, how long it waits for more before it opens a transaction
PROJECT_LINGER_S: Final = 0.02
PROGRESS_LOG_INTERVAL_S: Final = 5.0

_NS_PER_MINUTE = 60 * 1_000_000_000
# BitMEX's bin sizes, in the order the projector updates them.
BIN_SIZES_NS: Final[dict[str, int]] = {
    "1m": _NS_PER_MINUTE,
    "5m": 5 * _NS_PER_MINUTE,
    "1h": 60 * _NS_PER_MINUTE,
    "1d": 24 * 60 * _NS_PER_MINUTE,
}
