from dataclasses import replace
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perpetua.core.catalogue import by_symbol, default_catalogue
from perpetua.core.instruments import (
    InstrumentKind,
    InstrumentSpec,
    OnGrid,
    Payout,
    contract_value,
    contract_value_at,
    home_notional,
    pnl,
    price_of_ticks,
    price_ticks_in_range,
    qty_on_lot,
    spot_base_amount,
    spot_quote_amount,
    ticks_for,
)
from perpetua.core.invariant import InvariantError
from perpetua.core.state import Market

SPECS = by_symbol(default_catalogue())
XBTUSD = SPECS["XBTUSD"]
ETHUSDT = SPECS["ETHUSDT"]
ETHUSD = SPECS["ETHUSD"]
XBT_USDT = SPECS["XBT_USDT"]
ETH_USDT = SPECS["ETH_USDT"]
BMEX_USDT = SPECS["BMEX_USDT"]
BXBT = SPECS[".BXBT"]


def ticks(spec: InstrumentSpec, price: str) -> int:
    """Ticks of a decimal price string, asserting it is on the grid."""
    exact = Fraction(price)
    on_grid = ticks_for(spec, exact.numerator, exact.denominator)
    assert on_grid.ok, price
    return on_grid.ticks


def test_xbtusd_worked_example_inverse_signs() -> None:
    # Reference §3: 1000 long; cost -1_020_408 at 98000, markValue -1_015_228 at 98500.
    entry, mark = ticks(XBTUSD, "98000"), ticks(XBTUSD, "98500")
    assert contract_value(XBTUSD, 1000, entry) == -1_020_408
    assert contract_value(XBTUSD, 1000, mark) == -1_015_228
    assert pnl(XBTUSD, 1000, entry, mark) == 5180
    # A short is the mirror image: truncation toward zero is symmetric.
    assert contract_value(XBTUSD, -1000, entry) == 1_020_408
    assert pnl(XBTUSD, -1000, entry, mark) == -5180


def test_ethusdt_worked_example_linear_with_fine_mark() -> None:
    # Reference §3: 2000 long at 1963, mark 1964.195 (finer than the 0.01 tick).
    entry = ticks(ETHUSDT, "1963")
    assert contract_value(ETHUSDT, 2000, entry) == 39_260_000
    mark_value = contract_value_at(ETHUSDT, 2000, 1_964_195, 1000)
    assert mark_value == 39_283_900
    assert mark_value - contract_value(ETHUSDT, 2000, entry) == 23_900
    assert not ticks_for(ETHUSDT, 1_964_195, 1000).ok
    assert home_notional(ETHUSDT, 2000, entry) == (1, 50)  # 0.02 ETH
    assert home_notional(ETHUSDT, -2000, entry) == (-1, 50)


def test_linear_pnl_is_exact() -> None:
    assert pnl(ETHUSDT, 2000, ticks(ETHUSDT, "1963"), ticks(ETHUSDT, "1964.20")) == 24_000
    assert pnl(ETHUSDT, -2000, ticks(ETHUSDT, "1963"), ticks(ETHUSDT, "1964.20")) == -24_000


def test_values_truncate_toward_zero() -> None:
    three = ticks(XBTUSD, "3")
    assert contract_value(XBTUSD, 1, three) == -33_333_333  # floor would be -33_333_334
    assert contract_value(XBTUSD, -1, three) == 33_333_333
    assert contract_value_at(XBT_USDT, 100, 1, 3) == 33
    assert contract_value_at(XBT_USDT, -100, 1, 3) == -33
    assert contract_value_at(XBTUSD, 1000, 98_500, 1) == -1_015_228


def test_quanto_value_and_notional() -> None:
    price = ticks(ETHUSD, "2000.05")
    assert contract_value(ETHUSD, 10, price) == 2_000_050  # 10 * 100 XBt * 2000.05
    assert contract_value(ETHUSD, -10, price) == -2_000_050
    assert home_notional(ETHUSD, 10, price) == (40_001, 2_000_000)  # 0.0200005 XBT


