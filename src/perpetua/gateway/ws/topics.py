"""The WebSocket tables (reference §6.4): names, keys, and the partial image of each.

A partial carries ``keys``, ``types``, ``foreignKeys``, ``attributes`` and ``filter`` and the
full image for the subscription. Quote and trade partials are never empty (clients read
``[-1]``): without data they hold a placeholder row.
"""

from decimal import Decimal

from perpetua.gateway.surface import GatewaySurface
from perpetua.gateway.ws.fanout import strip_nulls
from perpetua.wire.values import Json, JsonRow, encode_json, now_ns

__all__ = [
    "NO_SYMBOL_TABLES",
    "PLATFORM_TABLES",
    "PRIVATE_TABLES",
    "PUBLIC_TABLES",
    "TABLE_KEYS",
    "partial_message",
    "partial_rows",
]

BIN_TABLES = tuple(
    f"{kind}Bin{size}" for kind in ("trade", "quote") for size in ("1m", "5m", "1h", "1d")
)
PLATFORM_TABLES = (
    "announcement",
    "connected",
    "chat",
    "publicNotifications",
    "privateNotifications",
)
PUBLIC_TABLES = frozenset(
    {
        "announcement",
        "connected",
        "chat",
        "publicNotifications",
        "instrument",
        "settlement",
        "funding",
        "insurance",
        "liquidation",
        "orderBookL2",
        "orderBookL2_25",
        "orderBook10",
        "quote",
        "trade",
        *BIN_TABLES,
    }
)
PRIVATE_TABLES = frozenset(
    {
        "privateNotifications",
        "account",
        "wallet",
        "affiliate",
        "margin",
        "position",
        "transact",
        "order",
        "execution",
        "bot",  # Perpetua's: the user's trading bots (services.bots)
        "copyTrade",  # Perpetua's: the user's copy relationships (services.copytrading)
    }
)
NO_SYMBOL_TABLES = frozenset(
    {
        "account",
        "affiliate",
        "announcement",
        "connected",
        "chat",
        "funds",
        "insurance",
        "margin",
        "publicNotifications",
        "privateNotifications",
        "transact",
        "wallet",
    }
)
TABLE_KEYS: dict[str, list[str]] = {
    "instrument": ["symbol"],
    "orderBookL2": ["symbol", "id", "side"],
    "orderBookL2_25": ["symbol", "id", "side"],
    "orderBook10": ["symbol"],
    "order": ["orderID"],
    "position": ["account", "symbol", "currency"],
    "margin": ["account", "currency"],
    "wallet": ["account", "currency"],
    "transact": ["transactID"],
    "liquidation": ["orderID"],
    "insurance": ["currency", "timestamp"],
    "account": ["account"],
    "announcement": ["id"],
    "privateNotifications": ["id"],
    "publicNotifications": ["id"],
    "bot": ["botId"],
    "copyTrade": ["followId"],
}
TRADES_IN_PARTIAL_MAX = 100
EXECUTIONS_IN_PARTIAL_MAX = 100
_TIME_FIELDS = frozenset(
    {
        "timestamp",
        "transactTime",
        "listing",
        "front",
        "expiry",
        "settle",
        "listedSettle",
        "fundingTimestamp",
        "publishTime",
        "calcInterval",
        "publishInterval",
        "fundingInterval",
    }
)


def _type_of(name: str, value: Json) -> str:
    if name in _TIME_FIELDS:
        return "timestamp"
    if name in ("orderID", "execID", "trdMatchID", "clOrdID"):
        return "guid" if name != "clOrdID" else "symbol"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, Decimal):
        return "float"
    if isinstance(value, list | dict):
        return "any"
    return "symbol"


def _types(rows: list[JsonRow]) -> dict[str, str]:
    types: dict[str, str] = {}
    for row in rows[:1]:
        for name, value in row.items():
            if value is not None:
                types[name] = _type_of(name, value)
    return types


def _symbols(gw: GatewaySurface, symbol: str | None, tradable_only: bool = True) -> list[str]:
    if symbol is not None:
        # An index (.BXBT, .XBTUSDPI8H) has no book, quotes or trades: an empty partial.
        return [symbol] if not tradable_only or symbol in gw.market.books else []
    if tradable_only:
        return list(gw.market.books)
    return [spec.symbol for spec in gw.market.instrument_specs()]


