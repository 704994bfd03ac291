from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perpetua.core.calendar import (
    ALWAYS_OPEN,
    FX,
    METALS,
    NS_PER_DAY,
    NS_PER_HOUR,
    US_EQUITY,
    civil_from_days,
    days_from_civil,
    utc_ns,
    weekday_of_day,
)
from perpetua.core.catalogue import (
    CATALOGUE_LISTING_NS,
    FEE_MAKER_REBATE_CAP_PPM,
    FEE_TAKER_FLOOR_PPM,
    FEE_TIERS,
    FUNDING_INTERVAL_NS,
    FeeTier,
    by_symbol,
    default_catalogue,
    fee_tier_for_adv,
    future_symbol,
    quarterly_expiry_ns,
    quarterly_future,
    quarterly_listing_ns,
)
from perpetua.core.instruments import (
    InstrumentKind,
    InstrumentSpec,
    Payout,
    contract_value,
    spot_base_amount,
)
from perpetua.core.invariant import InvariantError
from perpetua.core.units import CURRENCIES, INT64_MAX

CATALOGUE = default_catalogue()
SPECS = by_symbol(CATALOGUE)
TRADABLE = [s for s in CATALOGUE if s.kind != InstrumentKind.INDEX]

EXPECTED_SYMBOLS = [
    "XBTUSD", "XBTUSDT", "ETHUSD", "ETHUSDT", "XBTH27", "XBTM27",
    "XBT_USDT", "ETH_USDT", "BMEX_USDT", "SPYUSDT", "XAUUSDT", "EURUSDT",
    ".BXBT", ".BXBTT", ".BXBT30M", ".BETH", ".BETHT", ".BETH30M", ".BBMEXT",
    ".BSPYT", ".BXAUT", ".BEURT", ".BXBTT30M", ".BETHT30M",
]  # fmt: skip


def test_catalogue_order_and_index_are_fixed() -> None:
    assert [s.symbol for s in CATALOGUE] == EXPECTED_SYMBOLS
    assert [s.index for s in CATALOGUE] == list(range(len(CATALOGUE)))
    assert default_catalogue() == CATALOGUE
    assert list(SPECS) == EXPECTED_SYMBOLS


def test_by_symbol_rejects_duplicates() -> None:
    with pytest.raises(InvariantError, match="duplicate"):
        by_symbol((SPECS["XBTUSD"], SPECS["XBTUSD"]))


def test_xbtusd() -> None:
    x = SPECS["XBTUSD"]
    assert (x.kind, x.payout, x.typ, x.state) == (
        InstrumentKind.PERPETUAL, Payout.INVERSE, "FFWCSX", "Open",
    )  # fmt: skip
    assert (x.root_symbol, x.underlying, x.quote_currency) == ("XBT", "XBT", "USD")
    assert (x.settl_currency, x.position_currency, x.base_currency) == ("XBt", "USD", "")
    assert (x.tick_num, x.tick_den, x.lot_size) == (1, 10, 100)
    assert x.max_order_qty == 10_000_000
    assert x.max_price_ticks == 10_000_000  # maxPrice 1_000_000
    assert x.multiplier == -100_000_000
    assert x.underlying_to_settle_multiplier == -100_000_000
    assert x.underlying_to_position_multiplier is None and x.quote_to_settle_multiplier is None
    assert x.is_inverse and not x.is_quanto
    assert (x.init_margin_ppm, x.maint_margin_ppm) == (10_000, 5_000)
    assert (x.risk_limit, x.risk_step) == (20_000_000_000, 15_000_000_000)
    assert x.uses_fee_tiers
    assert (x.maker_fee_ppm, x.taker_fee_ppm) == (200, 750)
    assert x.funding_interval_ns == 8 * NS_PER_HOUR == FUNDING_INTERVAL_NS
    assert (x.funding_base_symbol, x.funding_quote_symbol, x.funding_premium_symbol) == (
        ".XBTBON8H", ".USDBON8H", ".XBTUSDPI8H",
    )  # fmt: skip
    assert x.reference_symbol == ".BXBT" and x.settlement_index_symbol == ""
    assert (x.expiry_ns, x.settle_ns, x.settlement_fee_ppm) == (0, 0, 0)
    assert x.impact_notional == 1_000_000_000  # 10 XBT
    assert x.price_band_ppm == 50_000
    assert x.trading_hours == ALWAYS_OPEN