def test_inverse_home_notional_is_exact() -> None:
    assert home_notional(XBTUSD, 1000, ticks(XBTUSD, "98000")) == (1, 98)
    assert home_notional(XBTUSD, -100, ticks(XBTUSD, "98000.1")) == (-1000, 980_001)


def test_spot_amounts() -> None:
    price = ticks(XBT_USDT, "98000.5")
    assert spot_base_amount(XBT_USDT, 100) == 10_000  # 0.0001 XBT
    assert spot_quote_amount(XBT_USDT, 100, price) == 9_800_050  # 9.80005 USDT
    assert home_notional(XBT_USDT, 100, price) == (1, 10_000)
    assert spot_base_amount(ETH_USDT, 10) == 1_000_000  # 0.001 ETH in Gwei
    assert spot_quote_amount(ETH_USDT, 10, ticks(ETH_USDT, "1963.01")) == 1_963_010
    assert spot_base_amount(BMEX_USDT, 100) == 1_000_000  # 1 BMEX in BMEx
    assert spot_quote_amount(BMEX_USDT, 100, ticks(BMEX_USDT, "0.123")) == 123_000
    with pytest.raises(InvariantError, match="not a spot pair"):
        spot_base_amount(XBTUSD, 100)
    with pytest.raises(InvariantError, match="not a spot pair"):
        spot_quote_amount(ETHUSDT, 1000, 1)


def test_ticks_for_detects_off_grid_prices() -> None:
    assert ticks_for(XBTUSD, 980_001, 10) == OnGrid(ok=True, ticks=980_001)
    assert ticks_for(XBTUSD, 196_000, 2) == OnGrid(ok=True, ticks=980_000)
    assert not ticks_for(XBTUSD, 9_800_015, 100).ok
    assert ticks_for(SPECS["XBTUSDT"], 196_001, 2) == OnGrid(ok=True, ticks=196_001)
    assert not ticks_for(SPECS["XBTUSDT"], 980_001, 10).ok
    assert ticks_for(BMEX_USDT, 123, 1000) == OnGrid(ok=True, ticks=123)
    assert not ticks_for(BMEX_USDT, 1, 10_000).ok
    with pytest.raises(InvariantError):
        ticks_for(XBTUSD, 1, 0)
    with pytest.raises(InvariantError):
        ticks_for(XBTUSD, -1, -10)


def test_price_of_ticks_and_range() -> None:
    assert price_of_ticks(XBTUSD, 980_001) == (980_001, 10)
    assert price_of_ticks(XBTUSD, 980_000) == (98_000, 1)
    assert price_of_ticks(SPECS["EURUSDT"], 108_250) == (433, 400)  # 1.0825
    assert not price_ticks_in_range(XBTUSD, 0)
    assert not price_ticks_in_range(XBTUSD, -5)
    assert price_ticks_in_range(XBTUSD, 1)
    assert price_ticks_in_range(XBTUSD, XBTUSD.max_price_ticks)
    assert not price_ticks_in_range(XBTUSD, XBTUSD.max_price_ticks + 1)


def test_qty_on_lot() -> None:
    assert qty_on_lot(XBTUSD, 100)
    assert qty_on_lot(XBTUSD, -200)
    assert qty_on_lot(XBTUSD, 0)
    assert not qty_on_lot(XBTUSD, 150)
    assert not qty_on_lot(XBTUSD, -50)
    assert qty_on_lot(ETHUSD, 7)


def test_values_need_a_tradable_instrument_and_valid_price() -> None:
    with pytest.raises(InvariantError, match="index"):
        contract_value(BXBT, 1, 100)
    with pytest.raises(InvariantError, match="index"):
        home_notional(BXBT, 1, 100)
    with pytest.raises(InvariantError, match="positive price"):
        contract_value(XBTUSD, 100, 0)
    with pytest.raises(InvariantError, match="positive price"):
        contract_value_at(XBTUSD, 100, -1, 1)
    with pytest.raises(InvariantError, match="denominator"):
        contract_value_at(ETHUSDT, 100, 1, 0)
    with pytest.raises(InvariantError, match="int64"):
        contract_value(ETHUSDT, 10**18, 100)


