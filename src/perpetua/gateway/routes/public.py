"""Public history tables: /funding, /insurance, /settlement, /liquidation, /stats*,
/announcement. Funding, settlement and liquidation rows appear once the risk engine emits
them; until then these tables are empty (not errors)."""

from typing import Any

from perpetua.gateway.context import Context
from perpetua.gateway.routes import Spec
from perpetua.gateway.tables import parse_table_query, run_query

__all__ = ["SPECS"]


def _by_symbol(ctx: Context, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = ctx.gw.symbols.resolve(ctx.params.string("symbol"))
    if found is None:
        return rows
    wanted = set(found)
    return [r for r in rows if r.get("symbol") in wanted]


async def get_funding(ctx: Context) -> list[dict[str, Any]]:
    return run_query(_by_symbol(ctx, list(ctx.gw.market.funding)), parse_table_query(ctx.params))


async def get_settlement(ctx: Context) -> list[dict[str, Any]]:
    rows = _by_symbol(ctx, list(ctx.gw.market.settlement))
    return run_query(rows, parse_table_query(ctx.params))


async def get_liquidation(ctx: Context) -> list[dict[str, Any]]:
    rows = _by_symbol(ctx, list(ctx.gw.market.liquidation.values()))
    return run_query(rows, parse_table_query(ctx.params), time_field="")


async def get_insurance(ctx: Context) -> list[dict[str, Any]]:
    rows = list(ctx.gw.market.insurance)
    currency = ctx.params.string("symbol")
    if currency:
        rows = [r for r in rows if r["currency"].lower() == currency.lower()]
    return run_query(rows, parse_table_query(ctx.params))


async def get_stats(ctx: Context) -> list[dict[str, Any]]:
    market = ctx.gw.market
    by_root: dict[str, dict[str, Any]] = {}
    for symbol in market.books:
        spec = market.specs[symbol]
        day = market.day_stats(symbol)
        stats = market.stats[symbol]
        row = by_root.setdefault(spec.root_symbol, {
            "rootSymbol": spec.root_symbol, "currency": spec.settl_currency, "volume24h": 0,
            "turnover24h": 0, "openInterest": 0, "openValue": 0})
        row["volume24h"] += day.get("volume24h", 0)
        row["turnover24h"] += day.get("turnover24h", 0)
        row["openInterest"] += stats.open_interest
    return list(by_root.values())


async def get_empty(ctx: Context) -> list[Any]:
    return []


SPECS = [
    Spec("/funding", "GET", get_funding),
    Spec("/settlement", "GET", get_settlement),
    Spec("/liquidation", "GET", get_liquidation),
    Spec("/insurance", "GET", get_insurance),
    Spec("/stats", "GET", get_stats),
    Spec("/stats/history", "GET", get_empty),
    Spec("/stats/historyUSD", "GET", get_empty),
    Spec("/announcement", "GET", get_empty),
    Spec("/announcement/urgent", "GET", get_empty, private=True),
]