def test_linear_and_quanto_perpetuals() -> None:
    e = SPECS["ETHUSDT"]
    assert (e.payout, e.settl_currency, e.multiplier) == (Payout.LINEAR, "USDt", 10)
    assert e.underlying_to_position_multiplier == 100_000
    assert e.quote_to_settle_multiplier == 1_000_000
    assert (e.tick_num, e.tick_den) == (1, 20)  # 0.05, BitMEX's ETHUSDT tick
    x = SPECS["XBTUSDT"]
    assert (x.payout, x.settl_currency, x.multiplier) == (Payout.LINEAR, "USDt", 1)
    assert x.underlying_to_position_multiplier == 1_000_000
    assert (x.tick_num, x.tick_den) == (1, 2)
    q = SPECS["ETHUSD"]
    assert (q.payout, q.settl_currency, q.multiplier) == (Payout.QUANTO, "XBt", 100)
    assert q.is_quanto and not q.is_inverse
    assert q.reference_symbol == ".BETH"


@pytest.mark.parametrize(
    ("symbol", "expiry"), [("XBTH27", utc_ns(2027, 3, 26, 12)), ("XBTM27", utc_ns(2027, 6, 25, 12))]
)
def test_quarterly_futures(symbol: str, expiry: int) -> None:
    f = SPECS[symbol]
    assert (f.kind, f.payout, f.typ) == (InstrumentKind.FUTURE, Payout.INVERSE, "FFCCSX")
    assert f.expiry_ns == f.settle_ns == expiry
    assert f.listing_ns == CATALOGUE_LISTING_NS < expiry
    assert f.settlement_index_symbol == ".BXBT30M"
    assert f.settlement_fee_ppm == 500
    assert f.funding_interval_ns == 0 and f.funding_base_symbol == ""
    assert f.multiplier == -100_000_000 and f.settl_currency == "XBt"
    assert f.uses_fee_tiers


def test_future_symbols_and_schedule() -> None:
    assert future_symbol("XBT", 2027, 1) == "XBTH27"
    assert future_symbol("XBT", 2027, 2) == "XBTM27"
    assert future_symbol("XBT", 2027, 3) == "XBTU27"
    assert future_symbol("XBT", 2030, 4) == "XBTZ30"
    assert quarterly_expiry_ns(2026, 4) == utc_ns(2026, 12, 25, 12)
    assert quarterly_expiry_ns(2027, 3) == utc_ns(2027, 9, 24, 12)
    assert quarterly_expiry_ns(2024, 2) == utc_ns(2024, 6, 28, 12)
    assert quarterly_listing_ns(2027, 1) == quarterly_expiry_ns(2026, 3)
    assert quarterly_listing_ns(2027, 2) == quarterly_expiry_ns(2026, 4)
    spec = quarterly_future("XBT", 2027, 3, listing_ns=quarterly_listing_ns(2027, 3), index=40)
    assert (spec.symbol, spec.index) == ("XBTU27", 40)
    assert spec.expiry_ns == utc_ns(2027, 9, 24, 12)
    listed = quarterly_future("XBT", 2027, 1, listing_ns=CATALOGUE_LISTING_NS)
    assert listed == replace(SPECS["XBTH27"], index=0)


def test_quarterly_future_rejects_bad_input() -> None:
    with pytest.raises(InvariantError, match="root"):
        quarterly_future("DOGE", 2027, 1, listing_ns=0)
    with pytest.raises(InvariantError, match="quarter"):
        quarterly_expiry_ns(2027, 5)
    with pytest.raises(InvariantError, match="expiry"):
        quarterly_future("XBT", 2027, 1, listing_ns=utc_ns(2027, 4, 1))


@given(st.integers(min_value=2000, max_value=2099), st.integers(min_value=1, max_value=4))
def test_expiry_is_the_last_friday_of_the_quarter_month_at_noon(year: int, quarter: int) -> None:
    expiry = quarterly_expiry_ns(year, quarter)
    day = expiry // NS_PER_DAY
    assert expiry - day * NS_PER_DAY == 12 * NS_PER_HOUR
    assert weekday_of_day(day) == 4
    y, month, _ = civil_from_days(day)
    assert (y, month) == (year, quarter * 3)
    assert civil_from_days(day + 7)[1] != month  # no later Friday in the month
    assert quarterly_listing_ns(year, quarter) < expiry