def _public_rows(gw: GatewaySurface, table: str, symbol: str | None) -> list[JsonRow]:
    market = gw.market
    now = now_ns()
    if table == "instrument":
        rows = []
        for name in _symbols(gw, symbol, tradable_only=False):
            market.published[name] = market.live(name)
            rows.append(market.instrument_row(name))
        return rows
    if table in ("orderBookL2", "orderBookL2_25"):
        depth = None if table == "orderBookL2" else 25
        return [row for name in _symbols(gw, symbol) for row in market.l2_rows(name, depth)]
    if table == "orderBook10":
        return [market.book10_row(name) for name in _symbols(gw, symbol)]
    if table == "quote":
        return [market.seed_quote(name, now) for name in _symbols(gw, symbol)]
    if table == "trade":
        rows = []
        for name in _symbols(gw, symbol):
            recent = list(market.trades[name])[-TRADES_IN_PARTIAL_MAX:]
            rows.extend(recent or [market.seed_trade(name, now)])
        return rows
    if table.startswith("tradeBin"):
        size = table[len("tradeBin") :]
        return [
            market.bins[(size, n)].closed[-1]
            for n in _symbols(gw, symbol)
            if market.bins[(size, n)].closed
        ]
    if table.startswith("quoteBin"):
        size = table[len("quoteBin") :]
        return [
            market.quote_bins[(size, n)][-1]
            for n in _symbols(gw, symbol)
            if market.quote_bins[(size, n)]
        ]
    risk = market.risk
    if table == "insurance":  # the fund's latest balance per currency
        latest = {row["currency"]: row for row in risk.insurance}
        return list(latest.values())
    if table == "funding":
        return [r for r in risk.funding if symbol is None or r["symbol"] == symbol][-10:]
    if table == "settlement":
        return [r for r in risk.settlement if symbol is None or r["symbol"] == symbol][-10:]
    if table == "liquidation":
        return [r for r in risk.liquidation.values() if symbol is None or r["symbol"] == symbol]
    if table == "announcement":
        return market.announcements.listing()
    if table == "connected":
        return [dict(gw.connected())]
    if table == "publicNotifications":
        return gw.notifications.public_rows()
    return []


def _private_rows(
    gw: GatewaySurface, table: str, account: int, symbol: str | None
) -> list[JsonRow]:
    views = gw.private
    rows: list[JsonRow]
    if table == "order":
        rows = views.open_order_rows(account)
    elif table == "execution":
        rows = views.execution_rows(account, EXECUTIONS_IN_PARTIAL_MAX)
    elif table == "position":
        rows = views.position_rows(account)
    elif table == "margin":
        rows = [views.margin_row(account, c) for c in views.currencies(account)]
    elif table == "wallet":
        rows = [views.wallet_row(account, c) for c in views.currencies(account)]
    elif table == "transact":
        rows = []
    elif table == "account":
        rows = [{"account": account}]
    elif table == "privateNotifications":
        rows = gw.notifications.private_rows(account)
    elif table == "bot":
        rows = gw.bots.rows(account) if gw.bots is not None else []
    elif table == "copyTrade":
        rows = gw.copy.follow_rows(account) if gw.copy is not None else []
    else:
        rows = []
    if symbol is not None:
        rows = [r for r in rows if r.get("symbol") == symbol]
    return rows


def partial_rows(
    gw: GatewaySurface, table: str, symbol: str | None, account: int | None
) -> list[JsonRow]:
    if table in PRIVATE_TABLES and account is not None:
        return _private_rows(gw, table, account, symbol)
    return _public_rows(gw, table, symbol)


def partial_message(gw: GatewaySurface, table: str, symbol: str | None, account: int | None) -> str:
    rows = strip_nulls(partial_rows(gw, table, symbol, account))
    filter_: JsonRow = {}
    if table in PRIVATE_TABLES and account is not None:
        filter_["account"] = account
    if symbol is not None:
        filter_["symbol"] = symbol
    message: JsonRow = {
        "table": table,
        "action": "partial",
        "keys": TABLE_KEYS.get(table, []),
        "types": _types(rows),
        "foreignKeys": {"symbol": "instrument", "side": "side"}
        if "symbol" in (rows[0] if rows else {})
        else {},
        "attributes": {"symbol": "parted"} if table not in NO_SYMBOL_TABLES else {},
        "filter": filter_,
        "data": rows,
    }
    return encode_json(message).decode()
