"""BitMEX ``Instrument`` rows: static fields from the spec, live fields from the market.

``static_row`` is computed once per instrument. ``live_row`` holds what moves: last price and
tick direction, bid/ask/mid from the L2 book, 24 h statistics from the hourly bins, open
interest and value, and the risk engine's figures from ``MarkUpdated``: ``markPrice`` (=
``fairPrice``), ``indicativeSettlePrice`` (the reference index), ``fundingRate`` (the rate for
the next ``fundingTimestamp``), ``indicativeFundingRate``, ``fairBasis`` (mark - index) and
``fairBasisRate`` (annualised: perpetuals ``fundingRate x intervals per year``, futures the
impact-mid basis ``(mark / index - 1) x year / time to expiry``). Before the first mark,
``markPrice`` is the reference index or, without one, the last price. A perpetual's
``fundingBaseRate``/``fundingQuoteRate`` (its interest indices, ``rate_indices``) follow the
interest of its last ``PremiumSampled``.

Impact prices (§7.7) are computed from the L2 book as the core does: the average price of
taking the instrument's impact notional from each side (walking at most
``IMPACT_LEVELS_WALKED_MAX`` levels); ``hasLiquidity`` says both exist within one maintenance
margin of each other.
"""

from decimal import Decimal
from typing import Any

from perpetua.core.instruments import InstrumentKind, InstrumentSpec, contract_value
from perpetua.core.units import PPM, PRICE_FINE_PER_TICK
from perpetua.marketdata.book import L2Book
from perpetua.marketdata.rate_indices import (
    BASE_INTEREST_PPB,
    RATE_DIGITS,
    RATE_INDEX_TYP,
    RATE_PUBLISH_INTERVAL_NS,
    quote_interest_ppb,
)
from perpetua.wire.values import interval_iso, iso_ms, price, rational, tick_size

__all__ = [
    "FUNDING_OFFSET_NS",
    "MarketStats",
    "funding_timestamp_ns",
    "impact_prices",
    "live_row",
    "static_row",
]

FUNDING_OFFSET_NS = 4 * 3_600 * 10**9  # funding at 04:00, 12:00 and 20:00 UTC
INDEX_PUBLISH_INTERVAL_NS = 5 * 10**9
_PCT_QUANTUM = Decimal("1e-4")
FUNDING_RATE_DEN = 1_000_000_000  # the core's funding rates: ppb
YEAR_NS = 365 * 86_400 * 10**9
IMPACT_LEVELS_WALKED_MAX = 1_000


def _ppm(value: int) -> Decimal:
    return (Decimal(value) / Decimal(PPM)).normalize()