def test_kind_predicates() -> None:
    assert XBTUSD.is_derivative and XBTUSD.is_tradable_kind and not XBTUSD.has_expiry
    assert SPECS["XBTH27"].has_expiry
    assert not XBT_USDT.is_derivative and XBT_USDT.is_tradable_kind
    assert not BXBT.is_tradable_kind and BXBT.kind == InstrumentKind.INDEX


# Each row breaks one construction invariant of a valid spec.
BROKEN: list[tuple[InstrumentSpec, dict[str, Any], str]] = [
    (XBTUSD, {"tick_num": 0}, "tick"),
    (XBTUSD, {"tick_den": -10}, "tick"),
    (XBTUSD, {"tick_num": 2, "tick_den": 20}, "reduced"),
    (XBTUSD, {"lot_size": 0}, "lot"),
    (XBTUSD, {"max_order_qty": 150}, "lot"),
    (XBTUSD, {"max_price_ticks": 0}, "max price"),
    (XBTUSD, {"multiplier": 100_000_000}, "negative"),
    (XBTUSD, {"underlying_to_settle_multiplier": 100_000_000}, "u2s"),
    (XBTUSD, {"is_inverse": False}, "is_inverse"),
    (XBTUSD, {"is_quanto": True}, "is_quanto"),
    (XBTUSD, {"payout": Payout.SPOT}, "payout"),
    (XBTUSD, {"kind": InstrumentKind.INDEX}, "payout"),
    (XBTUSD, {"symbol": ".XBTUSD"}, "only indices"),
    (XBTUSD, {"state": "Bogus"}, "state"),
    (XBTUSD, {"typ": "FFW"}, "typ"),
    (XBTUSD, {"settl_currency": "XBT"}, "currency"),
    (XBTUSD, {"maint_margin_ppm": 10_000}, "margin"),
    (XBTUSD, {"init_margin_ppm": 1_000_001}, "margin"),
    (XBTUSD, {"risk_limit": 0}, "risk limit"),
    (XBTUSD, {"maker_fee_ppm": 800}, "fee"),
    (XBTUSD, {"settlement_fee_ppm": 500}, "settlement fee"),
    (XBTUSD, {"funding_interval_ns": 0}, "funding"),
    (XBTUSD, {"funding_base_symbol": ""}, "funding"),
    (XBTUSD, {"expiry_ns": 1, "settle_ns": 1}, "never"),
    (XBTUSD, {"settlement_index_symbol": ".BXBT30M"}, "settle"),
    (XBTUSD, {"reference_symbol": ""}, "reference"),
    (XBTUSD, {"price_band_ppm": 0}, "band"),
    (XBTUSD, {"base_currency": "XBt"}, "base currency"),
    (XBTUSD, {"max_order_qty": 10**12}, "int64"),
    (ETHUSDT, {"multiplier": 11}, "u2p"),
    (ETHUSDT, {"quote_to_settle_multiplier": None}, "q2s"),
    (ETHUSDT, {"underlying_to_position_multiplier": None}, "underlying_to_position"),
    (ETHUSD, {"multiplier": -100}, "positive"),
    (SPECS["XBTH27"], {"settle_ns": 0}, "settle"),
    (SPECS["XBTH27"], {"listing_ns": SPECS["XBTH27"].expiry_ns}, "expiry"),
    (SPECS["XBTH27"], {"settlement_index_symbol": ""}, "settlement index"),
    (XBT_USDT, {"base_currency": ""}, "currency"),
    (XBT_USDT, {"base_currency": "USDt"}, "differ"),
    (XBT_USDT, {"base_currency": "Gwei"}, "underlying"),
    (XBT_USDT, {"init_margin_ppm": 10_000}, "margin"),
    (XBT_USDT, {"funding_interval_ns": 1}, "fund"),
    (BXBT, {"multiplier": 1}, "multiplier"),
    (BXBT, {"max_order_qty": 1}, "no orders"),
    (BXBT, {"settl_currency": "XBt"}, "settles nothing"),
    (BXBT, {"taker_fee_ppm": 10}, "fees"),
    (BXBT, {"symbol": "BXBT"}, "only indices"),
    (BXBT, {"index": -1}, "index"),
]


