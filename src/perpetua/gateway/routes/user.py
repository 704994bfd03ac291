"""/user: wallet, margin (``currency=all`` gives a list), walletHistory,
walletSummary, commission, tradingVolume. Deposits and withdrawals (depositAddress,
requestWithdrawal...) are ``routes.wallet``; walletHistory shows their chain details (network,
address, tx, status) from the wallets when the venue has a chain.
``GET /user`` and the account routes live in ``routes.accounts``."""

from decimal import Decimal
from typing import Any

from perpetua.core.enums import ExecType
from perpetua.core.units import CURRENCIES, PPM
from perpetua.gateway.context import Context
from perpetua.gateway.errors import ApiError, bad_request
from perpetua.gateway.params import Params
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.routes.wallet import with_chain_details
from perpetua.gateway.rows import transaction_row
from perpetua.gateway.tables import TableQuery, parse_table_query, project
from perpetua.gateway.usd import usd_per_minor
from perpetua.store import queries
from perpetua.wire.values import JsonRow, iso_ms, now_ns

__all__ = ["SPECS"]

WALLET_HISTORY_COUNT_DEFAULT = 10_000
KEYS = ("transactID",)


def _currency(ctx: Context, default: str = "XBt") -> str | None:
    """A ledger currency code (case-insensitive, XBT accepted for XBt); None means all."""
    text = ctx.params.string("currency", default) or default
    if text.lower() == "all":
        return None
    for code, currency in CURRENCIES.items():
        if text.lower() in (code.lower(), currency.major.lower()):
            return code
    raise bad_request("Invalid currency")


async def get_wallet(ctx: Context) -> JsonRow | list[JsonRow]:
    currency = _currency(ctx)
    views = ctx.gw.private
    if currency is None:
        return [views.wallet_row(ctx.account, c) for c in views.currencies(ctx.account)]
    return views.wallet_row(ctx.account, currency)


async def get_margin(ctx: Context) -> JsonRow | list[JsonRow]:
    currency = _currency(ctx)
    views = ctx.gw.private
    if currency is None:
        return [views.margin_row(ctx.account, c) for c in views.currencies(ctx.account)]
    return views.margin_row(ctx.account, currency)


async def _transactions(ctx: Context, query: TableQuery) -> list[dict[str, Any]]:
    """Wallet history rows from the read models, newest first by default."""
    currency = _currency(ctx)
    found = await ctx.gw.history.read(
        ctx.gw.account_seq(ctx.account),
        queries.query_transactions,
        ctx.account,
        currency,
        filter=query.filter or None,
        count=query.count,
        start=query.start,
        reverse=query.reverse,
        start_time_ns=query.start_ns,
        end_time_ns=query.end_ns,
    )
    rows = [transaction_row(r) for r in found]
    if ctx.gw.wallets is not None:
        refs = [str(r.ref) for r in found]
        rows = await with_chain_details(ctx.gw.wallets, ctx.account, currency, rows, refs, query)
    return project(rows, query, KEYS)


async def get_wallet_history(ctx: Context) -> list[dict[str, Any]]:
    query = parse_table_query(ctx.params, WALLET_HISTORY_COUNT_DEFAULT, reverse_default=True)
    return await _transactions(ctx, query)


async def get_wallet_summary(ctx: Context) -> list[dict[str, Any]]:
    params = Params(
        {k: v for k, v in ctx.params.values.items() if k in ("currency", "startTime", "endTime")}
    )
    query = parse_table_query(params, WALLET_HISTORY_COUNT_DEFAULT, reverse_default=False)
    totals: dict[tuple[str, str], int] = {}
    for row in await _transactions(ctx, query):
        key = (row["currency"], row["transactType"])
        totals[key] = totals.get(key, 0) + row["amount"]
    rows = []
    for (currency, kind), amount in sorted(totals.items()):
        rows.append(
            {
                "account": ctx.account,
                "currency": currency,
                "transactType": kind,
                "symbol": "",
                "amount": amount,
                "pendingDebit": 0,
                "realisedPnl": 0,
                "walletBalance": amount,
                "unrealisedPnl": 0,
                "marginBalance": amount,
            }
        )
    return rows


