"""The funding series as index rows (``marketdata.rate_indices``): which rows the funded
perpetuals publish, their values from ``PremiumSampled``, the shared quote interest index and
the start-up seed."""

from decimal import Decimal
from typing import Any

from perpetua.core.catalogue import default_catalogue
from perpetua.core.events import PremiumSampled
from perpetua.core.instruments import InstrumentKind
from perpetua.marketdata.hub import MarketData
from perpetua.marketdata.rate_indices import RateIndices, rate_index_specs

MINUTE_NS = 60 * 10**9
T0_NS = 1_800_000_000 * 10**9


def _market() -> MarketData:
    market = MarketData(default_catalogue())
    market.wanted = {"instrument"}
    for spec in market.instrument_specs():
        market.published[spec.symbol] = market.live(spec.symbol)
    return market


def _updates(deltas: list[Any]) -> dict[str, dict[str, Any]]:
    """symbol -> its instrument update (one per symbol and command here)."""
    rows = [row for d in deltas if d.table == "instrument" for row in d.rows]
    assert all(d.action == "update" for d in deltas if d.table == "instrument")
    return {row["symbol"]: row for row in rows}


def test_every_funded_perpetual_publishes_its_four_series_once() -> None:
    catalogue = default_catalogue()
    specs = rate_index_specs(catalogue)
    perpetuals = [s for s in catalogue if s.kind == InstrumentKind.PERPETUAL]
    for perpetual in perpetuals:
        for symbol in (
            f".{perpetual.symbol}PI",
            perpetual.funding_premium_symbol,
            perpetual.funding_base_symbol,
            perpetual.funding_quote_symbol,
        ):
            assert specs[symbol].kind == InstrumentKind.INDEX
            assert (specs[symbol].typ, specs[symbol].state) == ("MRRXXX", "Unlisted")
    assert ".XBTUSDPI8H" in specs and ".USDBON8H" in specs and ".USDTBON8H" in specs
    assert not {s.symbol for s in catalogue} & set(specs)  # none is an engine instrument


def test_a_sample_publishes_exact_rates_and_the_interest_identity() -> None:
    market = _market()
    sample = PremiumSampled(T0_NS, "XBTUSD", 123_456, -7, 100_000)
    rows = _updates(market.apply(1, T0_NS, None, [sample]))
    assert rows[".XBTUSDPI"]["lastPrice"] == Decimal("0.000123456")
    assert rows[".XBTUSDPI8H"]["lastPrice"] == Decimal("-0.000000007")
    base, quote = rows[".XBTBON8H"]["lastPrice"], rows[".USDBON8H"]["lastPrice"]
    assert (base, quote) == (Decimal("0.0003"), Decimal("0.0006"))  # BitMEX's XBT fixture
    assert (quote - base) / 3 == Decimal(sample.interest_ppb) / 10**9
    perpetual = market.instrument_row("XBTUSD")
    assert (perpetual["fundingBaseRate"], perpetual["fundingQuoteRate"]) == (base, quote)
    assert (
        perpetual["fundingBaseSymbol"],
        perpetual["fundingQuoteSymbol"],
        perpetual["fundingPremiumSymbol"],
    ) == (".XBTBON8H", ".USDBON8H", ".XBTUSDPI8H")
    assert rows[".XBTUSDPI"]["publishTime"] == "2027-01-15T08:00:00.000Z"

    later = PremiumSampled(T0_NS + MINUTE_NS, "XBTUSD", 1_000, 62_228, 100_000)
    rows = _updates(market.apply(2, later.ts_ns, None, [later]))
    assert set(rows) == {".XBTUSDPI", ".XBTUSDPI8H"}  # the interest indices did not move
    assert market.live(".XBTUSDPI8H")["lastPrice"] == Decimal("0.000062228")


def test_a_shared_quote_index_follows_the_first_perpetual_naming_it() -> None:
    market = _market()
    market.apply(1, T0_NS, None, [PremiumSampled(T0_NS, "XBTUSD", 0, 0, 100_000)])
    assert market.live(".USDBON8H")["lastPrice"] == Decimal("0.0006")
    # ETHUSD sorts before XBTUSD: from its first sample on, .USDBON8H is its interest's
    market.apply(2, T0_NS + 1, None, [PremiumSampled(T0_NS + 1, "ETHUSD", 0, 0, 200_000)])
    assert market.live(".USDBON8H")["lastPrice"] == Decimal("0.0009")
    rows = _updates(
        market.apply(3, T0_NS + 2, None, [PremiumSampled(T0_NS + 2, "XBTUSD", 0, 0, 100_000)])
    )
    assert ".USDBON8H" not in rows
    assert market.live(".USDBON8H")["lastPrice"] == Decimal("0.0009")
    assert market.instrument_row("XBTUSD")["fundingQuoteRate"] == Decimal("0.0006")  # its own
    assert market.instrument_row("ETHUSD")["fundingQuoteRate"] == Decimal("0.0009")


def test_rows_are_null_before_the_first_sample() -> None:
    market = _market()
    for symbol in market.rates.specs:
        row = market.instrument_row(symbol)
        assert row["lastPrice"] is None and row["markPrice"] is None
    perpetual = market.instrument_row("XBTUSD")
    assert "fundingBaseRate" not in perpetual and "fundingQuoteRate" not in perpetual


def test_the_seed_averages_as_the_core_rounds() -> None:
    rates = RateIndices(default_catalogue())
    assert rates.seed("XBTUSD", 100_000, -5_000, 2) == [  # -2.5 millionths: half away from 0
        (".XBTBON8H", 300_000),
        (".USDBON8H", 600_000),
        (".XBTUSDPI8H", -3_000),
    ]
    assert rates.seed("XBTUSD", 100_000, -4_000, 3) == [(".XBTUSDPI8H", -1_000)]
    assert rates.seed("XBTUSD", 100_000, 0, 0) == []  # no samples yet this interval
    assert rates.seed("XBTH27", 0, 5, 1) == []  # a future has no funding series
