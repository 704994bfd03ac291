"""Formatting for the wire: timestamps, prices from exact ticks, JSON encoding.

Timestamps are ISO-8601 UTC with milliseconds and ``Z``. Prices are exact decimals built from
integer ticks (``Decimal`` division of a reduced fraction whose denominator only has factors 2
and 5) and encoded as JSON numbers, never through ``float``. Interval fields use BitMEX's
convention of an offset from 2000-01-01T00:00:00.000Z.
"""

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from math import gcd
from typing import Any

import msgspec

from perpetua.core.instruments import InstrumentSpec

__all__ = [
    "EPOCH_2000_NS",
    "Json",
    "JsonRow",
    "JsonScalar",
    "decode_json",
    "encode_json",
    "interval_iso",
    "iso_ms",
    "now_ns",
    "parse_iso_ns",
    "price",
    "rational",
    "tick_size",
]

NS_PER_MS = 1_000_000
EPOCH_2000_NS = 946_684_800 * 1_000_000_000
RATIONAL_DIGITS_MAX = 8  # index and mark prices finer than the tick are shown to 8 decimals

# JSON as the venue writes and reads it: numbers are ints or exact Decimals (encoded as JSON
# numbers; the decoder turns every fraction into a Decimal), never binary floats.
JsonScalar = str | int | Decimal | bool | None
Json = JsonScalar | Sequence["Json"] | Mapping[str, "Json"]
JsonRow = dict[str, Json]  # one BitMEX row (an order, a position, an error body...)

_encoder = msgspec.json.Encoder(decimal_format="number")
_decoder = msgspec.json.Decoder(float_hook=Decimal)  # exact: no binary floats


def encode_json(value: Any) -> bytes:
    return _encoder.encode(value)


def decode_json(data: bytes | str) -> Any:
    return _decoder.decode(data)


def now_ns() -> int:
    return time.time_ns()


@lru_cache(maxsize=4096)
def _iso_of_ms(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{stamp}.{millis:03d}Z"


def iso_ms(ts_ns: int) -> str:
    """``2024-11-24T23:33:19.034Z`` for a time in ns since the epoch."""
    return _iso_of_ms(ts_ns // NS_PER_MS)


def interval_iso(interval_ns: int) -> str:
    """BitMEX interval encoding: 8 h -> ``2000-01-01T08:00:00.000Z``."""
    return iso_ms(EPOCH_2000_NS + interval_ns)


def parse_iso_ns(text: str) -> int | None:
    """ns since the epoch of an ISO-8601 time (``Z`` or offset; date-only allowed); else None."""
    value = text.strip()
    if not value:
        return None
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def price(spec: InstrumentSpec, ticks: int | None) -> Decimal | None:
    """The exact price of ``ticks`` as a Decimal (JSON number on the wire); None stays None."""
    if ticks is None:
        return None
    return _price(spec.tick_num, spec.tick_den, ticks)


@lru_cache(maxsize=65_536)
def _price(tick_num: int, tick_den: int, ticks: int) -> Decimal:
    """Prices repeat (book levels, resting orders): cached, as Decimals are immutable."""
    num, den = _reduced(ticks * tick_num, tick_den)
    return _exact(num, den)


def _reduced(num: int, den: int) -> tuple[int, int]:
    divisor = gcd(num, den) or 1
    return num // divisor, den // divisor


def tick_size(spec: InstrumentSpec) -> Decimal:
    return _exact(spec.tick_num, spec.tick_den)


def _exact(num: int, den: int) -> Decimal:
    if den == 1:
        return Decimal(num)
    return Decimal(num) / Decimal(den)


def rational(num: int, den: int, digits: int = RATIONAL_DIGITS_MAX) -> Decimal:
    """A rational price rounded half-even to ``digits`` decimals, trailing zeros removed."""
    value = (Decimal(num) / Decimal(den)).quantize(Decimal(1).scaleb(-digits))
    normal = value.normalize()
    exponent = normal.as_tuple().exponent
    return normal if isinstance(exponent, int) and exponent <= 0 else normal.quantize(Decimal(1))