@pytest.mark.parametrize(("spec", "change", "message"), BROKEN)
def test_construction_invariants(
    spec: InstrumentSpec, change: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvariantError, match=message):
        replace(spec, **change)


def test_spot_base_amount_must_be_integral() -> None:
    # 1 qty unit = 1e-9 BMEX: not a whole number of BMEx (1e-6 BMEX), so construction fails.
    with pytest.raises(InvariantError, match="integral"):
        replace(
            BMEX_USDT, symbol="BMEX_ETH", quote_currency="ETH", settl_currency="Gwei",
            multiplier=1, underlying_to_position_multiplier=10**9,
            quote_to_settle_multiplier=10**9, max_order_qty=1000,
        )  # fmt: skip


def test_valid_replace_keeps_working() -> None:
    cheaper = replace(XBTUSD, maker_fee_ppm=-250, taker_fee_ppm=750, tick_num=1, tick_den=2)
    assert cheaper.maker_fee_ppm == -250
    assert ticks_for(cheaper, 1, 2) == OnGrid(ok=True, ticks=1)


qty = st.integers(min_value=-10_000_000, max_value=10_000_000)
price_ticks = st.integers(min_value=1, max_value=10_000_000)


@given(qty, price_ticks)
def test_inverse_value_is_the_exact_value_truncated(q: int, p: int) -> None:
    exact = Fraction(q * XBTUSD.multiplier * XBTUSD.tick_den, p * XBTUSD.tick_num)
    value = contract_value(XBTUSD, q, p)
    assert abs(value) <= abs(exact) < abs(value) + 1
    assert value == -contract_value(XBTUSD, -q, p)
    assert (value <= 0) == (q >= 0) or value == 0


lots = st.integers(min_value=-100_000, max_value=100_000)


@given(lots, price_ticks, price_ticks)
def test_linear_pnl_matches_formula(n: int, entry: int, exit_: int) -> None:
    q = n * ETHUSDT.lot_size
    exact = Fraction(q * ETHUSDT.multiplier * (exit_ - entry) * ETHUSDT.tick_num, ETHUSDT.tick_den)
    assert exact.denominator == 1  # whole lots at on-grid prices are whole USDt
    assert pnl(ETHUSDT, q, entry, exit_) == exact


@given(qty, price_ticks)
def test_grid_round_trip(q: int, p: int) -> None:
    num, den = price_of_ticks(ETHUSD, p)
    assert ticks_for(ETHUSD, num, den) == OnGrid(ok=True, ticks=p)
    assert contract_value_at(ETHUSD, q, num, den) == contract_value(ETHUSD, q, p)


_DERIVATIVES = sorted(
    s.symbol for s in SPECS.values() if s.payout in (Payout.INVERSE, Payout.LINEAR, Payout.QUANTO)
)


@given(
    st.sampled_from(_DERIVATIVES),
    st.integers(-(10**7), 10**7),
    st.integers(1, 10**7),
)
def test_the_markets_pre_reduced_value_is_the_contract_value(
    symbol: str, lots: int, price: int
) -> None:
    """Fills price their value with ``Market.value`` (fractions reduced once per market): it
    must equal ``contract_value`` to the unit, sign and truncation included."""
    spec = SPECS[symbol]
    price = min(price, spec.max_price_ticks)
    qty = lots * spec.lot_size
    assert Market(spec).value(qty, price) == contract_value(spec, qty, price)
