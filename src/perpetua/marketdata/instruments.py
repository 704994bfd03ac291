"""BitMEX ``Instrument`` rows: static fields from the spec, live fields from the market.

``static_row`` is computed once per instrument. ``live_row`` holds what moves: last price and
tick direction, bid/ask/mid from the L2 book, 24 h statistics from the hourly bins, open
interest, index and mark. Until the risk engine publishes fair-price marks, ``markPrice`` is the
reference index (as the core marks) or, without an index, the last price; ``fundingRate`` is
absent rather than invented.
"""

from decimal import Decimal
from typing import Any

from perpetua.core.instruments import InstrumentKind, InstrumentSpec
from perpetua.core.units import PPM
from perpetua.marketdata.wire import interval_iso, iso_ms, price, rational, tick_size

__all__ = ["FUNDING_OFFSET_NS", "MarketStats", "funding_timestamp_ns", "live_row", "static_row"]

FUNDING_OFFSET_NS = 4 * 3_600 * 10**9  # funding at 04:00, 12:00 and 20:00 UTC
INDEX_PUBLISH_INTERVAL_NS = 5 * 10**9
_PCT_QUANTUM = Decimal("1e-4")


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
        if spec.funding_interval_ns else None,
        "calcInterval": interval_iso(INDEX_PUBLISH_INTERVAL_NS) if is_index else None,
        "publishInterval": interval_iso(INDEX_PUBLISH_INTERVAL_NS) if is_index else None,
        "fairMethod": "FundingRate" if spec.kind == InstrumentKind.PERPETUAL else (
            "ImpactMidPrice" if spec.kind == InstrumentKind.FUTURE else None),
        "markMethod": "FairPrice" if spec.is_derivative else "LastPrice",
    }
    return row


class MarketStats:
    """Live numbers of one instrument, updated by the hub."""

    __slots__ = ("state", "last_ticks", "tick_dir", "total_volume", "total_turnover",
                 "open_interest", "index", "ts_ns", "prev_close_ticks")

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


def _mark(spec: InstrumentSpec, stats: MarketStats) -> Decimal | None:
    if stats.index is not None:
        return rational(*stats.index)
    return price(spec, stats.last_ticks)


def live_row(
    spec: InstrumentSpec,
    stats: MarketStats,
    best_bid: int | None,
    best_ask: int | None,
    day: dict[str, Any],
    open_value: int,
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
    return {
        "state": stats.state,
        "lastPrice": last,
        "lastPriceProtected": last,
        "lastTickDirection": stats.tick_dir or None,
        "lastChangePcnt": change,
        "prevClosePrice": price(spec, stats.prev_close_ticks),
        "bidPrice": bid,
        "midPrice": mid,
        "askPrice": ask,
        "impactBidPrice": bid,
        "impactMidPrice": mid,
        "impactAskPrice": ask,
        "hasLiquidity": bid is not None and ask is not None,
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
