"""Public history tables: /funding, /insurance, /settlement, /liquidation (the read models, or
the recent rows this process keeps without them), /stats*, /announcement (the operator's, from
the live views seeded from the read models)."""

from typing import Any

from perpetua.core.units import CURRENCIES
from perpetua.gateway.context import Context
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.tables import (
    TableQuery,
    parse_table_query,
    project,
    store_query,
)
from perpetua.gateway.usd import usd_turnovers
from perpetua.marketdata.risk_tables import (
    funding_wire,
    insurance_wire,
    liquidation_wire,
    settlement_wire,
)
from perpetua.store import queries
from perpetua.wire.values import JsonRow, iso_ms

__all__ = ["SPECS"]


def _by_symbol(ctx: Context, rows: list[dict[str, Any]]) -> list[JsonRow]:
    found = ctx.gw.symbols.resolve(ctx.params.string("symbol"))
    if found is None:
        return rows
    wanted = set(found)
    return [r for r in rows if r.get("symbol") in wanted]


async def _stored(
    ctx: Context, table: str, query: TableQuery, fetch: Any, **extra: Any
) -> list[Any]:
    return list(
        await ctx.gw.history.read(ctx.gw.market.risk.table_seq.get(table, 0), fetch, **extra)
    )


async def get_funding(ctx: Context) -> list[JsonRow]:
    query = parse_table_query(ctx.params)
    symbols = ctx.gw.symbols.resolve(ctx.params.string("symbol"))
    rows = await _stored(
        ctx,
        "funding",
        query,
        queries.query_funding,
        **store_query(query, symbols, ctx.gw.market.specs),
    )
    return project(
        [
            funding_wire(
                r.timestamp_ns,
                r.symbol,
                r.funding_interval_ns,
                r.funding_rate_num,
                r.funding_rate_den,
            )
            for r in rows
        ],
        query,
    )


async def get_settlement(ctx: Context) -> list[JsonRow]:
    query = parse_table_query(ctx.params)
    symbols = ctx.gw.symbols.resolve(ctx.params.string("symbol"))
    rows = await _stored(
        ctx,
        "settlement",
        query,
        queries.query_settlement,
        **store_query(query, symbols, ctx.gw.market.specs),
    )
    return project(
        [
            settlement_wire(
                r.timestamp_ns,
                r.symbol,
                r.settlement_type,
                r.settled_price_num,
                r.settled_price_den,
                r.bankrupt,
                r.tax_base,
                r.tax_rate_ppm,
            )
            for r in rows
        ],
        query,
    )


async def get_liquidation(ctx: Context) -> list[JsonRow]:
    query = parse_table_query(ctx.params)
    symbols = ctx.gw.symbols.resolve(ctx.params.string("symbol"))
    found = await _stored(
        ctx,
        "liquidation",
        query,
        queries.query_liquidations,
        **store_query(query, symbols, ctx.gw.market.specs),
    )
    specs = ctx.gw.market.specs
    return project(
        [
            liquidation_wire(specs[r.symbol], r.order_id, r.side, r.price, r.leaves_qty)
            for r in found
            if r.symbol in specs
        ],
        query,
        ("orderID",),
        time_field="",
    )


def _currency(text: str | None) -> str | None:
    """BitMEX's /insurance ``symbol`` is a currency (``XBt``; any case, or ``XBT``)."""
    if not text:
        return None
    for code, currency in CURRENCIES.items():
        if text.lower() in (code.lower(), currency.major.lower()):
            return code
    return text


async def get_insurance(ctx: Context) -> list[JsonRow]:
    query = parse_table_query(ctx.params)
    currency = _currency(ctx.params.string("symbol"))
    stored = await _stored(
        ctx, "insurance", query, queries.query_insurance, currency=currency, **store_query(query)
    )
    return project(
        [insurance_wire(r.currency, r.timestamp_ns, r.wallet_balance) for r in stored], query
    )


STATS_HISTORY_BINS_MAX = 20_000  # daily per-symbol bins read for /stats/history (~5 y x 12)
_DAY_NS = 86_400 * 10**9