async def get_commission(ctx: Context) -> dict[str, Any]:
    """The rates the core charges this account now, per symbol: the ADV tier's (or the
    instrument's own) less the effective discount, within the floor and cap (core.fees)."""
    out = {}
    costs = ctx.gw.private.costs
    for symbol, spec in ctx.gw.market.specs.items():
        if symbol in ctx.gw.market.books:
            row = ctx.gw.market.static[symbol]
            maker, taker = costs.rates_ppm(ctx.account, spec)
            out[symbol] = {
                "makerFee": _rate(maker),
                "takerFee": _rate(taker),
                "settlementFee": row["settlementFee"],
                "maxFee": _rate(max(maker, taker)),
            }
    return out


def _rate(ppm: int) -> Decimal:
    return (Decimal(ppm) / Decimal(PPM)).normalize()


async def get_trading_volume(ctx: Context) -> list[dict[str, Any]]:
    """The 30-day ADV in USD as measured at the last 00:00 UTC (services.volume), for the
    caller's whole family (a sub-account shows its owner's); zeros when no service runs."""
    volume = ctx.gw.costs.volume
    if volume is None:
        return [{"advUsd": 0, "advUsdSpot": 0, "advUsdContract": 0}]
    found = volume.volume_of(ctx.account)
    return [
        {
            "advUsd": found.adv_usd,
            "advUsdSpot": found.adv_usd_spot,
            "advUsdContract": found.adv_usd_contract,
            "feeTier": ctx.gw.private.costs.tier(ctx.account),
            "timestamp": iso_ms(found.measured_ns) if found.measured_ns else None,
        }
    ]


QUOTE_FILL_DAYS = 7  # BitMEX's quote fill ratio: 7-day moving averages
_DAY_NS = 86_400 * 10**9
_QUOTES = (ExecType.NEW, ExecType.REPLACED)  # a quote: an order placed or amended


def _own_account(ctx: Context) -> None:
    """``targetAccountId`` may name only the caller's own account (or ``*``: all of its own)."""
    target = ctx.params.string("targetAccountId")
    if target and target != "*" and target != str(ctx.account):
        raise ApiError(403, "targetAccountId must be your own account")


async def get_quote_fill_ratio(ctx: Context) -> dict[str, Any]:
    """BitMEX ``QuoteFillRatio``: today's quotes (orders placed and amended) and fills, and
    their 7-day moving averages and ratio, from the read models' executions."""
    _own_account(ctx)
    today = (ctx.gw.market.ts_ns or now_ns()) // _DAY_NS  # the exchange's time (demo: simulated)
    counts: dict[tuple[int, int], int] = {}
    rows = await ctx.gw.history.read(
        ctx.gw.account_seq(ctx.account),
        queries.daily_execution_counts,
        ctx.account,
        (today - QUOTE_FILL_DAYS + 1) * _DAY_NS,
        (*_QUOTES, ExecType.TRADE),
    )
    for row in rows:
        counts[(int(row.day), int(row.exec_type))] = int(row.count)
    days = range(today - QUOTE_FILL_DAYS + 1, today + 1)
    quotes = [sum(counts.get((d, int(t)), 0) for t in _QUOTES) for d in days]
    dealt = [counts.get((d, int(ExecType.TRADE)), 0) for d in days]
    quotes_mavg = Decimal(sum(quotes)) / QUOTE_FILL_DAYS
    dealt_mavg = Decimal(sum(dealt)) / QUOTE_FILL_DAYS
    return {
        "date": iso_ms(today * _DAY_NS),
        "account": ctx.account,
        "quoteCount": quotes[-1],
        "dealtCount": dealt[-1],
        "quotesMavg7": quotes_mavg.normalize(),
        "dealtMavg7": dealt_mavg.normalize(),
        "quoteFillRatioMavg7": (quotes_mavg / dealt_mavg).quantize(Decimal("1e-8")).normalize()
        if dealt_mavg
        else None,
    }


