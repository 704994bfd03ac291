"""/execution (every execution row) and /execution/tradeHistory (fills, funding, settlement)."""

from typing import Any

from perpetua.gateway.context import Context
from perpetua.gateway.routes import Spec
from perpetua.gateway.tables import parse_table_query, run_query

__all__ = ["SPECS"]

TRADE_HISTORY_TYPES = frozenset({"Trade", "Funding", "Settlement"})


def _rows(ctx: Context) -> list[dict[str, Any]]:
    rows = list(ctx.gw.private.executions.get(ctx.account, ()))
    symbols = ctx.gw.symbols.resolve(ctx.params.string("symbol"))
    if symbols is not None:
        wanted = set(symbols)
        rows = [r for r in rows if r["symbol"] in wanted]
    return rows


async def get_execution(ctx: Context) -> list[dict[str, Any]]:
    return run_query(_rows(ctx), parse_table_query(ctx.params), ("execID",))


async def get_trade_history(ctx: Context) -> list[dict[str, Any]]:
    rows = [r for r in _rows(ctx) if r["execType"] in TRADE_HISTORY_TYPES]
    return run_query(rows, parse_table_query(ctx.params), ("execID",))


SPECS = [
    Spec("/execution", "GET", get_execution, private=True),
    Spec("/execution/tradeHistory", "GET", get_trade_history, private=True),
]
