"""/execution (every execution row), /execution/tradeHistory (fills, funding, settlement,
liquidation and deleverage rows) and /user/executionHistory (one UTC day's executions on one
symbol), from the read models (recent memory without a store)."""

from perpetua.gateway.context import Context
from perpetua.gateway.errors import bad_request
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.rows import execution_row
from perpetua.gateway.tables import parse_table_query, project, store_query
from perpetua.store import queries
from perpetua.store.limits import QUERY_COUNT_MAX
from perpetua.store.rows import order_event_of
from perpetua.wire.values import JsonRow, parse_iso_ns

__all__ = ["SPECS"]

TRADE_HISTORY_TYPES = frozenset(
    {"Trade", "Funding", "Settlement", "Liquidation", "Bankruptcy", "Deleverage"}
)
KEYS = ("execID",)
DAY_NS = 86_400 * 10**9
EXECUTION_HISTORY_ROWS_MAX = QUERY_COUNT_MAX  # one day's executions on one symbol, oldest first


async def _executions(ctx: Context, trade_history: bool) -> list[JsonRow]:
    query = parse_table_query(ctx.params)
    symbols = ctx.gw.symbols.resolve(ctx.params.string("symbol"))
    if symbols is not None and not symbols:
        return []
    found = await ctx.gw.history.read(
        ctx.gw.account_seq(ctx.account),
        queries.query_executions,
        ctx.account,
        exec_types=queries.TRADE_HISTORY_EXEC_TYPES if trade_history else None,
        **store_query(query, symbols, ctx.gw.market.specs),
    )
    specs = ctx.gw.market.specs
    out = []
    for row in found:
        event = order_event_of(row)
        spec = specs.get(event.symbol)
        if spec is not None:
            out.append(execution_row(event, spec))
    return project(out, query, KEYS)


async def get_execution(ctx: Context) -> list[JsonRow]:
    return await _executions(ctx, trade_history=False)


async def get_trade_history(ctx: Context) -> list[JsonRow]:
    return await _executions(ctx, trade_history=True)


async def get_execution_history(ctx: Context) -> list[JsonRow]:
    """BitMEX ``User.getExecutionHistory``: the executions of the UTC day holding
    ``timestamp`` on ``symbol`` (both required), oldest first, at most
    ``EXECUTION_HISTORY_ROWS_MAX``."""
    symbol = ctx.params.string("symbol")
    stamp = ctx.params.string("timestamp")
    if not symbol or not stamp:
        raise bad_request(f"'{'symbol' if not symbol else 'timestamp'}' is a required arg.")
    at_ns = parse_iso_ns(stamp)
    if at_ns is None:
        raise bad_request("Invalid timestamp")
    symbols = ctx.gw.symbols.resolve(symbol)
    if not symbols:
        raise bad_request("Invalid symbol")
    day_ns = at_ns - at_ns % DAY_NS
    specs = ctx.gw.market.specs
    found = await ctx.gw.history.read(
        ctx.gw.account_seq(ctx.account),
        queries.query_executions,
        ctx.account,
        symbol=list(symbols),
        count=EXECUTION_HISTORY_ROWS_MAX,
        start_time_ns=day_ns,
        end_time_ns=day_ns + DAY_NS - 1,
        catalogue=tuple(specs.values()),
    )
    events = [order_event_of(row) for row in found]
    return [execution_row(event, specs[event.symbol]) for event in events if event.symbol in specs]


SPECS = [
    Spec("/execution", "GET", get_execution, private=True),
    Spec("/execution/tradeHistory", "GET", get_trade_history, private=True),
    Spec("/user/executionHistory", "GET", get_execution_history, private=True),
]
