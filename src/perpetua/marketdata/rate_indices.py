"""The funding series as BitMEX index rows (reference §7.6, §7.8), one set per funded perpetual S:

* ``.{S}PI``, the premium index: this minute's premium sample (``PremiumSampled.premium_ppb``);
* ``.{S}PI8H``, the perpetual's ``fundingPremiumSymbol``: the average of the current funding
  interval's samples so far (``average_ppb``, to the core's published step of one millionth);
* ``.{BASE}BON8H`` and ``.{QUOTE}BON8H``, its ``fundingBaseSymbol`` and ``fundingQuoteSymbol``
  (BASE the underlying, QUOTE the quote currency): interest per funding interval, set so that
  BitMEX's ``I = (quote - base) / 3`` is the core's interest component ``I`` (``interest_ppb``):
  the base is 0.03% (``BASE_INTEREST_PPB``) and the quote 0.03% + 3 I, so 0.06% with the
  default I = 0.01%, as BitMEX's XBT pair.

Several perpetuals name the same interest index (``.USDTBON8H``, ``.XBTBON8H``). The base is
the same constant for all. A quote index follows the alphabetically first perpetual naming it
that has sampled, so its value is a function of the event stream whatever the interest rates;
each perpetual's own ``fundingBaseRate``/``fundingQuoteRate`` carry its own interest.

The rows are index rows like ``.BXBT`` (``InstrumentKind.INDEX``, state Unlisted, ``typ``
``MRRXXX``): in ``/instrument``, ``/instrument/indices`` and the WebSocket ``instrument`` table,
not in ``/instrument/active`` nor the ``trade`` table. ``lastPrice`` (= ``markPrice``) is the
exact rate, ppb / 10^9, and null until the first sample. At start-up the views are seeded from
the recovered engine's funding state (``seed``): the interest indices and ``.{S}PI8H`` (when
the interval has samples); ``.{S}PI`` stays null until the next minute's sample, because the
engine keeps only the samples' sum.
"""

from collections.abc import Iterable
from typing import NamedTuple

from perpetua.core.calendar import ALWAYS_OPEN
from perpetua.core.events import PremiumSampled
from perpetua.core.instruments import InstrumentKind, InstrumentSpec, Payout
from perpetua.core.risk import premium_average_ppb

__all__ = [
    "BASE_INTEREST_PPB",
    "RATE_DEN",
    "RATE_DIGITS",
    "RATE_INDEX_TYP",
    "RATE_PUBLISH_INTERVAL_NS",
    "FundingSeries",
    "RateIndices",
    "funding_series",
    "quote_interest_ppb",
    "rate_index_specs",
]

RATE_DEN = 1_000_000_000  # the core's rates are ppb
RATE_DIGITS = 9  # so a rate row shows the core's value exactly
RATE_INDEX_TYP = "MRRXXX"  # BitMEX's index typ for rates (prices are MRCXXX)
RATE_TICK_DEN = 1_000_000  # tickSize 0.000001; values are finer, as index prices are
RATE_PUBLISH_INTERVAL_NS = 60 * 10**9  # one sample a minute
BASE_INTEREST_PPB = 300_000  # 0.03% per interval: BitMEX's .XBTBON8H


class FundingSeries(NamedTuple):
    """The index symbols of one perpetual's funding."""

    premium: str  # .XBTUSDPI
    average: str  # .XBTUSDPI8H
    base: str  # .XBTBON8H
    quote: str  # .USDBON8H


def funding_series(spec: InstrumentSpec) -> FundingSeries | None:
    """The series a perpetual's funding publishes; None for an instrument that does not fund."""
    if spec.kind != InstrumentKind.PERPETUAL or spec.funding_interval_ns <= 0:
        return None
    return FundingSeries(
        f".{spec.symbol}PI",
        spec.funding_premium_symbol or f".{spec.symbol}PI8H",
        spec.funding_base_symbol or f".{spec.underlying}BON8H",
        spec.funding_quote_symbol or f".{spec.quote_currency}BON8H",
    )


def quote_interest_ppb(interest_ppb: int) -> int:
    """The quote interest index for an interest component: ``base + 3 I``."""
    return BASE_INTEREST_PPB + 3 * interest_ppb


