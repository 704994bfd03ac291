import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perpetua.core import enums
from perpetua.core.enums import OrdType, Side, TimeInForce
from perpetua.core.invariant import InvariantError
from perpetua.core.units import (
    CURRENCIES,
    INT64_MAX,
    INT64_MIN,
    PPM,
    Currency,
    checked_int64,
    currency,
    mul_div_ceil,
    mul_div_floor,
    mul_div_trunc,
)

wide = st.integers(min_value=-(2**80), max_value=2**80)
divisors = st.integers(min_value=1, max_value=2**70)


def test_int64_bounds() -> None:
    assert INT64_MIN == -9_223_372_036_854_775_808
    assert INT64_MAX == 9_223_372_036_854_775_807
    assert checked_int64(INT64_MAX, "x") == INT64_MAX
    assert checked_int64(INT64_MIN, "x") == INT64_MIN
    assert checked_int64(0, "x") == 0


@pytest.mark.parametrize("value", [INT64_MAX + 1, INT64_MIN - 1, 2**100, -(2**100)])
def test_checked_int64_rejects_overflow(value: int) -> None:
    with pytest.raises(InvariantError, match="balance"):
        checked_int64(value, "balance")


@pytest.mark.parametrize(
    ("a", "b", "c", "floor", "ceil", "trunc"),
    [
        (7, 1, 2, 3, 4, 3),
        (-7, 1, 2, -4, -3, -3),
        (7, -1, 2, -4, -3, -3),
        (-7, -1, 2, 3, 4, 3),
        (6, 1, 2, 3, 3, 3),
        (-6, 1, 2, -3, -3, -3),
        (0, 5, 3, 0, 0, 0),
        (-100_000_000, 1000, 98000, -1_020_409, -1_020_408, -1_020_408),
    ],
)
def test_mul_div_table(a: int, b: int, c: int, floor: int, ceil: int, trunc: int) -> None:
    assert mul_div_floor(a, b, c) == floor
    assert mul_div_ceil(a, b, c) == ceil
    assert mul_div_trunc(a, b, c) == trunc


@pytest.mark.parametrize("helper", [mul_div_floor, mul_div_ceil, mul_div_trunc])
@pytest.mark.parametrize("divisor", [0, -1])
def test_mul_div_rejects_non_positive_divisor(helper: object, divisor: int) -> None:
    assert callable(helper)
    with pytest.raises(InvariantError):
        helper(1, 1, divisor)


@given(wide, wide, divisors)
def test_mul_div_floor_matches_fraction(a: int, b: int, c: int) -> None:
    assert mul_div_floor(a, b, c) == math.floor(Fraction(a * b, c))


@given(wide, wide, divisors)
def test_mul_div_ceil_matches_fraction(a: int, b: int, c: int) -> None:
    assert mul_div_ceil(a, b, c) == math.ceil(Fraction(a * b, c))


@given(wide, wide, divisors)
def test_mul_div_trunc_matches_fraction(a: int, b: int, c: int) -> None:
    assert mul_div_trunc(a, b, c) == math.trunc(Fraction(a * b, c))


@given(wide, wide, divisors)
def test_rounding_directions_bracket_the_exact_quotient(a: int, b: int, c: int) -> None:
    exact = Fraction(a * b, c)
    low, high, toward_zero = mul_div_floor(a, b, c), mul_div_ceil(a, b, c), mul_div_trunc(a, b, c)
    assert low <= exact <= high
    assert high - low == (0 if exact.denominator == 1 else 1)
    assert abs(toward_zero) <= abs(exact)
    assert toward_zero in (low, high)


def test_ppm() -> None:
    assert PPM == 1_000_000


def test_currency_table_is_fixed() -> None:
    assert list(CURRENCIES) == ["XBt", "USDt", "Gwei", "BMEx"]
    assert CURRENCIES["XBt"] == Currency("XBt", "XBT", 8, 100_000_000)
    assert CURRENCIES["USDt"] == Currency("USDt", "USDT", 6, 1_000_000)
    assert CURRENCIES["Gwei"] == Currency("Gwei", "ETH", 9, 1_000_000_000)
    assert CURRENCIES["BMEx"] == Currency("BMEx", "BMEX", 6, 1_000_000)
    for code, entry in CURRENCIES.items():
        assert entry.code == code
        assert entry.minor_per_major == 10**entry.scale


def test_currency_lookup() -> None:
    assert currency("Gwei").major == "ETH"
    with pytest.raises(InvariantError, match="XBT"):
        currency("XBT")  # the major code is not a ledger code
    with pytest.raises(InvariantError):
        currency("")


def test_the_plain_int_mirrors_of_enum_members_equal_them() -> None:
    """enums.SIDE_BUY and its kin are what hot paths compare with; they must be the members."""
    mirrors = {
        "SIDE_BUY": Side.BUY,
        "ORD_LIMIT": OrdType.LIMIT,
        "ORD_MARKET": OrdType.MARKET,
        "ORD_STOP": OrdType.STOP,
        "ORD_STOP_LIMIT": OrdType.STOP_LIMIT,
        "ORD_MARKET_IF_TOUCHED": OrdType.MARKET_IF_TOUCHED,
        "ORD_LIMIT_IF_TOUCHED": OrdType.LIMIT_IF_TOUCHED,
        "ORD_PEGGED": OrdType.PEGGED,
        "TIF_IMMEDIATE_OR_CANCEL": TimeInForce.IMMEDIATE_OR_CANCEL,
        "TIF_FILL_OR_KILL": TimeInForce.FILL_OR_KILL,
    }
    for name, member in mirrors.items():
        value = vars(enums)[name]
        assert type(value) is int and value == member, name
    declared = {name for name in vars(enums) if name.split("_")[0] in ("SIDE", "ORD", "TIF")}
    assert declared == set(mirrors)
