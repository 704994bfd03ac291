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

Order ids do not reveal order flow: once a venue installs its key (``use_order_id_key``, read
from its data dir at start-up), the low 64 bits of an ``orderID`` are a keyed permutation of
the core's sequential order id (a six-round Feistel network over two 32-bit halves, keyed
BLAKE2b as the round function), so consecutive orders get unrelated ids, yet the same key maps
the same order to the same id after every restart and replay, and parsing inverts it exactly.
The core stays pure: it numbers orders as before, and the journal is unchanged. Without a key
(tests, tools) the mapping is the identity above.
"""

import hashlib
from functools import lru_cache
from typing import Final

__all__ = [
    "EXEC_PREFIX",
    "ORDER_ID_KEY_BYTES",
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
    "use_order_id_key",
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


ORDER_ID_KEY_BYTES: Final = 32
_FEISTEL_ROUNDS: Final = 6
_HALF_MASK: Final = 0xFFFF_FFFF
_ROUND_INDEX_BYTES: Final = tuple(bytes((index,)) for index in range(_FEISTEL_ROUNDS))
# The keyed hash's state after the key block, copied for each round: the same digest as
# ``blake2b(message, key=key)`` without compressing the key block again (6 rounds an order).
_order_hash: hashlib.blake2b | None = None


def use_order_id_key(key: bytes | None) -> None:
    """Install the venue's order-id key (``ORDER_ID_KEY_BYTES`` random bytes); None: identity."""
    global _order_hash
    if key is not None and len(key) != ORDER_ID_KEY_BYTES:
        raise ValueError(f"order id key must be {ORDER_ID_KEY_BYTES} bytes")
    _order_hash = None if key is None else hashlib.blake2b(key=key, digest_size=4)
    _permute.cache_clear()
    _unpermute.cache_clear()


def _round(keyed: hashlib.blake2b, half: int, index: int) -> int:
    """blake2b(half (4 bytes, big-endian) | index (1 byte), key, 4-byte digest) as an int."""
    state = keyed.copy()
    state.update(half.to_bytes(4, "big") + _ROUND_INDEX_BYTES[index])
    return int.from_bytes(state.digest(), "big")


@lru_cache(maxsize=8192)
def _permute(value: int) -> int:
    keyed = _order_hash
    if keyed is None:
        return value
    left, right = value >> 32, value & _HALF_MASK
    for index in range(_FEISTEL_ROUNDS):  # _round inlined: this runs for every new order
        state = keyed.copy()
        state.update(right.to_bytes(4, "big") + _ROUND_INDEX_BYTES[index])
        left, right = right, left ^ int.from_bytes(state.digest(), "big")
    return (left << 32) | right


@lru_cache(maxsize=8192)
def _unpermute(value: int) -> int:
    keyed = _order_hash
    if keyed is None:
        return value
    left, right = value >> 32, value & _HALF_MASK
    for index in reversed(range(_FEISTEL_ROUNDS)):
        left, right = right ^ _round(keyed, left, index), left
    return (left << 32) | right


def order_uuid(order_id: int) -> str:
    if not 0 <= order_id <= _LOW_MAX:
        raise ValueError(f"id out of range: {order_id}")
    return _format(ORDER_PREFIX, _permute(order_id))


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
    value = parse_uuid(ORDER_PREFIX, text)
    return None if value is None else _unpermute(value)
