"""/position: the list, and the margin controls (isolate, leverage, riskLimit, transferMargin),
which become the core's ``SetLeverage``, ``SetRiskLimit`` and ``TransferMargin``.

* ``leverage``: BitMEX sends a number (3, 2.5); it is kept in hundredths, so a leverage with
  more than two decimals is off the grid and refused ("Invalid leverage"), never rounded.
  0 means cross margin; 0.01..100 isolates the position at that leverage.
* ``isolate``: ``enabled=true`` isolates a cross position at the leverage it shows (the maximum
  of its risk tier); an isolated one stays as it is. ``enabled=false`` makes it cross.
* ``riskLimit``: settlement minor units, ``base + n x step`` of the instrument.
* ``transferMargin``: ``amount`` in settlement minor units, signed (negative removes margin).

Each answers BitMEX's ``Position`` after the change (built from the core's ``PositionChanged``
in the command's own result), or a 400 in BitMEX's shape naming the broken rule.
"""

from decimal import Decimal
from typing import Any

from perpetua.core.commands import SetLeverage, SetRiskLimit, TransferMargin
from perpetua.core.events import PositionChanged, Rejected
from perpetua.core.instruments import InstrumentSpec
from perpetua.core.reasons import MESSAGES, Reason
from perpetua.core.units import PPM
from perpetua.gateway.auth import PERMISSION_ORDER
from perpetua.gateway.context import Context
from perpetua.gateway.errors import ApiError, bad_request, from_reason
from perpetua.gateway.positions import LEVERAGE_SCALE
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.tables import parse_table_query, run_query
from perpetua.wire.values import JsonRow, rational

__all__ = ["LEVERAGE_E2_MAX", "SPECS", "position_error"]

LEVERAGE_E2_MAX = 10_000  # 100x
LEVERAGE_E2_MIN = 1  # 0.01x
RISK_LIMIT_MAX = 10**18
MSG_LEVERAGE_RANGE = "Invalid leverage: 0 (cross margin) or 0.01 to 100, at most two decimals"


async def get_position(ctx: Context) -> list[JsonRow]:
    query = parse_table_query(ctx.params)
    return run_query(
        ctx.gw.private.position_rows(ctx.account), query, ("account", "symbol", "currency")
    )


def _spec(ctx: Context) -> InstrumentSpec:
    symbol = ctx.gw.symbols.one(ctx.params.required_string("symbol"))
    if symbol is None or symbol not in ctx.gw.market.books:
        raise ApiError(400, MESSAGES[Reason.INSTRUMENT_UNKNOWN])
    spec = ctx.gw.market.specs[symbol]
    if not spec.is_derivative:
        raise bad_request("Invalid symbol: positions exist only on derivatives")
    return spec


