"""BMEX staking, BitMEX's routes: ``GET /user/staking``, ``GET /user/staking/instruments``,
``GET /user/staking/tiers`` (public), ``GET``/``POST``/``DELETE /user/unstakingRequests``; and
our own ``POST /user/staking`` (stake; BitMEX stakes from the web app only).

Amounts are integers in the currency's minor unit (BMEx = 1e-6 BMEX), like every BitMEX wallet
amount. Each write is one core command (core.staking); a rejection is a 4xx with its reason's
message and changes nothing. Reads come from the event-fed views (``gateway.costs``).
"""

import uuid
from decimal import Decimal

from perpetua.core.commands import Command, Stake, UnstakeCancel, UnstakeRequest
from perpetua.core.events import Event, Rejected, UnstakingUpdated
from perpetua.core.staking import (
    REQUEST_ID_LENGTH_MAX,
    STAKING_CURRENCIES,
    STAKING_TIERS,
    UNSTAKING_COOLING_OFF_NS,
)
from perpetua.core.units import CURRENCIES, PPM
from perpetua.gateway.context import Context
from perpetua.gateway.errors import bad_request, from_rejection
from perpetua.gateway.routes.spec import Spec
from perpetua.wire.values import JsonRow, iso_ms

__all__ = ["STAKING_DOCS", "SPECS"]

UNSTAKING_STATUSES = ("Pending", "Canceled", "Released", "All")
_NS_PER_DAY = 86_400 * 10**9


def _currency(text: str | None, default: str | None = None) -> str:
    """A staking currency from ``BMEX``, ``BMEx`` or ``bmex``; 400 for anything else."""
    text = text or default
    for code in STAKING_CURRENCIES:
        if text is not None and text.lower() in (code.lower(), CURRENCIES[code].major.lower()):
            return code
    raise bad_request("Invalid currency: only BMEX can be staked")


def _amount(ctx: Context) -> int:
    amount = ctx.params.integer("amount")
    if amount is None or amount <= 0:
        raise bad_request("Invalid amount: a positive integer in minor units (BMEx)")
    return amount


async def _submit(ctx: Context, command: Command) -> list[Event]:
    result = await ctx.gw.submit(command)
    for event in result.events:
        if isinstance(event, Rejected):
            raise from_rejection(event)
    return list(result.events)


def _fraction(ppm: int) -> Decimal:
    return (Decimal(ppm) / Decimal(PPM)).normalize()


def _stake_row(ctx: Context, currency: str) -> JsonRow:
    found = ctx.gw.private.costs.stake(ctx.account, currency)
    tier = found.tier if found is not None else 0
    return {
        "account": ctx.account,
        "currency": currency,
        "amount": found.staked if found is not None else 0,
        "unstaking": found.unstaking if found is not None else 0,
        "eligible": found.eligible if found is not None else 0,
        "tier": tier,
        "feeDiscount": _fraction(STAKING_TIERS[tier].discount_ppm),
        "apr": _fraction(STAKING_TIERS[tier].apr_ppm),
    }


async def get_staking(ctx: Context) -> list[JsonRow]:
    """The caller's stake per staking currency (BitMEX's StakingRecord, plus our figures)."""
    given = ctx.params.string("currency")
    currencies = STAKING_CURRENCIES if given is None else (_currency(given),)
    return [_stake_row(ctx, currency) for currency in currencies]


async def post_staking(ctx: Context) -> JsonRow:
    """Stake ``amount`` from the available balance (our route)."""
    currency = _currency(ctx.params.string("currency"), "BMEx")
    await _submit(ctx, Stake(0, ctx.account, currency, _amount(ctx)))
    return _stake_row(ctx, currency)


async def get_staking_instruments(ctx: Context) -> list[JsonRow]:
    symbol = ctx.params.string("symbol")
    currency = ctx.params.string("currency")
    rows: list[JsonRow] = []
    for code in STAKING_CURRENCIES:
        major = CURRENCIES[code].major
        if symbol not in (None, major) or (currency is not None and _currency(currency) != code):
            continue
        rows.append(
            {
                "symbol": major,
                "currency": code,
                "coolingOffDays": UNSTAKING_COOLING_OFF_NS // _NS_PER_DAY,
                "minStake": 1,
                "rewardCurrency": code,
                "rewardSchedule": "daily at 00:00 UTC on the least amount staked that day",
            }
        )
    return rows


async def get_staking_tiers(ctx: Context) -> list[JsonRow]:
    """Public: the tier table of a staking currency."""
    _currency(ctx.params.required_string("currency"))
    return [
        {
            "tier": position,
            "minStaked": row.staked_min,
            "feeDiscount": _fraction(row.discount_ppm),
            "apr": _fraction(row.apr_ppm),
        }
        for position, row in enumerate(STAKING_TIERS)
    ]


def _request_row(event: UnstakingUpdated) -> JsonRow:
    return {
        "redemptionID": event.request_id,
        "account": event.account,
        "currency": event.currency,
        "amount": event.amount,
        "status": event.status,
        "releaseTime": iso_ms(event.release_ns),
        "timestamp": iso_ms(event.ts_ns),
    }


async def get_unstaking_requests(ctx: Context) -> list[JsonRow]:
    status = ctx.params.required_string("status")
    if status not in UNSTAKING_STATUSES:
        raise bad_request(f"Invalid status: one of {', '.join(UNSTAKING_STATUSES)}")
    return [
        _request_row(event)
        for event in ctx.gw.private.costs.requests(ctx.account)
        if status in ("All", event.status)
    ]


async def post_unstaking_request(ctx: Context) -> JsonRow:
    currency = _currency(ctx.params.required_string("symbol"))
    request_id = str(uuid.uuid4())
    events = await _submit(ctx, UnstakeRequest(0, ctx.account, currency, _amount(ctx), request_id))
    for event in events:
        if isinstance(event, UnstakingUpdated):
            return _request_row(event)
    raise bad_request("Unstaking request not recorded")  # not reached: the core records it


async def delete_unstaking_request(ctx: Context) -> JsonRow:
    request_id = ctx.params.required_string("redemptionID")
    if len(request_id) > REQUEST_ID_LENGTH_MAX:
        raise bad_request("Invalid redemptionID")
    events = await _submit(ctx, UnstakeCancel(0, ctx.account, request_id))
    for event in events:
        if isinstance(event, UnstakingUpdated):
            return _request_row(event)
    raise bad_request("Unstaking request not recorded")  # not reached


STAKING_DOCS: list[tuple[str, str, str, list[tuple[str, str, bool]]]] = [
    (
        "/user/staking",
        "post",
        "Stake BMEX from the available balance (amount in BMEx, 1e-6 BMEX). The stake earns "
        "the tier's fee discount and daily reward from the next full UTC day.",
        [("currency", "string", False), ("amount", "integer", True)],
    ),
]

SPECS = [
    Spec("/user/staking", "GET", get_staking, private=True),
    Spec("/user/staking", "POST", post_staking, private=True),
    Spec("/user/staking/instruments", "GET", get_staking_instruments, private=True),
    Spec("/user/staking/tiers", "GET", get_staking_tiers),
    Spec("/user/unstakingRequests", "GET", get_unstaking_requests, private=True),
    Spec("/user/unstakingRequests", "POST", post_unstaking_request, private=True),
    Spec("/user/unstakingRequests", "DELETE", delete_unstaking_request, private=True),
]
