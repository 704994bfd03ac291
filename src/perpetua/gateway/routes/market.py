"""Public market tables: /orderBook/L2, /trade, /trade/bucketed, /quote, /quote/bucketed."""

from typing import Any

from perpetua.gateway.context import Context
from perpetua.gateway.errors import ApiError, bad_request
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.tables import parse_table_query, project, run_query, store_query
from perpetua.marketdata.trades import BIN_SIZES_NS, trade_row
from perpetua.store import queries
from perpetua.store.rows import TICK_DIRECTION_NAMES, trade_of
from perpetua.wire.values import JsonRow

__all__ = ["SPECS"]

L2_DEPTH_DEFAULT = 25


def _symbols(ctx: Context) -> list[str]:
    found = ctx.gw.symbols.resolve(ctx.params.string("symbol"))
    tradable = ctx.gw.market.books
    if found is None:
        return list(tradable)
    return [s for s in found if s in tradable]


async def get_l2(ctx: Context) -> list[JsonRow]:
    symbol_text = ctx.params.required_string("symbol")
    symbol = ctx.gw.symbols.one(symbol_text)
    if symbol is None or symbol not in ctx.gw.market.books:
        raise ApiError(400, "Invalid symbol")
    depth = ctx.params.integer("depth", L2_DEPTH_DEFAULT)
    if depth is None or depth < 0:
        raise bad_request("Invalid depth")
    return ctx.gw.market.l2_rows(symbol, depth or None)


async def get_trade(ctx: Context) -> list[JsonRow]:
    query = parse_table_query(ctx.params)
    symbols = _symbols(ctx)
    if not symbols:
        return []
    found = await ctx.gw.history.read(
        ctx.gw.market.trade_seq,
        queries.query_trades,
        **store_query(query, symbols, ctx.gw.market.specs),
    )
    specs = ctx.gw.market.specs
    out = []
    for row in found:
        event = trade_of(row)
        out.append(
            trade_row(specs[event.symbol], event, TICK_DIRECTION_NAMES.get(row.tick_direction, ""))
        )
    return project(out, query)


def _bin_size(ctx: Context) -> str:
    size = ctx.params.string("binSize", "1m") or "1m"
    if size not in BIN_SIZES_NS:
        raise bad_request("Invalid binSize: use 1m, 5m, 1h or 1d")
    return size


async def get_trade_bucketed(ctx: Context) -> list[JsonRow]:
    size = _bin_size(ctx)
    partial = ctx.params.boolean("partial")
    query = parse_table_query(ctx.params)
    rows: list[dict[str, Any]] = []
    for symbol in _symbols(ctx):
        rows.extend(ctx.gw.market.bins[(size, symbol)].rows(partial))
    rows.sort(key=lambda r: r["timestamp"])
    return run_query(rows, query)


async def get_quote(ctx: Context) -> list[JsonRow]:
    query = parse_table_query(ctx.params)
    rows: list[dict[str, Any]] = []
    for symbol in _symbols(ctx):
        rows.extend(ctx.gw.market.quotes[symbol])
    rows.sort(key=lambda r: r["timestamp"])
    return run_query(rows, query)


async def get_quote_bucketed(ctx: Context) -> list[JsonRow]:
    size = _bin_size(ctx)
    query = parse_table_query(ctx.params)
    rows: list[dict[str, Any]] = []
    for symbol in _symbols(ctx):
        rows.extend(ctx.gw.market.quote_bins[(size, symbol)])
    rows.sort(key=lambda r: r["timestamp"])
    return run_query(rows, query)


SPECS = [
    Spec("/orderBook/L2", "GET", get_l2),
    Spec("/trade", "GET", get_trade),
    Spec("/trade/bucketed", "GET", get_trade_bucketed),
    Spec("/quote", "GET", get_quote),
    Spec("/quote/bucketed", "GET", get_quote_bucketed),
]