QUOTE_VALUE_HOURS = 72  # BitMEX: "Quote Value Ratio statistics over the last 3 days"
QUOTE_VALUE_FREE_QUOTES = 2_000  # Qfree: quotes an hour not subject to the rule (BitMEX, 2020)
_HOUR_NS = 3_600 * 10**9
_QVR_PLACES = Decimal("1e-8")
_QVR_ID_SYMBOLS = 10_000  # row id: hour * this + the symbol's catalogue index


def _xbt_per_minor(ctx: Context, currency: str) -> Decimal | None:
    """XBT per minor unit of ``currency`` now (through USD at the indices); None without."""
    if currency == "XBt":
        return Decimal(1) / CURRENCIES["XBt"].minor_per_major
    usd = usd_per_minor(ctx, currency)
    usd_per_xbt = usd_per_minor(ctx, "XBt")
    if usd is None or not usd_per_xbt:
        return None
    return usd / (usd_per_xbt * CURRENCIES["XBt"].minor_per_major)


async def get_quote_value_ratio(ctx: Context) -> list[dict[str, Any]]:
    """BitMEX ``QuoteValueRatio`` rows: per hour (its start) and symbol of the last 72 hours,
    the account's quotes (orders placed and amended) and the XBT value of its fills, and
    ``QVR = max(0, quoteCount - Qfree) / volumeXBT`` (BitMEX's trading rule; null with no
    volume). Newest hour first. ``volumeXBT`` converts a settlement currency at the current
    index prices (``gateway.usd``). The swagger names one object; BitMEX answers the hourly
    rows, as here (docs/fidelity.md)."""
    _own_account(ctx)
    now_hour = (ctx.gw.market.ts_ns or now_ns()) // _HOUR_NS
    since_ns = (now_hour - QUOTE_VALUE_HOURS + 1) * _HOUR_NS
    rows = await ctx.gw.history.read(
        ctx.gw.account_seq(ctx.account),
        queries.hourly_quote_values,
        ctx.account,
        since_ns,
        _QUOTES,
        ExecType.TRADE,
    )
    out = []
    for row in rows:
        spec = ctx.gw.market.specs.get(row.symbol)
        rate = _xbt_per_minor(ctx, spec.settl_currency) if spec is not None else None
        volume = Decimal(int(row.value)) * rate if rate is not None else Decimal(0)
        excess = max(0, int(row.quotes) - QUOTE_VALUE_FREE_QUOTES)
        hour_ns = int(row.hour) * _HOUR_NS
        out.append(
            {
                "id": int(row.hour) * _QVR_ID_SYMBOLS + (spec.index if spec is not None else 0),
                "timestamp": iso_ms(hour_ns),
                "account": ctx.account,
                "symbol": row.symbol,
                "quoteCount": int(row.quotes),
                "volumeXBT": volume.quantize(_QVR_PLACES).normalize() if volume else 0,
                "QVR": (Decimal(excess) / volume).quantize(_QVR_PLACES).normalize()
                if volume
                else None,
            }
        )
    return out


SPECS = [
    Spec("/user/wallet", "GET", get_wallet, private=True),
    Spec("/user/margin", "GET", get_margin, private=True),
    Spec("/user/walletHistory", "GET", get_wallet_history, private=True),
    Spec("/user/walletSummary", "GET", get_wallet_summary, private=True),
    Spec("/user/commission", "GET", get_commission, private=True),
    Spec("/user/tradingVolume", "GET", get_trading_volume, private=True),
    Spec("/user/quoteFillRatio", "GET", get_quote_fill_ratio, private=True),
    Spec("/user/quoteValueRatio", "GET", get_quote_value_ratio, private=True),
]