def funding_timestamp_ns(spec: InstrumentSpec, now_ns: int) -> int | None:
    interval = spec.funding_interval_ns
    if interval <= 0:
        return None
    return ((now_ns - FUNDING_OFFSET_NS) // interval + 1) * interval + FUNDING_OFFSET_NS


def static_row(spec: InstrumentSpec) -> dict[str, Any]:
    """Fields that never change while the process runs."""
    is_index = spec.kind == InstrumentKind.INDEX
    publish_ns = (
        RATE_PUBLISH_INTERVAL_NS if spec.typ == RATE_INDEX_TYP else (INDEX_PUBLISH_INTERVAL_NS)
    )
    row: dict[str, Any] = {
        "symbol": spec.symbol,
        "rootSymbol": spec.root_symbol,
        "typ": spec.typ,
        "listing": iso_ms(spec.listing_ns),
        "front": iso_ms(spec.listing_ns),
        "expiry": iso_ms(spec.expiry_ns) if spec.expiry_ns else None,
        "settle": iso_ms(spec.settle_ns) if spec.settle_ns else None,
        "listedSettle": iso_ms(spec.settle_ns) if spec.settle_ns else None,
        "positionCurrency": spec.position_currency,
        "underlying": spec.underlying,
        "quoteCurrency": spec.quote_currency,
        "underlyingSymbol": f"{spec.underlying}=",
        "reference": "BMI" if is_index else "BMEX",
        "referenceSymbol": spec.symbol if is_index else spec.reference_symbol,
        "maxOrderQty": spec.max_order_qty if not is_index else None,
        "maxPrice": price(spec, spec.max_price_ticks),
        "lotSize": spec.lot_size,
        "tickSize": tick_size(spec),
        "multiplier": spec.multiplier,
        "settlCurrency": spec.settl_currency,
        "underlyingToPositionMultiplier": spec.underlying_to_position_multiplier,
        "underlyingToSettleMultiplier": spec.underlying_to_settle_multiplier,
        "quoteToSettleMultiplier": spec.quote_to_settle_multiplier,
        "isQuanto": spec.is_quanto,
        "isInverse": spec.is_inverse,
        "initMargin": _ppm(spec.init_margin_ppm),
        "maintMargin": _ppm(spec.maint_margin_ppm),
        "riskLimit": spec.risk_limit or None,
        "riskStep": spec.risk_step or None,
        "capped": False,
        "taxed": True,
        "deleverage": spec.is_derivative,
        "makerFee": _ppm(spec.maker_fee_ppm),
        "takerFee": _ppm(spec.taker_fee_ppm),
        "settlementFee": _ppm(spec.settlement_fee_ppm),
        "fundingBaseSymbol": spec.funding_base_symbol or None,
        "fundingQuoteSymbol": spec.funding_quote_symbol or None,
        "fundingPremiumSymbol": spec.funding_premium_symbol or None,
        "fundingInterval": interval_iso(spec.funding_interval_ns)
        if spec.funding_interval_ns
        else None,
        "calcInterval": interval_iso(publish_ns) if is_index else None,
        "publishInterval": interval_iso(publish_ns) if is_index else None,
        "fairMethod": "FundingRate"
        if spec.kind == InstrumentKind.PERPETUAL
        else ("ImpactMidPrice" if spec.kind == InstrumentKind.FUTURE else None),
        "markMethod": "FairPrice" if spec.is_derivative else "LastPrice",
    }
    return row


class MarketStats:
    """Live numbers of one instrument, updated by the hub."""

    __slots__ = (
        "state",
        "last_ticks",
        "tick_dir",
        "total_volume",
        "total_turnover",
        "open_interest",
        "index",
        "ts_ns",
        "prev_close_ticks",
        "mark_fine",
        "index_fine",
        "funding_rate_ppb",
        "indicative_rate_ppb",
        "next_funding_ns",
        "interest_ppb",
    )

    def __init__(self, state: str) -> None:
        self.state = state
        self.last_ticks: int | None = None
        self.tick_dir = ""
        self.total_volume = 0
        self.total_turnover = 0
        self.open_interest = 0
        self.index: tuple[int, int] | None = None  # reference (or own, for indices) price
        self.ts_ns = 0
        self.prev_close_ticks: int | None = None
        self.mark_fine: int | None = None  # MarkUpdated: millionths of a tick
        self.index_fine: int | None = None
        self.funding_rate_ppb: int | None = None
        self.indicative_rate_ppb: int | None = None
        self.next_funding_ns = 0
        self.interest_ppb: int | None = None  # PremiumSampled: the funding's interest component


def _fine(spec: InstrumentSpec, fine: int | None) -> Decimal | None:
    if fine is None:
        return None
    return rational(fine * spec.tick_num, spec.tick_den * PRICE_FINE_PER_TICK)


def _mark(spec: InstrumentSpec, stats: MarketStats) -> Decimal | None:
    if stats.mark_fine is not None:
        return _fine(spec, stats.mark_fine)
    if stats.index is not None:
        return rational(*stats.index)
    return price(spec, stats.last_ticks)


def _impact_side(spec: InstrumentSpec, levels: list[tuple[int, int]]) -> int | None:
    """Average price (millionths of a tick) of taking the impact notional, as the core."""
    notional = spec.impact_notional
    filled = qty_total = px_qty = 0
    for level_price, size in levels:
        value = abs(contract_value(spec, size, level_price))
        if filled + value >= notional:
            take = max(1, size * (notional - filled) // value) if value else size
            qty_total += take
            px_qty += take * level_price
            return px_qty * PRICE_FINE_PER_TICK // qty_total
        filled += value
        qty_total += size
        px_qty += size * level_price
    return None


def impact_prices(spec: InstrumentSpec, book: L2Book) -> tuple[int | None, int | None]:
    """(impact bid, impact ask) in millionths of a tick, None for a side too thin."""
    if spec.impact_notional <= 0:
        return None, None
    return (
        _impact_side(spec, book.top(1, IMPACT_LEVELS_WALKED_MAX)),
        _impact_side(spec, book.top(-1, IMPACT_LEVELS_WALKED_MAX)),
    )


def _funding_fields(spec: InstrumentSpec, stats: MarketStats, now_ns: int) -> dict[str, Any]:
    """Funding, fair basis and the settle reference, from the last ``MarkUpdated``."""
    out: dict[str, Any] = {}
    mark, index = stats.mark_fine, stats.index_fine
    if mark is not None and index is not None:
        out["fairBasis"] = rational(
            (mark - index) * spec.tick_num, spec.tick_den * PRICE_FINE_PER_TICK
        )
        if spec.kind == InstrumentKind.FUTURE and spec.expiry_ns > now_ns and index > 0:
            out["fairBasisRate"] = rational(
                (mark - index) * YEAR_NS, index * (spec.expiry_ns - now_ns), 6
            )
    if spec.kind == InstrumentKind.PERPETUAL and stats.funding_rate_ppb is not None:
        rate = stats.funding_rate_ppb
        out["fundingRate"] = rational(rate, FUNDING_RATE_DEN, 9)
        out["indicativeFundingRate"] = rational(stats.indicative_rate_ppb or 0, FUNDING_RATE_DEN, 9)
        if spec.funding_interval_ns > 0:
            out["fairBasisRate"] = rational(
                rate * YEAR_NS, FUNDING_RATE_DEN * spec.funding_interval_ns, 6
            )
    if spec.kind == InstrumentKind.PERPETUAL and stats.interest_ppb is not None:
        out["fundingBaseRate"] = rational(BASE_INTEREST_PPB, FUNDING_RATE_DEN, RATE_DIGITS)
        out["fundingQuoteRate"] = rational(
            quote_interest_ppb(stats.interest_ppb), FUNDING_RATE_DEN, RATE_DIGITS
        )
    if stats.next_funding_ns:
        out["fundingTimestamp"] = iso_ms(stats.next_funding_ns)
    if stats.index_fine is not None and stats.index is None:
        out["indicativeSettlePrice"] = _fine(spec, stats.index_fine)
    return out


def live_row(
    spec: InstrumentSpec,
    stats: MarketStats,
    best_bid: int | None,
    best_ask: int | None,
    day: dict[str, Any],
    open_value: int,
    impact: tuple[int | None, int | None] = (None, None),
    now_ns: int = 0,
) -> dict[str, Any]:
    """Fields that move; ``day`` holds the 24 h figures from the hourly bins."""
    bid = price(spec, best_bid)
    ask = price(spec, best_ask)
    mid = None
    if bid is not None and ask is not None:
        mid = ((bid + ask) / 2).normalize()
    last = price(spec, stats.last_ticks)
    prev24 = day.get("prevPrice24h")
    change = None
    if last is not None and prev24:
        change = ((last - prev24) / prev24).quantize(_PCT_QUANTUM)
    mark = _mark(spec, stats)
    funding_ts = funding_timestamp_ns(spec, stats.ts_ns)
    impact_bid, impact_ask = impact
    impact_mid = None
    has_liquidity = False
    if impact_bid is not None and impact_ask is not None:
        impact_mid = (impact_bid + impact_ask) // 2
        spread = (impact_ask - impact_bid) * PPM
        has_liquidity = impact_mid > 0 and spread <= spec.maint_margin_ppm * impact_mid
    row = {
        "state": stats.state,
        "lastPrice": last,
        "lastPriceProtected": last,
        "lastTickDirection": stats.tick_dir or None,
        "lastChangePcnt": change,
        "prevClosePrice": price(spec, stats.prev_close_ticks),
        "bidPrice": bid,
        "midPrice": mid,
        "askPrice": ask,
        "impactBidPrice": _fine(spec, impact_bid),
        "impactMidPrice": _fine(spec, impact_mid),
        "impactAskPrice": _fine(spec, impact_ask),
        "hasLiquidity": has_liquidity,
        "totalVolume": stats.total_volume,
        "volume": day.get("volume24h", 0),
        "volume24h": day.get("volume24h", 0),
        "totalTurnover": stats.total_turnover,
        "turnover": day.get("turnover24h", 0),
        "turnover24h": day.get("turnover24h", 0),
        "homeNotional24h": day.get("homeNotional24h", 0),
        "foreignNotional24h": day.get("foreignNotional24h", 0),
        "prevPrice24h": prev24,
        "vwap": day.get("vwap"),
        "highPrice": day.get("highPrice"),
        "lowPrice": day.get("lowPrice"),
        "openInterest": stats.open_interest,
        "openValue": open_value,
        "fairPrice": mark,
        "markPrice": mark,
        "indicativeSettlePrice": rational(*stats.index) if stats.index else None,
        "fundingTimestamp": iso_ms(funding_ts) if funding_ts else None,
        "timestamp": iso_ms(stats.ts_ns),
    }
    if spec.is_derivative:
        row.update(_funding_fields(spec, stats, now_ns or stats.ts_ns))
    return row
