"""Convert (our own routes, in the served spec under "Trading costs"):

- ``GET /convert/assets``: what can be converted, and the limits;
- ``POST /convert/quote`` (``fromCurrency``, ``toCurrency``, ``amount`` in minor units): a price
  from the spot books good for 10 s, or a clear 400 (same currency, not convertible, paused,
  too small, too large, books too thin);
- ``POST /convert/execute`` (``quoteID``): one core ``Convert`` at exactly the quoted amounts,
  or 400/404 (not found, used, expired, the price moved, balance);
- ``POST /convert/sweep``: every balance worth under 10 USDT into BMEX.

Without a convert service (``CostPorts.convert``) the routes answer 503.
"""

from collections.abc import Callable
from decimal import Decimal

from perpetua.core.commands import Convert
from perpetua.core.convert import BookLevels, Levels
from perpetua.core.events import Rejected
from perpetua.core.units import CURRENCIES
from perpetua.gateway.context import Context
from perpetua.gateway.errors import ApiError, bad_request, from_reason
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.surface import GatewaySurface
from perpetua.services.convert import (
    CONVERT_USD_MAX,
    CONVERT_USD_MIN,
    QUOTE_TTL_NS,
    SWEEP_TARGET,
    SWEEP_USD_MAX,
    ConvertDesk,
    ConvertError,
    Quote,
)
from perpetua.wire.values import JsonRow, iso_ms

__all__ = ["CONVERT_DOCS", "SPECS"]

LEVELS_READ_MAX = 1_000


def _desk(ctx: Context) -> ConvertDesk:
    desk = ctx.gw.costs.convert
    if desk is None:
        raise ApiError(503, "Convert is not enabled on this venue")
    return desk


def _books(ctx: Context) -> BookLevels:
    books = ctx.gw.market.books

    def levels(symbol: str, side: int) -> Levels:
        book = books.get(symbol)
        return [] if book is None else book.top(side, LEVELS_READ_MAX)

    return levels


def _is_open(ctx: Context) -> Callable[[str], bool]:
    def is_open(symbol: str) -> bool:
        return bool(ctx.gw.market.live(symbol).get("state") == "Open")

    return is_open


def _currency(ctx: Context, name: str) -> str:
    text = ctx.params.required_string(name)
    for code, currency in CURRENCIES.items():
        if text.lower() in (code.lower(), currency.major.lower()):
            return code
    raise bad_request(f"Invalid {name}")


def _major(currency: str, amount: int) -> Decimal:
    return (Decimal(amount) / Decimal(CURRENCIES[currency].minor_per_major)).normalize()


def _quote_row(quote: Quote) -> JsonRow:
    price = _major(quote.to_currency, quote.to_amount) / _major(
        quote.from_currency, quote.from_amount
    )
    return {
        "quoteID": quote.quote_id,
        "fromCurrency": quote.from_currency,
        "toCurrency": quote.to_currency,
        "fromAmount": quote.from_amount,
        "toAmount": quote.to_amount,
        "price": price.quantize(Decimal("1e-12")).normalize(),
        "timestamp": iso_ms(quote.created_ns),
        "expiresAt": iso_ms(quote.expires_ns),
    }


async def get_assets(ctx: Context) -> JsonRow:
    desk = _desk(ctx)
    return {
        "currencies": desk.currencies(),
        "quoteTtlMs": QUOTE_TTL_NS // 1_000_000,
        "minUsdt": CONVERT_USD_MIN,
        "maxUsdt": CONVERT_USD_MAX,
        "sweepBelowUsdt": SWEEP_USD_MAX,
        "sweepTo": SWEEP_TARGET,
    }


async def post_quote(ctx: Context) -> JsonRow:
    desk = _desk(ctx)
    src, dst = _currency(ctx, "fromCurrency"), _currency(ctx, "toCurrency")
    amount = ctx.params.integer("amount")
    try:
        quote = desk.quote(ctx.account, src, dst, amount or 0, _books(ctx), _is_open(ctx))
    except ConvertError as error:
        raise ApiError(error.status, error.message) from None
    return _quote_row(quote)


async def _execute(ctx: Context, desk: ConvertDesk, quote_id: str) -> JsonRow:
    try:
        quote = desk.take(ctx.account, quote_id)
    except ConvertError as error:
        raise ApiError(error.status, error.message) from None
    result = await ctx.gw.submit(
        Convert(0, ctx.account, quote.from_currency, quote.to_currency, quote.from_amount,
                quote.to_amount, quote.quote_id, quote.expires_ns)
    )  # fmt: skip
    for event in result.events:
        if isinstance(event, Rejected):
            raise from_reason(event.reason, event.required, event.currency)
    return {**_quote_row(quote), "status": "Filled"}


async def post_execute(ctx: Context) -> JsonRow:
    return await _execute(ctx, _desk(ctx), ctx.params.required_string("quoteID"))


async def post_sweep(ctx: Context) -> list[JsonRow]:
    """Each small balance into BMEX; a currency the desk or the core refuses is reported with
    its reason and the others still convert."""
    desk = _desk(ctx)
    views = ctx.gw.private
    balances = {
        currency: views.balance(ctx.account, currency) for currency in views.currencies(ctx.account)
    }
    out = []
    books, is_open = _books(ctx), _is_open(ctx)
    for currency, amount in desk.small_balances(balances, books, is_open).items():
        try:
            quote = desk.quote(ctx.account, currency, SWEEP_TARGET, amount, books, is_open, 0)
            out.append(await _execute(ctx, desk, quote.quote_id))
        except (ConvertError, ApiError) as error:
            out.append({"fromCurrency": currency, "fromAmount": amount, "status": "Rejected",
                        "error": error.message})  # fmt: skip
    return out


CONVERT_DOCS: list[tuple[str, str, str, list[tuple[str, str, bool]]]] = [
    ("/convert/assets", "get", "Convertible currencies and the convert limits.", []),
    (
        "/convert/quote",
        "post",
        "Quote a conversion: the amount received for `amount` (minor units) of fromCurrency, "
        "priced from the spot books' depth (VWAP, via USDT) less a 0.1% spread, good for 10 s.",
        [
            ("fromCurrency", "string", True),
            ("toCurrency", "string", True),
            ("amount", "integer", True),
        ],
    ),  # fmt: skip
    (
        "/convert/execute",
        "post",
        "Execute a quote by quoteID within its time, at exactly the quoted amounts, atomically; "
        "refused if expired, used, or the books no longer give the quoted amount.",
        [("quoteID", "string", True)],
    ),
    (
        "/convert/sweep",
        "post",
        "Convert every balance worth less than 10 USDT into BMEX (one conversion per currency).",
        [],
    ),
]


def _served(gw: GatewaySurface) -> bool:
    return gw.costs.convert is not None


SPECS = [
    Spec("/convert/assets", "GET", get_assets, private=True, served=_served),
    Spec("/convert/quote", "POST", post_quote, private=True, served=_served),
    Spec("/convert/execute", "POST", post_execute, private=True, served=_served),
    Spec("/convert/sweep", "POST", post_sweep, private=True, served=_served),
]
