"""/execution (every execution row) and /execution/tradeHistory (fills, funding, settlement,
liquidation and deleverage rows), from the read models (recent memory without a store)."""

from typing import Any

from perpetua.gateway.context import Context
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.rows import execution_row
from perpetua.gateway.tables import parse_table_query, project, run_query, store_query
from perpetua.store import queries
from perpetua.store.rows import order_event_of

__all__ = ["SPECS"]

TRADE_HISTORY_TYPES = frozenset({"Trade", "Funding", "Settlement", "Liquidation", "Bankruptcy",
                                 "Deleverage"})
KEYS = ("execID",)


async def _executions(ctx: Context, trade_history: bool) -> list[dict[str, Any]]:
    query = parse_table_query(ctx.params)
    symbols = ctx.gw.symbols.resolve(ctx.params.string("symbol"))
    history = ctx.gw.history
    if history is None:  # no read models: the recent executions this process keeps
        rows = ctx.gw.private.execution_rows(ctx.account)
        if symbols is not None:
            wanted = set(symbols)
            rows = [r for r in rows if r["symbol"] in wanted]
        if trade_history:
            rows = [r for r in rows if r["execType"] in TRADE_HISTORY_TYPES]
        return run_query(rows, query, KEYS)
    if symbols is not None and not symbols:
        return []
    kwargs = store_query(query, symbols, ctx.gw.market.specs)
    if trade_history:
        kwargs["exec_types"] = queries.TRADE_HISTORY_EXEC_TYPES
    found = await history.read(ctx.gw.account_seq(ctx.account), queries.query_executions,
                               ctx.account, **kwargs)
    specs = ctx.gw.market.specs
    out = []
    for row in found:
        event = order_event_of(row)
        spec = specs.get(event.symbol)
        if spec is not None:
            out.append(execution_row(event, spec))
    return project(out, query, KEYS)


async def get_execution(ctx: Context) -> list[dict[str, Any]]:
    return await _executions(ctx, trade_history=False)


async def get_trade_history(ctx: Context) -> list[dict[str, Any]]:
    return await _executions(ctx, trade_history=True)


SPECS = [
    Spec("/execution", "GET", get_execution, private=True),
    Spec("/execution/tradeHistory", "GET", get_trade_history, private=True),
]
