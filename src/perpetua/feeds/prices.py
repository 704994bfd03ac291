"""Exact decimal prices for the feeds: parse, format, rescale. No ``float`` anywhere.

An index value is an integer count of ``10**-decimals`` units (``units``), so ``97843.77`` at 2
decimals is ``9784377``. It enters the core as ``IndexPrice(price_num=units,
price_den=10**decimals)``, an exact rational.

Rounding: ``rescale`` floors (toward -infinity) when it drops digits; ``parse_decimal`` never
rounds: it rejects text finer than the decimals asked for, or anything that is not a plain
positive decimal number (no exponent, no sign, no NaN), with ``ValueError``.
"""

from decimal import Decimal, InvalidOperation

__all__ = [
    "DECIMALS_MAX",
    "format_units",
    "parse_decimal",
    "parse_units",
    "rescale",
    "to_decimal",
]

DECIMALS_MAX = 12  # finer than any index here (EURUSDT's is 5)
_DIGITS = frozenset("0123456789.")


def _pow10(exponent: int) -> int:
    return int(10**exponent)


def parse_decimal(text: str) -> tuple[int, int]:
    """A plain positive decimal string as an exact (units, decimals): ``"1.0850"`` -> (10850, 4).

    Raises ``ValueError`` for empty text, signs, exponents, several dots, or zero.
    """
    value = text.strip()
    if not value or not set(value) <= _DIGITS or value.count(".") > 1 or value in (".",):
        raise ValueError(f"not a plain positive decimal: {text!r}")
    whole, _, fraction = value.partition(".")
    decimals = len(fraction)
    if decimals > DECIMALS_MAX:
        raise ValueError(f"more than {DECIMALS_MAX} decimals: {text!r}")
    units = int((whole or "0") + fraction)
    if units <= 0:
        raise ValueError(f"price must be positive: {text!r}")
    return units, decimals


def parse_units(text: str, decimals: int) -> int:
    """``text`` as a count of ``10**-decimals``; finer text is rejected, never rounded."""
    units, given = parse_decimal(text)
    if given > decimals:
        trimmed, remainder = divmod(units, _pow10(given - decimals))
        if remainder:
            raise ValueError(f"{text!r} is finer than {decimals} decimals")
        return trimmed
    return units * _pow10(decimals - given)


def rescale(units: int, from_decimals: int, to_decimals: int) -> int:
    """Units at ``from_decimals`` expressed at ``to_decimals``, floored when digits drop."""
    if to_decimals >= from_decimals:
        return units * _pow10(to_decimals - from_decimals)
    return units // _pow10(from_decimals - to_decimals)


def format_units(units: int, decimals: int) -> str:
    """``9784377, 2`` -> ``"97843.77"`` (all ``decimals`` digits kept)."""
    if decimals == 0:
        return str(units)
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), _pow10(decimals))
    return f"{sign}{whole}.{fraction:0{decimals}d}"


def to_decimal(units: int, decimals: int) -> Decimal:
    """The exact ``Decimal`` of a unit count (for JSON, where the wire encoder keeps it exact)."""
    try:
        return Decimal(units).scaleb(-decimals)
    except InvalidOperation as error:  # pragma: no cover - ints always convert
        raise ValueError(f"cannot represent {units}e-{decimals}") from error