def _tier_init_ppm(spec: InstrumentSpec, risk_limit: int) -> int:
    """initMarginReq of the risk tier ``risk_limit`` falls in (reference §7.3)."""
    steps = 0
    if risk_limit > spec.risk_limit and spec.risk_step > 0:
        steps = -(-(risk_limit - spec.risk_limit) // spec.risk_step)
    return spec.init_margin_ppm + steps * spec.maint_margin_ppm


def _max_leverage(spec: InstrumentSpec, risk_limit: int) -> Decimal:
    init = _tier_init_ppm(spec, risk_limit)
    e2 = max(LEVERAGE_E2_MIN, min(LEVERAGE_E2_MAX, PPM * LEVERAGE_SCALE // init))
    return rational(e2, LEVERAGE_SCALE)


def position_error(
    reason: int, spec: InstrumentSpec, current: PositionChanged, required: int, currency: str
) -> ApiError:
    """BitMEX-style 400 for a refused position command (the rule broken, with its numbers)."""
    if reason == Reason.LEVERAGE_INVALID:
        return ApiError(
            400,
            f"Invalid leverage: the maximum for risk limit "
            f"{current.risk_limit} is {_max_leverage(spec, current.risk_limit)}",
        )
    if reason == Reason.RISK_LIMIT_INVALID:
        return ApiError(
            400,
            f"Invalid riskLimit: must be {spec.risk_limit} + n x "
            f"{spec.risk_step} {spec.settl_currency}, and cover the position "
            "and its open orders",
        )
    if reason == Reason.POSITION_NOT_ISOLATED:
        return ApiError(
            400,
            f"{MESSAGES[Reason.POSITION_NOT_ISOLATED]}: margin can be "
            "transferred only on an isolated position",
        )
    if reason == Reason.INSTRUMENT_UNKNOWN:  # the symbol was checked: there is no position
        return ApiError(400, f"Invalid symbol: no open position on {spec.symbol}")
    return from_reason(reason, required, currency)


async def _apply(ctx: Context, command: Any, spec: InstrumentSpec) -> JsonRow:
    account = ctx.account
    current = ctx.gw.private.position_event(account, spec.symbol)
    result = await ctx.gw.submit(command)
    changed: PositionChanged | None = None
    name = type(command).__name__
    for event in result.events:
        if isinstance(event, Rejected) and event.account == account and event.command == name:
            raise position_error(event.reason, spec, current, event.required, event.currency)
        if (
            isinstance(event, PositionChanged)
            and event.account == account
            and (event.symbol == spec.symbol)
        ):
            changed = event
    return ctx.gw.private.position_row(account, spec.symbol, changed)


def _leverage_e2(value: Decimal) -> int:
    scaled = value * LEVERAGE_SCALE
    if scaled != scaled.to_integral_value():
        raise ApiError(400, MSG_LEVERAGE_RANGE)
    e2 = int(scaled)
    if e2 != 0 and not LEVERAGE_E2_MIN <= e2 <= LEVERAGE_E2_MAX:
        raise ApiError(400, MSG_LEVERAGE_RANGE)
    return e2


async def post_leverage(ctx: Context) -> JsonRow:
    spec = _spec(ctx)
    leverage = ctx.params.decimal("leverage")
    if leverage is None:
        raise bad_request("'leverage' is a required arg.")
    command = SetLeverage(0, ctx.account, spec.symbol, _leverage_e2(leverage))
    return await _apply(ctx, command, spec)


async def post_isolate(ctx: Context) -> JsonRow:
    spec = _spec(ctx)
    enabled = ctx.params.boolean("enabled", True)
    current = ctx.gw.private.position_event(ctx.account, spec.symbol)
    if enabled and current.leverage_e2:
        return ctx.gw.private.position_row(ctx.account, spec.symbol)  # already isolated
    e2 = _leverage_e2(_max_leverage(spec, current.risk_limit)) if enabled else 0
    return await _apply(ctx, SetLeverage(0, ctx.account, spec.symbol, e2), spec)


async def post_risk_limit(ctx: Context) -> JsonRow:
    spec = _spec(ctx)
    limit = ctx.params.integer("riskLimit")
    if limit is None:
        raise bad_request("'riskLimit' is a required arg.")
    if not 0 < limit <= RISK_LIMIT_MAX:
        raise ApiError(400, MESSAGES[Reason.RISK_LIMIT_INVALID])
    return await _apply(ctx, SetRiskLimit(0, ctx.account, spec.symbol, limit), spec)


async def post_transfer_margin(ctx: Context) -> JsonRow:
    spec = _spec(ctx)
    amount = ctx.params.integer("amount")
    if amount is None:
        raise bad_request("'amount' is a required arg.")
    if amount == 0 or abs(amount) > RISK_LIMIT_MAX:
        raise bad_request("Invalid amount")
    return await _apply(ctx, TransferMargin(0, ctx.account, spec.symbol, amount), spec)


SPECS = [
    Spec("/position", "GET", get_position, private=True),
    Spec(
        "/position/isolate",
        "POST",
        post_isolate,
        private=True,
        permission=PERMISSION_ORDER,
        order_layer=True,
    ),
    Spec(
        "/position/leverage",
        "POST",
        post_leverage,
        private=True,
        permission=PERMISSION_ORDER,
        order_layer=True,
    ),
    Spec("/position/riskLimit", "POST", post_risk_limit, private=True, permission=PERMISSION_ORDER),
    Spec(
        "/position/transferMargin",
        "POST",
        post_transfer_margin,
        private=True,
        permission=PERMISSION_ORDER,
        order_layer=True,
    ),
]
