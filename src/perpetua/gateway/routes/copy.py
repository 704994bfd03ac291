"""Copy-trading routes (``services.copytrading``; docs/bots-and-copy-trading.md): BitMEX's
``GET /leaderboard`` and ``GET /leaderboard/name``, and Perpetua's own under ``/copy`` (tag
"Copy trading" in the served swagger).

1. ``/leaderboard`` answers BitMEX's ``Leaderboard`` model (``name``, ``isRealName``,
   ``profit`` in settlement major units), ranked by ``method``: ``notional`` (PnL) or ``ROE``;
   public, like BitMEX's. ``/copy/leaders`` answers the full track records.
2. A leader profile is for the calling account; following, unfollowing and profiles need the
   ``order`` permission. Refusals (``CopyError``) are 400s; nothing changed.
3. Track records are read from the read models in a worker thread.
"""

import asyncio
from typing import Any, Final

from perpetua.core.units import currency
from perpetua.gateway.auth import PERMISSION_ORDER
from perpetua.gateway.context import Context, client_ip
from perpetua.gateway.errors import ApiError, bad_request
from perpetua.gateway.ports import CopyPort
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.surface import GatewaySurface

__all__ = ["COPY_DOCS", "SPECS"]

MSG_NO_COPY: Final = "Copy trading is not available on this exchange"
LEADER_PARAMS: Final = ("name", "symbols", "leverageCap", "profitShare")
FOLLOW_PARAMS: Final = (
    "leader",
    "allocation",
    "mode",
    "ratio",
    "fixedQty",
    "maxTradeQty",
    "leverageCap",
    "takeProfit",
    "stopLoss",
    "slippage",
)
LEADERBOARD_METHODS: Final = ("notional", "ROE")


def _copy(ctx: Context) -> CopyPort:
    if ctx.gw.copy is None:
        raise ApiError(503, MSG_NO_COPY)
    return ctx.gw.copy


def _params(ctx: Context, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: ctx.params.raw(name) for name in names if ctx.params.has(name)}


async def get_leaderboard(ctx: Context) -> list[dict[str, Any]]:
    method = ctx.params.string("method") or "notional"
    if method not in LEADERBOARD_METHODS:
        raise bad_request("Invalid method: notional or ROE")
    rows = await asyncio.to_thread(_copy(ctx).leader_rows)
    key = "pnl" if method == "notional" else "roiPpm"
    rows.sort(key=lambda r: (-r.get(key, 0), r["account"]))
    return [
        {
            "name": r["name"],
            "isRealName": False,
            "profit": r.get("pnl", 0) / currency(r["currency"]).minor_per_major,
        }
        for r in rows
    ]


async def get_leaderboard_name(ctx: Context) -> dict[str, Any]:
    return {"name": _copy(ctx).leader_name(ctx.account)}


async def get_leaders(ctx: Context) -> list[dict[str, Any]]:
    rows = await asyncio.to_thread(_copy(ctx).leader_rows)
    rows.sort(key=lambda r: (-r.get("pnl", 0), r["account"]))
    return rows


async def post_leader(ctx: Context) -> dict[str, Any]:
    try:
        return await _copy(ctx).set_leader(ctx.account, ctx.account, _params(ctx, LEADER_PARAMS))
    except ValueError as error:
        raise bad_request(str(error)) from error


async def get_follows(ctx: Context) -> list[dict[str, Any]]:
    return _copy(ctx).follow_rows(ctx.account)


async def post_follow(ctx: Context) -> dict[str, Any]:
    service, params = _copy(ctx), _params(ctx, FOLLOW_PARAMS)
    try:
        stored = service.validate_follow(ctx.account, params)
        code, amount = stored["currency"], stored["allocation"]
        available = ctx.gw.private.available_margin(ctx.account, code)
        if amount > available:
            raise bad_request(f"allocation: more than the available balance ({available} {code})")
        return await service.follow(ctx.account, params, client_ip(ctx.scope))
    except ValueError as error:
        raise bad_request(str(error)) from error


async def delete_follow(ctx: Context) -> dict[str, Any]:
    follow_id = ctx.params.integer("followId")
    if follow_id is None:
        raise bad_request("followId is required")
    try:
        return await _copy(ctx).unfollow(ctx.account, follow_id, ctx.params.boolean("close", True))
    except ValueError as error:
        raise bad_request(str(error)) from error


def _served(gw: GatewaySurface) -> bool:
    return gw.copy is not None


SPECS = [
    Spec("/leaderboard", "GET", get_leaderboard, served=_served),
    Spec("/leaderboard/name", "GET", get_leaderboard_name, private=True, served=_served),
    Spec("/copy/leaders", "GET", get_leaders, served=_served),
    Spec(
        "/copy/leader",
        "POST",
        post_leader,
        private=True,
        permission=PERMISSION_ORDER,
        served=_served,
    ),
    Spec("/copy/follow", "GET", get_follows, private=True, served=_served),
    Spec(
        "/copy/follow",
        "POST",
        post_follow,
        private=True,
        permission=PERMISSION_ORDER,
        served=_served,
    ),
    Spec(
        "/copy/follow",
        "DELETE",
        delete_follow,
        private=True,
        permission=PERMISSION_ORDER,
        served=_served,
    ),
]

COPY_DOCS: Final[list[tuple[str, str, str, list[tuple[str, str, bool]]]]] = [
    (
        "/copy/leaders",
        "get",
        "Lead traders with their track records: PnL, ROI, max drawdown, win rate, average"
        " holding time, followers, assets under copy.",
        [],
    ),
    (
        "/copy/leader",
        "post",
        "Opt the calling account in as a lead trader (or change its profile).",
        [
            ("name", "string", True),
            ("symbols", "string", True),
            ("leverageCap", "number", False),
            ("profitShare", "number", False),
        ],
    ),
    ("/copy/follow", "get", "Your copy relationships: state, equity, high-water mark.", []),
    (
        "/copy/follow",
        "post",
        "Copy a lead trader from a new sub-account funded with the allocation.",
        [
            ("leader", "integer", True),
            ("allocation", "number", True),
            ("mode", "string", False),
            ("ratio", "number", False),
            ("fixedQty", "integer", False),
            ("maxTradeQty", "integer", False),
            ("leverageCap", "number", False),
            ("takeProfit", "number", False),
            ("stopLoss", "number", False),
            ("slippage", "number", False),
        ],
    ),
    (
        "/copy/follow",
        "delete",
        "Stop copying: orders cancelled, positions closed unless close=false.",
        [("followId", "integer", True), ("close", "boolean", False)],
    ),
]
