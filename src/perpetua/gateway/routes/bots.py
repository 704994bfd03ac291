"""Perpetua's trading-bot routes (``services.bots``; docs/bots-and-copy-trading.md), listed in
the served swagger under the tag "Bots".

1. Every route acts for the calling account (its own bots); creating, stopping or resuming a
   bot needs the ``order`` permission (a bot trades, and moves its investment between the
   caller's own accounts only).
2. A refusal from the service (``BotError``) is a 400 with its message; nothing changed.
3. A backtest runs in a worker thread, never on the event loop; its input is the venue's own
   trades between ``startTime`` and ``endTime``, or a CSV of trades in ``csv``.
"""

from typing import Final

from perpetua.gateway.auth import PERMISSION_ORDER
from perpetua.gateway.context import Context, client_ip
from perpetua.gateway.errors import ApiError, bad_request
from perpetua.gateway.ports import BotsPort
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.surface import GatewaySurface
from perpetua.wire.values import JsonRow

__all__ = ["BOT_DOCS", "SPECS"]

MSG_NO_BOTS: Final = "Trading bots are not available on this exchange"
BOT_PARAMS: Final = (
    "kind",
    "symbol",
    "lowerPrice",
    "upperPrice",
    "grids",
    "spacing",
    "direction",
    "investment",
    "leverage",
    "side",
    "trigger",
    "baseQty",
    "safetyQty",
    "maxSafetyOrders",
    "priceStep",
    "stepScale",
    "volumeScale",
    "takeProfit",
    "interval",
    "stopLowPrice",
    "stopHighPrice",
    "takeProfitPnl",
    "endTime",
)


def _bots(ctx: Context) -> BotsPort:
    if ctx.gw.bots is None:
        raise ApiError(503, MSG_NO_BOTS)
    return ctx.gw.bots


def _params(ctx: Context) -> JsonRow:
    return {name: ctx.params.raw(name) for name in BOT_PARAMS if ctx.params.has(name)}


def _bot_id(ctx: Context) -> int:
    bot_id = ctx.params.integer("botId")
    if bot_id is None:
        raise bad_request("botId is required")
    return bot_id


async def get_bots(ctx: Context) -> list[JsonRow]:
    return _bots(ctx).rows(ctx.account)


async def get_bot_status(ctx: Context) -> JsonRow:
    try:
        return _bots(ctx).detail(ctx.account, _bot_id(ctx))
    except ValueError as error:
        raise bad_request(str(error)) from error


async def post_bot(ctx: Context) -> JsonRow:
    bots, params = _bots(ctx), _params(ctx)
    try:
        code, amount = bots.required(params)
        available = ctx.gw.private.available_margin(ctx.account, code)
        if amount > available:
            raise bad_request(f"investment: more than the available balance ({available} {code})")
        return await bots.create(ctx.account, params, client_ip(ctx.scope))
    except ValueError as error:
        raise bad_request(str(error)) from error


async def delete_bot(ctx: Context) -> JsonRow:
    try:
        return await _bots(ctx).stop(ctx.account, _bot_id(ctx), ctx.params.boolean("close"))
    except ValueError as error:
        raise bad_request(str(error)) from error


async def post_bot_resume(ctx: Context) -> JsonRow:
    try:
        return await _bots(ctx).resume(ctx.account, _bot_id(ctx))
    except ValueError as error:
        raise bad_request(str(error)) from error


async def post_backtest(ctx: Context) -> JsonRow:
    params = _params(ctx)
    for name in ("startTime", "endTime"):
        value = ctx.params.time_ns(name)
        if value is not None:
            params[name] = value
    try:
        return await _bots(ctx).backtest(params, ctx.params.string("csv"))
    except ValueError as error:
        raise bad_request(str(error)) from error


def _served(gw: GatewaySurface) -> bool:
    return gw.bots is not None


SPECS = [
    Spec("/bot", "GET", get_bots, private=True, served=_served),
    Spec("/bot/status", "GET", get_bot_status, private=True, served=_served),
    Spec("/bot", "POST", post_bot, private=True, permission=PERMISSION_ORDER, served=_served),
    Spec("/bot", "DELETE", delete_bot, private=True, permission=PERMISSION_ORDER, served=_served),
    Spec(
        "/bot/resume",
        "POST",
        post_bot_resume,
        private=True,
        permission=PERMISSION_ORDER,
        served=_served,
    ),
    Spec("/bot/backtest", "POST", post_backtest, private=True, served=_served),
]

_GRID_ROWS: Final = [
    ("kind", "string", True),
    ("symbol", "string", True),
    ("investment", "number", True),
    ("lowerPrice", "number", False),
    ("upperPrice", "number", False),
    ("grids", "integer", False),
    ("spacing", "string", False),
    ("direction", "string", False),
    ("leverage", "number", False),
    ("side", "string", False),
    ("trigger", "string", False),
    ("baseQty", "integer", False),
    ("safetyQty", "integer", False),
    ("maxSafetyOrders", "integer", False),
    ("priceStep", "number", False),
    ("stepScale", "number", False),
    ("volumeScale", "number", False),
    ("takeProfit", "number", False),
    ("interval", "integer", False),
    ("stopLowPrice", "number", False),
    ("stopHighPrice", "number", False),
    ("takeProfitPnl", "number", False),
    ("endTime", "integer", False),
]

BOT_DOCS: Final[list[tuple[str, str, str, list[tuple[str, str, bool]]]]] = [
    ("/bot", "get", "Your trading bots with their state and PnL.", []),
    (
        "/bot/status",
        "get",
        "One bot: plan, exit rules, open orders, recent fills, realised and unrealised PnL, fees.",
        [("botId", "integer", True)],
    ),
    (
        "/bot",
        "post",
        "Start a bot (kind spotGrid, futuresGrid or dca) in a new sub-account funded with the"
        " investment.",
        _GRID_ROWS,
    ),
    (
        "/bot",
        "delete",
        "Stop a bot: its orders are cancelled; close=true also closes its position.",
        [("botId", "integer", True), ("close", "boolean", False)],
    ),
    (
        "/bot/resume",
        "post",
        "Resume a paused bot: orders that others cancelled (or that were rejected) are placed"
        " again, for what they did not fill; it pauses again if they fail again.",
        [("botId", "integer", True)],
    ),
    (
        "/bot/backtest",
        "post",
        "Run a bot's parameters over the venue's trades (startTime, endTime) or a CSV of"
        " trades (csv: timestamp,price): fills, equity over time (and an SVG plot), PnL.",
        [
            *_GRID_ROWS,
            ("startTime", "string", False),
            ("endTime", "string", False),
            ("csv", "string", False),
            ("plot", "boolean", False),
        ],
    ),
]