async def get_stats(ctx: Context) -> list[JsonRow]:
    """Per root symbol and settlement currency: the last 24 h's volume and turnover, open
    interest and its value at the mark, from the live market views."""
    market = ctx.gw.market
    by_root: dict[tuple[str, str], dict[str, Any]] = {}
    for symbol in market.books:
        spec = market.specs[symbol]
        day = market.day_stats(symbol)
        row = by_root.setdefault(
            (spec.root_symbol, spec.settl_currency),
            {
                "rootSymbol": spec.root_symbol,
                "currency": spec.settl_currency,
                "volume24h": 0,
                "turnover24h": 0,
                "openInterest": 0,
                "openValue": 0,
            },
        )
        row["volume24h"] += day.get("volume24h", 0)
        row["turnover24h"] += day.get("turnover24h", 0)
        row["openInterest"] += market.stats[symbol].open_interest
        row["openValue"] += market.open_value(symbol)
    return [by_root[key] for key in sorted(by_root)]


async def get_stats_history(ctx: Context) -> list[JsonRow]:
    """BitMEX ``StatsHistory``: per day (its start), root symbol and settlement currency, the
    volume and turnover of every print, from the read models' daily trade bins; newest day
    first."""
    bins = await ctx.gw.history.read(
        ctx.gw.market.trade_seq, queries.daily_trade_totals, STATS_HISTORY_BINS_MAX
    )
    specs = ctx.gw.market.specs
    days: dict[tuple[int, str, str], list[int]] = {}
    for row in bins:
        spec = specs.get(row.symbol)
        if spec is None:
            continue
        totals = days.setdefault(
            (row.timestamp_ns - _DAY_NS, spec.root_symbol, spec.settl_currency), [0, 0]
        )
        totals[0] += row.volume
        totals[1] += row.turnover
    return [
        {
            "date": iso_ms(day),
            "rootSymbol": root,
            "currency": currency,
            "volume": volume,
            "turnover": turnover,
        }
        for (day, root, currency), (volume, turnover) in sorted(
            days.items(), key=lambda item: (-item[0][0], item[0][1:])
        )
    ]


async def get_stats_history_usd(ctx: Context) -> list[JsonRow]:
    """BitMEX ``StatsUSD``: per root symbol, turnover in USD (``gateway.usd``)."""
    totals = await usd_turnovers(ctx, lambda spec: spec.root_symbol)
    return [
        {"rootSymbol": root, "currency": "USD", **values} for root, values in sorted(totals.items())
    ]


async def get_announcements(ctx: Context) -> list[JsonRow]:
    """The operator's announcements, newest first (BitMEX ``Announcement``); ``columns``."""
    query = parse_table_query(ctx.params)
    return project(ctx.gw.market.announcements.listing(), query, ("id",), time_field="")


async def get_urgent_announcements(ctx: Context) -> list[JsonRow]:
    """The ones the operator marked urgent (a banner), newest first."""
    return ctx.gw.market.announcements.listing(urgent_only=True)


async def get_connected(ctx: Context) -> dict[str, int]:
    """BitMEX ``ConnectedUsers``: browser users and API bots on this gateway's WebSocket
    (``gateway.notices.connected_counts``)."""
    return ctx.gw.connected()


async def get_global_notifications(ctx: Context) -> list[JsonRow]:
    """The caller's recent notifications (``GlobalNotification`` rows), oldest first: the
    ones ``privateNotifications`` carried, and the public ones."""
    rows = ctx.gw.notifications.private_rows(ctx.account) + ctx.gw.notifications.public_rows()
    return sorted(rows, key=lambda row: row["id"])


SPECS = [
    Spec("/funding", "GET", get_funding),
    Spec("/settlement", "GET", get_settlement),
    Spec("/liquidation", "GET", get_liquidation),
    Spec("/insurance", "GET", get_insurance),
    Spec("/stats", "GET", get_stats),
    Spec("/stats/history", "GET", get_stats_history),
    Spec("/stats/historyUSD", "GET", get_stats_history_usd),
    Spec("/announcement", "GET", get_announcements),
    Spec("/announcement/urgent", "GET", get_urgent_announcements, private=True),
    Spec("/chat/connected", "GET", get_connected),
    Spec("/globalNotification", "GET", get_global_notifications, private=True),
]
