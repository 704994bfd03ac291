"""/position: the list, and the margin controls (isolate, leverage, riskLimit, transferMargin).

The risk engine that implements isolated margin, leverage, risk-limit steps and margin transfers
is not built yet. These routes validate their parameters exactly as BitMEX does and then answer
400 with a clear "not available yet" message in BitMEX's error shape, never a 500.
"""

from decimal import Decimal
from typing import Any

from perpetua.gateway.auth import PERMISSION_ORDER
from perpetua.gateway.context import Context
from perpetua.gateway.errors import MSG_NOT_AVAILABLE, ApiError, bad_request
from perpetua.gateway.routes import Spec
from perpetua.gateway.tables import parse_table_query, run_query

__all__ = ["SPECS"]

LEVERAGE_MAX = Decimal(100)
LEVERAGE_MIN = Decimal("0.01")


async def get_position(ctx: Context) -> list[dict[str, Any]]:
    query = parse_table_query(ctx.params)
    return run_query(ctx.gw.private.position_rows(ctx.account), query,
                     ("account", "symbol", "currency"))


def _symbol(ctx: Context) -> str:
    symbol = ctx.gw.symbols.one(ctx.params.required_string("symbol"))
    if symbol is None or symbol not in ctx.gw.market.books:
        raise ApiError(400, "Invalid symbol")
    spec = ctx.gw.market.specs[symbol]
    if not spec.is_derivative:
        raise bad_request("Invalid symbol: positions exist only on derivatives")
    return symbol


def _not_available(what: str) -> ApiError:
    return ApiError(400, f"{what}: {MSG_NOT_AVAILABLE}")


async def post_isolate(ctx: Context) -> dict[str, Any]:
    _symbol(ctx)
    ctx.params.boolean("enabled", True)
    raise _not_available("Isolated margin")


async def post_leverage(ctx: Context) -> dict[str, Any]:
    _symbol(ctx)
    leverage = ctx.params.decimal("leverage")
    if leverage is None:
        raise bad_request("'leverage' is a required arg.")
    if leverage != 0 and not LEVERAGE_MIN <= leverage <= LEVERAGE_MAX:
        raise bad_request("Invalid leverage: 0 (cross) or 0.01..100")
    raise _not_available("Leverage")


async def post_risk_limit(ctx: Context) -> dict[str, Any]:
    _symbol(ctx)
    limit = ctx.params.integer("riskLimit")
    if limit is None or limit <= 0:
        raise bad_request("Invalid riskLimit")
    raise _not_available("Risk limit")


async def post_transfer_margin(ctx: Context) -> dict[str, Any]:
    _symbol(ctx)
    amount = ctx.params.integer("amount")
    if amount is None or amount == 0:
        raise bad_request("Invalid amount")
    raise _not_available("Margin transfer")


SPECS = [
    Spec("/position", "GET", get_position, private=True),
    Spec("/position/isolate", "POST", post_isolate, private=True,
         permission=PERMISSION_ORDER, order_layer=True),
    Spec("/position/leverage", "POST", post_leverage, private=True,
         permission=PERMISSION_ORDER, order_layer=True),
    Spec("/position/riskLimit", "POST", post_risk_limit, private=True,
         permission=PERMISSION_ORDER, order_layer=True),
    Spec("/position/transferMargin", "POST", post_transfer_margin, private=True,
         permission=PERMISSION_ORDER, order_layer=True),
]
