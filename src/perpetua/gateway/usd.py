"""Turnover in USD for ``/stats/historyUSD`` (per root symbol) and ``/instrument/usdVolume``
(per symbol), BitMEX's ``StatsUSD`` and ``StatsUSDBySymbol``.

Windows: the last 24 h from the live market views (``day_stats``), 30 days, 365 days and all
time from the read models' daily trade bins (``store.queries.daily_trade_totals``, at most
``USD_BINS_MAX`` bins, newest first). Conversion: each settlement currency at the current
price of its index (``XBt`` at ``.BXBT``, ``Gwei`` at ``.BETH``, ``BMEx`` at ``.BBMEXT``),
``USDt`` as 1 USD; a currency whose index has not printed yet is left out. Whole USD, rounded
half-even.
"""

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from perpetua.core.instruments import InstrumentSpec
from perpetua.core.units import CURRENCIES
from perpetua.gateway.context import Context
from perpetua.store import queries
from perpetua.wire.values import now_ns

__all__ = ["USD_BINS_MAX", "usd_per_minor", "usd_turnovers"]

USD_BINS_MAX = 20_000  # daily per-symbol bins read (~5 years of a dozen markets)
WINDOWS = ("turnover24h", "turnover30d", "turnover365d", "turnover")
_USD_INDEX = {"XBt": ".BXBT", "Gwei": ".BETH", "BMEx": ".BBMEXT"}
_DAY_NS = 86_400 * 10**9


def usd_per_minor(ctx: Context, currency: str) -> Decimal | None:
    """USD per minor unit of ``currency`` now; None without a price."""
    found = CURRENCIES.get(currency)
    if found is None:
        return None
    if currency == "USDt":
        return Decimal(1) / found.minor_per_major
    stats = ctx.gw.market.stats.get(_USD_INDEX.get(currency, ""))
    if stats is None or not stats.index:
        return None
    num, den = stats.index
    return Decimal(num) / Decimal(den) / found.minor_per_major


async def usd_turnovers(
    ctx: Context, key: Callable[[InstrumentSpec], str]
) -> dict[str, dict[str, int]]:
    """Turnover in USD per ``key(spec)`` over the four windows."""
    market = ctx.gw.market
    bins: list[Any] = await ctx.gw.history.read(
        market.trade_seq, queries.daily_trade_totals, USD_BINS_MAX
    )
    now = market.ts_ns or now_ns()
    totals: dict[str, dict[str, Decimal]] = {}

    def add(spec: InstrumentSpec, windows: tuple[str, ...], amount: int) -> None:
        rate = usd_per_minor(ctx, spec.settl_currency)
        if rate is None or not amount:
            return
        row = totals.setdefault(key(spec), dict.fromkeys(WINDOWS, Decimal(0)))
        for window in windows:
            row[window] += rate * amount

    for row in bins:
        spec = market.specs.get(row.symbol)
        if spec is None:
            continue
        age_days = (now - row.timestamp_ns) // _DAY_NS + 1  # today's open bin: 0
        windows = tuple(
            w for w, days in (("turnover30d", 30), ("turnover365d", 365)) if age_days <= days
        )
        add(spec, ("turnover", *windows), row.turnover)
    for symbol in market.books:
        add(market.specs[symbol], ("turnover24h",), market.day_stats(symbol).get("turnover24h", 0))
    return {
        name: {w: int(v.to_integral_value()) for w, v in row.items()}
        for name, row in totals.items()
    }
