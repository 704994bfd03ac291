"""Core integer ids <-> BitMEX UUID strings: a fixed, documented bijection.

BitMEX clients treat ``orderID``, ``execID`` and ``trdMatchID`` as UUID strings. The core numbers
them with non-negative 64-bit ints. Each kind of id gets a fixed 64-bit prefix (the upper half of
the UUID) and the int fills the lower 64 bits, in hex:

    orderID     4f524400-0000-4000-HHHH-HHHHHHHHHHHH   ("ORD" in ASCII hex)
    execID      45584543-0000-4000-HHHH-HHHHHHHHHHHH   ("EXEC")
    trdMatchID  54524144-0000-4000-HHHH-HHHHHHHHHHHH   ("TRAD")
    transactID  54584e00-0000-4000-HHHH-HHHHHHHHHHHH   ("TXN")

so order 1 is ``4f524400-0000-4000-0000-000000000001``. Parsing accepts any letter case and
rejects strings with another prefix (``None``), so ids from one kind never alias another.
"""

from typing import Final

__all__ = [
    "EXEC_PREFIX",
    "ORDER_PREFIX",
    "TRADE_PREFIX",
    "TRANSACT_PREFIX",
    "ZERO_UUID",
    "exec_uuid",
    "order_uuid",
    "parse_order_uuid",
    "parse_uuid",
    "trade_uuid",
    "transact_uuid",
]

ORDER_PREFIX: Final = "4f524400-0000-4000"
EXEC_PREFIX: Final = "45584543-0000-4000"
TRADE_PREFIX: Final = "54524144-0000-4000"
TRANSACT_PREFIX: Final = "54584e00-0000-4000"
ZERO_UUID: Final = "00000000-0000-0000-0000-000000000000"
_LOW_MAX = (1 << 64) - 1
_UUID_LENGTH = 36


def _format(prefix: str, value: int) -> str:
    if not 0 <= value <= _LOW_MAX:
        raise ValueError(f"id out of range: {value}")
    return f"{prefix}-{value >> 48:04x}-{value & 0xFFFF_FFFF_FFFF:012x}"


def order_uuid(order_id: int) -> str:
    return _format(ORDER_PREFIX, order_id)


def exec_uuid(exec_id: int) -> str:
    return _format(EXEC_PREFIX, exec_id)


def trade_uuid(trd_match_id: int) -> str:
    return _format(TRADE_PREFIX, trd_match_id)


def transact_uuid(transact_id: int) -> str:
    return _format(TRANSACT_PREFIX, transact_id)


def parse_uuid(prefix: str, text: str) -> int | None:
    """The int behind ``text`` if it is a UUID with ``prefix``; else ``None``."""
    if len(text) != _UUID_LENGTH:
        return None
    lowered = text.lower()
    if not lowered.startswith(prefix) or lowered[18] != "-" or lowered[23] != "-":
        return None
    digits = lowered[19:23] + lowered[24:]
    try:
        return int(digits, 16)
    except ValueError:
        return None


def parse_order_uuid(text: str) -> int | None:
    return parse_uuid(ORDER_PREFIX, text)