def _rate_spec(symbol: str, root: str, quote: str, listing_ns: int) -> InstrumentSpec:
    return InstrumentSpec(
        symbol=symbol,
        root_symbol=root,
        typ=RATE_INDEX_TYP,
        kind=InstrumentKind.INDEX,
        payout=Payout.NONE,
        state="Unlisted",
        underlying=root,
        quote_currency=quote,
        settl_currency="",
        position_currency="",
        base_currency="",
        tick_num=1,
        tick_den=RATE_TICK_DEN,
        lot_size=1,
        max_order_qty=0,
        max_price_ticks=RATE_TICK_DEN,
        multiplier=0,
        underlying_to_position_multiplier=None,
        underlying_to_settle_multiplier=None,
        quote_to_settle_multiplier=None,
        is_inverse=False,
        is_quanto=False,
        init_margin_ppm=0,
        maint_margin_ppm=0,
        risk_limit=0,
        risk_step=0,
        maker_fee_ppm=0,
        taker_fee_ppm=0,
        settlement_fee_ppm=0,
        uses_fee_tiers=False,
        funding_interval_ns=0,
        funding_base_symbol="",
        funding_quote_symbol="",
        funding_premium_symbol="",
        listing_ns=listing_ns,
        expiry_ns=0,
        settle_ns=0,
        reference_symbol="",
        settlement_index_symbol="",
        trading_hours=ALWAYS_OPEN,
        impact_notional=0,
        price_band_ppm=0,
        index=0,
    )


def rate_index_specs(specs: Iterable[InstrumentSpec]) -> dict[str, InstrumentSpec]:
    """The rate index rows the funded perpetuals among ``specs`` publish, in their order
    (premium, average, base, quote per perpetual; a shared one once); symbols ``specs`` already
    holds are left to it."""
    specs = list(specs)
    known = {s.symbol for s in specs}
    out: dict[str, InstrumentSpec] = {}
    for spec in specs:
        series = funding_series(spec)
        if series is None:
            continue
        currencies = ((spec.root_symbol, spec.quote_currency),) * 2 + (
            (spec.underlying, spec.underlying),
            (spec.quote_currency, spec.quote_currency),
        )
        for symbol, (root, quote) in zip(series, currencies, strict=True):
            if symbol not in known and symbol not in out:
                out[symbol] = _rate_spec(symbol, root, quote, spec.listing_ns)
    return out


class RateIndices:
    """The rate rows' specs and the values ``PremiumSampled`` (or the start-up seed) gives."""

    def __init__(self, specs: Iterable[InstrumentSpec]) -> None:
        specs = list(specs)
        self.specs = rate_index_specs(specs)
        self.series: dict[str, FundingSeries] = {}
        self.quote_followed: dict[str, list[str]] = {}  # quote index -> perpetuals, sorted
        for spec in specs:
            series = funding_series(spec)
            if series is not None:
                self.series[spec.symbol] = series
                self.quote_followed.setdefault(series.quote, []).append(spec.symbol)
        for perpetuals in self.quote_followed.values():
            perpetuals.sort()
        self.interest_ppb: dict[str, int] = {}  # perpetual -> interest of its last sample
        self.values_ppb: dict[str, int] = {}  # index symbol -> the value published

    def on_sample(self, event: PremiumSampled) -> list[tuple[str, int]]:
        """(index symbol, value ppb) of every row the sample publishes: the premium and its
        average each minute, an interest index when its value changes."""
        series = self.series.get(event.symbol)
        if series is None:
            return []
        out = [(series.premium, event.premium_ppb), (series.average, event.average_ppb)]
        out.extend(self._interest(event.symbol, event.interest_ppb))
        for symbol, value in out:
            self.values_ppb[symbol] = value
        return out

    def seed(
        self, symbol: str, interest_ppb: int, premium_sum_ppb: int, premium_count: int
    ) -> list[tuple[str, int]]:
        """The rows a recovered market's funding state gives (``.{S}PI`` needs the next sample):
        the interest indices and, when the interval has samples, their average (as the core
        rounds it: to the published step)."""
        series = self.series.get(symbol)
        if series is None:
            return []
        out = self._interest(symbol, interest_ppb)
        if premium_count > 0:
            out.append((series.average, premium_average_ppb(premium_sum_ppb, premium_count)))
        for index_symbol, value in out:
            self.values_ppb[index_symbol] = value
        return out

    def _interest(self, symbol: str, interest_ppb: int) -> list[tuple[str, int]]:
        series = self.series[symbol]
        self.interest_ppb[symbol] = interest_ppb
        follows = next(p for p in self.quote_followed[series.quote] if p in self.interest_ppb)
        out = []
        for index_symbol, value in (
            (series.base, BASE_INTEREST_PPB),
            (series.quote, quote_interest_ppb(self.interest_ppb[follows])),
        ):
            if self.values_ppb.get(index_symbol) != value:
                out.append((index_symbol, value))
        return out