def test_spot_pairs() -> None:
    for symbol, base, u2p in (("XBT_USDT", "XBt", 1_000_000), ("ETH_USDT", "Gwei", 10_000),
                              ("BMEX_USDT", "BMEx", 100)):  # fmt: skip
        s = SPECS[symbol]
        assert (s.kind, s.payout, s.typ) == (InstrumentKind.SPOT, Payout.SPOT, "IFXXXP")
        assert (s.settl_currency, s.base_currency) == ("USDt", base)
        assert s.underlying_to_position_multiplier == u2p
        assert s.init_margin_ppm == s.maint_margin_ppm == s.risk_limit == 0
        assert not s.uses_fee_tiers
        one_major = CURRENCIES[base].minor_per_major
        assert spot_base_amount(s, u2p) == one_major


def test_tradfi_perpetuals_have_market_hours() -> None:
    for symbol, hours in (("SPYUSDT", US_EQUITY), ("XAUUSDT", METALS), ("EURUSDT", FX)):
        s = SPECS[symbol]
        assert (s.kind, s.payout, s.settl_currency) == (
            InstrumentKind.PERPETUAL, Payout.LINEAR, "USDt",
        )  # fmt: skip
        assert s.trading_hours == hours
        assert SPECS[s.reference_symbol].trading_hours == hours
        assert not s.uses_fee_tiers
    assert SPECS["XBTUSD"].trading_hours.always_open


@pytest.mark.parametrize("spec", CATALOGUE, ids=lambda s: s.symbol)
def test_every_instrument_invariants(spec: InstrumentSpec) -> None:
    assert spec is SPECS[spec.symbol]
    if spec.kind == InstrumentKind.INDEX:
        assert spec.symbol.startswith(".") and spec.typ == "MRCXXX"
        assert spec.payout == Payout.NONE and spec.state == "Unlisted"
        assert spec.settl_currency == "" and spec.max_order_qty == 0
        return
    assert spec.state == "Open"
    assert spec.settl_currency in CURRENCIES
    assert SPECS[spec.reference_symbol].kind == InstrumentKind.INDEX
    if spec.settlement_index_symbol:
        assert SPECS[spec.settlement_index_symbol].kind == InstrumentKind.INDEX
    assert spec.max_order_qty % spec.lot_size == 0
    for ticks in (1, spec.max_price_ticks):
        value = contract_value(spec, spec.max_order_qty, ticks)
        assert abs(value) <= INT64_MAX
        assert (value > 0) == (spec.multiplier > 0)
    assert spec.maker_fee_ppm <= spec.taker_fee_ppm
    assert (spec.funding_interval_ns > 0) == (spec.kind == InstrumentKind.PERPETUAL)
    assert (spec.expiry_ns > 0) == (spec.kind == InstrumentKind.FUTURE)


def test_fee_tier_table() -> None:
    assert (
        FeeTier(0, 750, 200),
        FeeTier(1_000_000, 500, 100),
        FeeTier(5_000_000, 400, 0),
        FeeTier(10_000_000, 350, 0),
        FeeTier(25_000_000, 300, 0),
        FeeTier(50_000_000, 250, 0),
        FeeTier(100_000_000, 240, -30),
        FeeTier(250_000_000, 230, -50),
        FeeTier(500_000_000, 220, -80),
        FeeTier(1_000_000_000, 175, -100),
    ) == FEE_TIERS
    assert FEE_TAKER_FLOOR_PPM == 175
    assert FEE_MAKER_REBATE_CAP_PPM == -125
    for lower, higher in zip(FEE_TIERS, FEE_TIERS[1:], strict=False):
        assert lower.adv_usd_min < higher.adv_usd_min
        assert lower.taker_fee_ppm > higher.taker_fee_ppm
        assert lower.maker_fee_ppm >= higher.maker_fee_ppm
    assert all(row.taker_fee_ppm >= FEE_TAKER_FLOOR_PPM for row in FEE_TIERS)
    assert all(row.maker_fee_ppm >= FEE_MAKER_REBATE_CAP_PPM for row in FEE_TIERS)


@pytest.mark.parametrize(
    ("adv_usd", "tier"),
    [(0, 0), (999_999, 0), (1_000_000, 1), (4_999_999, 1), (5_000_000, 2), (99_999_999, 5),
     (100_000_000, 6), (999_999_999, 8), (1_000_000_000, 9), (10**15, 9)],
)  # fmt: skip
def test_fee_tier_for_adv(adv_usd: int, tier: int) -> None:
    assert fee_tier_for_adv(adv_usd) == tier


def test_fee_tier_for_negative_adv_is_a_bug() -> None:
    with pytest.raises(InvariantError):
        fee_tier_for_adv(-1)


def test_days_helper_used_by_catalogue() -> None:
    assert days_from_civil(2026, 1, 1) * NS_PER_DAY == CATALOGUE_LISTING_NS
