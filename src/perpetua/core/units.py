"""Integer units: 64-bit bounds, rounding helpers and the ledger currencies.

Invariants:
- Money is an ``int`` in the minor unit of its currency (``XBt`` = 1e-8 XBT, ``USDt`` = 1e-6
  USDT, ``Gwei`` = 1e-9 ETH, ``BMEx`` = 1e-6 BMEX). Values entering state must fit a signed
  64-bit integer; ``checked_int64`` asserts it.
- Rates are integer parts per million (``PPM``): 0.05% = 500 ppm.
- ``CURRENCIES`` has a fixed insertion order (XBt, USDt, Gwei, BMEx); iterate it, never a set.

Rounding rules (every helper names its direction; the divisor must be positive):
- ``mul_div_floor(a, b, c)`` = floor(a*b/c), toward -infinity;
- ``mul_div_ceil(a, b, c)`` = ceil(a*b/c), toward +infinity;
- ``mul_div_trunc(a, b, c)`` = a*b/c truncated toward zero.
The product ``a*b`` is exact (Python ints are unbounded), so there is no intermediate overflow;
only the result is meant to be checked against 64 bits by the caller.
"""

from typing import NamedTuple

from perpetua.core.invariant import fail, invariant

__all__ = [
    "CURRENCIES",
    "INT64_MAX",
    "INT64_MIN",
    "PPM",
    "PRICE_FINE_PER_TICK",
    "Currency",
    "checked_int64",
    "currency",
    "mul_div_ceil",
    "mul_div_floor",
    "mul_div_trunc",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

PPM = 1_000_000
# Mark, index and settlement prices are kept in millionths of a tick (the core's "fine" prices);
# every reader that turns them into a price divides by this one number.
PRICE_FINE_PER_TICK = 1_000_000


def checked_int64(value: int, what: str) -> int:
    """Return ``value`` unchanged after asserting that it fits a signed 64-bit integer."""
    if not INT64_MIN <= value <= INT64_MAX:  # not invariant(): its message would be built
        fail(f"{what} does not fit int64: {value}")  # on every call, a hot path's cost
    return value


def mul_div_floor(a: int, b: int, c: int) -> int:
    """floor(a*b/c), rounded toward -infinity; ``c`` > 0."""
    if c <= 0:
        fail(f"mul_div_floor divisor must be positive: {c}")
    return (a * b) // c


def mul_div_ceil(a: int, b: int, c: int) -> int:
    """ceil(a*b/c), rounded toward +infinity; ``c`` > 0."""
    if c <= 0:
        fail(f"mul_div_ceil divisor must be positive: {c}")
    return -((-(a * b)) // c)


def mul_div_trunc(a: int, b: int, c: int) -> int:
    """a*b/c truncated toward zero; ``c`` > 0."""
    if c <= 0:
        fail(f"mul_div_trunc divisor must be positive: {c}")
    product = a * b
    quotient = abs(product) // c
    return quotient if product >= 0 else -quotient


class Currency(NamedTuple):
    """A ledger currency: ``code`` is the minor-unit code as BitMEX writes it (``XBt``)."""

    code: str
    major: str
    scale: int
    minor_per_major: int


def _make(code: str, major: str, scale: int) -> Currency:
    invariant(0 <= scale <= 18, f"currency {code}: scale out of range: {scale}")
    return Currency(code=code, major=major, scale=scale, minor_per_major=10**scale)


CURRENCIES: dict[str, Currency] = {
    c.code: c
    for c in (
        _make("XBt", "XBT", 8),
        _make("USDt", "USDT", 6),
        _make("Gwei", "ETH", 9),
        _make("BMEx", "BMEX", 6),
    )
}


def currency(code: str) -> Currency:
    """The ledger currency with minor-unit ``code``; an unknown code is a programmer error."""
    found = CURRENCIES.get(code)
    if found is None:
        fail(f"unknown currency code: {code!r}")
    return found
