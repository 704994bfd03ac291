"""Reference prices of a market: impact bid/ask, fair-price marking, funding and sample times.

Prices here are in millionths of a tick (``PRICE_FINE_PER_TICK``), exact integers.

* Impact bid/ask (§7.7): the average price of a market sell/buy of the instrument's impact
  notional against the book, quantity-weighted; absent when the side is too thin.
* Perpetual mark (fair price, §7.7): ``index * (1 + fundingRate * timeUntilFunding/interval)``,
  truncated toward the index.
* Future mark: ``index * (1 + basisRate * timeToExpiry/year)`` where the annualised basis rate is
  the mean of the last ``FAIR_BASIS_SAMPLES_MAX`` per-minute samples of
  ``(impactMid/index - 1) * year/timeToExpiry``; with no samples the mark is the index.
* LastPriceProtected (a per-instrument ``mark_method``): the last price clamped to the
  instrument's price band around the index.
* Funding times are 04:00, 12:00 and 20:00 UTC for an 8-hour interval (anchored at 04:00).
"""

from perpetua.core.instruments import InstrumentKind
from perpetua.core.limits import DAY_NS, LEVELS_WALKED_MAX
from perpetua.core.state import PRICE_FINE_PER_TICK, Market

__all__ = [
    "FAIR_BASIS_SAMPLES_MAX",
    "MARK_FAIR_PRICE",
    "MARK_LAST_PRICE_PROTECTED",
    "FUNDING_ANCHOR_NS",
    "MINUTE_NS",
    "YEAR_NS",
    "impact_prices_fine",
    "next_funding_ns",
    "next_minute_ns",
    "update_mark",
]

MINUTE_NS = 60_000_000_000
HOUR_NS = 60 * MINUTE_NS
FUNDING_ANCHOR_NS = 4 * HOUR_NS  # funding times are 04:00 + k * interval, UTC
YEAR_NS = 365 * DAY_NS
FAIR_BASIS_SAMPLES_MAX = 60  # one hour of per-minute basis samples
PPB = 1_000_000_000
MARK_FAIR_PRICE = "FairPrice"
MARK_LAST_PRICE_PROTECTED = "LastPriceProtected"


def next_funding_ns(after_ns: int, interval_ns: int) -> int:
    """The first funding time strictly after ``after_ns``."""
    k = (after_ns - FUNDING_ANCHOR_NS) // interval_ns + 1
    return FUNDING_ANCHOR_NS + k * interval_ns


def next_minute_ns(after_ns: int) -> int:
    return (after_ns // MINUTE_NS + 1) * MINUTE_NS


def _impact_side(market: Market, is_bid: bool) -> int | None:
    """Average price (fine) of taking the impact notional from one side, or None if thin."""
    side = market.book.bids if is_bid else market.book.asks
    notional = market.spec.impact_notional
    if notional <= 0:
        return None
    filled_value = 0
    qty_total = 0
    px_qty = 0
    for level in side.iter_levels(LEVELS_WALKED_MAX):
        size = level.visible_size
        if size <= 0:
            continue
        value = market.value_abs(size, level.price)
        if filled_value + value >= notional:
            remaining = notional - filled_value
            take = max(1, size * remaining // value) if value else size
            qty_total += take
            px_qty += take * level.price
            return px_qty * PRICE_FINE_PER_TICK // qty_total
        filled_value += value
        qty_total += size
        px_qty += size * level.price
    return None


def impact_prices_fine(market: Market) -> tuple[int | None, int | None]:
    return _impact_side(market, True), _impact_side(market, False)


def _perpetual_mark(market: Market, index: int, now_ns: int) -> int:
    funding = market.funding
    interval = market.spec.funding_interval_ns
    if funding.next_funding_ns <= now_ns or interval <= 0:
        return index
    remaining = funding.next_funding_ns - now_ns
    basis = index * funding.rate_ppb * remaining
    den = PPB * interval
    return index + (basis // den if basis >= 0 else -((-basis) // den))


def _future_mark(market: Market, index: int, now_ns: int) -> int:
    samples = market.funding.basis_rates_ppb
    expiry = market.spec.expiry_ns
    if not samples or expiry <= now_ns:
        return index
    rate = sum(samples) // len(samples)  # annualised, ppb
    basis = index * rate * (expiry - now_ns)
    den = PPB * YEAR_NS
    return index + (basis // den if basis >= 0 else -((-basis) // den))


def _last_price_protected(market: Market, index: int) -> int:
    """The last trade price, held within ``price_band_ppm`` of the index (the index until the
    first trade)."""
    last = market.last_price
    if last is None:
        return index
    band = index * market.spec.price_band_ppm // 1_000_000
    return max(index - band, min(index + band, last * PRICE_FINE_PER_TICK))


def update_mark(market: Market, now_ns: int) -> None:
    """Recompute the mark from the index (no index: no mark)."""
    index = market.index_fine
    if index is None:
        return
    kind = market.spec.kind
    if market.spec.mark_method == MARK_LAST_PRICE_PROTECTED:
        market.mark_fine = _last_price_protected(market, index)
    elif kind == InstrumentKind.PERPETUAL:
        market.mark_fine = _perpetual_mark(market, index, now_ns)
    elif kind == InstrumentKind.FUTURE:
        market.mark_fine = _future_mark(market, index, now_ns)
    else:
        market.mark_fine = index


def sample_basis(market: Market, now_ns: int) -> None:
    """A future's per-minute fair-basis sample from the impact mid (skipped without liquidity)."""
    index = market.index_fine
    expiry = market.spec.expiry_ns
    if index is None or index <= 0 or expiry <= now_ns:
        return
    bid, ask = impact_prices_fine(market)
    if bid is None or ask is None:
        return
    mid = (bid + ask) // 2
    rate = (mid - index) * PPB * YEAR_NS // (index * (expiry - now_ns))
    samples = market.funding.basis_rates_ppb
    samples.append(rate)
    if len(samples) > FAIR_BASIS_SAMPLES_MAX:
        del samples[0]
