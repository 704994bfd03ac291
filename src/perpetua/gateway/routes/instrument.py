"""/instrument and its family: active, indices, activeAndIndices, activeIntervals,
compositeIndex, usdVolume."""

from typing import Any

from perpetua.core.instruments import InstrumentKind
from perpetua.gateway.context import Context
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.tables import parse_table_query, run_query
from perpetua.gateway.usd import usd_turnovers
from perpetua.wire.values import JsonRow

__all__ = ["SPECS"]

KEYS = ("symbol",)


def _rows(ctx: Context, kinds: str) -> list[JsonRow]:
    market = ctx.gw.market
    rows = []
    for spec in market.instrument_specs():  # with the funding series' index rows
        symbol = spec.symbol
        is_index = spec.kind == InstrumentKind.INDEX
        if kinds == "indices" and not is_index:
            continue
        state = market.stats[symbol].state
        if kinds in ("active", "activeAndIndices") and not is_index and state != "Open":
            continue
        if kinds == "active" and is_index:
            continue
        rows.append(market.instrument_row(symbol))
    return rows


async def get_instrument(ctx: Context) -> list[JsonRow]:
    query = parse_table_query(ctx.params)
    symbols = ctx.gw.symbols.resolve(ctx.params.string("symbol"))
    rows = _rows(ctx, "all")
    if symbols is not None:
        wanted = set(symbols)
        rows = [r for r in rows if r["symbol"] in wanted]
    return run_query(rows, query, KEYS)


async def get_active(ctx: Context) -> list[JsonRow]:
    return _rows(ctx, "active")


async def get_indices(ctx: Context) -> list[JsonRow]:
    return _rows(ctx, "indices")


async def get_active_and_indices(ctx: Context) -> list[JsonRow]:
    return _rows(ctx, "activeAndIndices")


async def get_active_intervals(ctx: Context) -> dict[str, list[str]]:
    return ctx.gw.symbols.active_intervals()


async def get_composite_index(ctx: Context) -> list[JsonRow]:
    """The constituent rows and the composite row (reference BMI, weight null) of each index.

    Constituents come from the index feeds' board (``gw.indices``); for an index nothing
    feeds, only the composite row is known here."""
    query = parse_table_query(ctx.params)
    symbols = ctx.gw.symbols.resolve(ctx.params.string("symbol")) or [".BXBT"]
    rows: list[dict[str, Any]] = []
    for symbol in symbols:
        spec = ctx.gw.market.specs.get(symbol)
        if spec is None or spec.kind != InstrumentKind.INDEX:
            continue
        fed = ctx.gw.indices.composite_rows(symbol)
        if fed:
            rows.extend(fed)
            continue
        live = ctx.gw.market.live(symbol)
        rows.append(
            {
                "timestamp": live["timestamp"],
                "symbol": symbol,
                "indexSymbol": symbol,
                "indexMultiplier": 1,
                "reference": "BMI",
                "lastPrice": live["lastPrice"],
                "sourcePrice": live["lastPrice"],
                "conversionIndex": None,
                "conversionIndexPrice": None,
                "weight": None,
                "logged": live["timestamp"],
            }
        )
    return run_query(rows, query)


async def get_usd_volume(ctx: Context) -> list[JsonRow]:
    """BitMEX ``StatsUSDBySymbol``: each market's turnover in USD (``gateway.usd``)."""
    totals = await usd_turnovers(ctx, lambda spec: spec.symbol)
    wanted = ctx.gw.symbols.resolve(ctx.params.string("symbol"))
    return [
        {"symbol": symbol, "currency": "USD", **values}
        for symbol, values in sorted(totals.items())
        if wanted is None or symbol in wanted
    ]


SPECS = [
    Spec("/instrument", "GET", get_instrument),
    Spec("/instrument/active", "GET", get_active),
    Spec("/instrument/indices", "GET", get_indices),
    Spec("/instrument/activeAndIndices", "GET", get_active_and_indices),
    Spec("/instrument/activeIntervals", "GET", get_active_intervals),
    Spec("/instrument/compositeIndex", "GET", get_composite_index),
    Spec("/instrument/usdVolume", "GET", get_usd_volume),
]
