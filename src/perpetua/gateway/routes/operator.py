"""The operator's routes under ``/admin``, guarded by the operator key (``x-operator-key``).

Every change is a core command through the sequencer, journaled like a trade, so it replays
and shows in the event stream; a rejection comes back as BitMEX's error with the core's reason.

    GET  /admin/instruments        every instrument: symbol, kind, state, reference index
    POST /admin/instrument/state   symbol, state (Open | Closed): halt or resume a market
    POST /admin/interestRate       symbol, rate (per funding interval, e.g. 0.0001)
    POST /admin/feeTier            account, tier (index into the fee table)
    POST /admin/listFuture         root (XBT), year, quarter (1..4)
    GET  /admin/accounts           the system accounts' balances (insurance fund, fees, ...)
    POST /admin/futureSeries       a futures series (core.catalogue.FutureSeries's fields, core
                                   units; payout inverse | linear | quanto): ListFuture lists it
    POST /admin/announcement       title, content, link, urgent: publish (its id is the seq)
    DELETE /admin/announcement     id: take an announcement down

``perpetua operator`` (``services.operator_cli``) is the command-line client of these routes.
"""

import hmac
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from perpetua.core.catalogue import FutureSeries
from perpetua.core.commands import (
    Command,
    DefineFutureSeries,
    FundConvertDesk,
    FundStakingRewards,
    ListFuture,
    PublishAnnouncement,
    SetFeeTier,
    SetInstrumentState,
    SetInterestRate,
    WithdrawAnnouncement,
)
from perpetua.core.events import Rejected
from perpetua.core.instruments import Payout
from perpetua.core.ledger import SYSTEM_ACCOUNTS
from perpetua.gateway.context import Context
from perpetua.gateway.errors import MSG_ACCESS_DENIED, ApiError, bad_request, from_rejection
from perpetua.gateway.ports import Result
from perpetua.gateway.routes.spec import Spec
from perpetua.marketdata.announcements import announcement_wire
from perpetua.store.queries import wallets_of_all
from perpetua.wire.values import JsonRow

__all__ = ["OPERATOR_STATES", "SPECS", "require_operator"]

OPERATOR_STATES: Final = ("Open", "Closed")  # resume, halt; the others are the core's own
PPB: Final = 1_000_000_000
INTEREST_RATE_ABS_MAX: Final = Decimal("0.01")  # per interval: 1%, far beyond any real rate
FEE_TIER_MAX: Final = 100
YEAR_RANGE: Final = (2000, 2200)


def require_operator(ctx: Context) -> None:
    expected = ctx.gw.config.operator_key
    given = ctx.request.headers.get("x-operator-key", "")
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise ApiError(403, MSG_ACCESS_DENIED)


async def _submit(ctx: Context, command: Command) -> int:
    """Submit ``command`` (never shed: operators act in overload too); its seq."""
    return (await _submit_result(ctx, command)).seq


async def _submit_result(ctx: Context, command: Command) -> Result:
    result = await ctx.gw.submit_unshed(command)
    for event in result.events:
        if isinstance(event, Rejected):
            raise from_rejection(event)
    return result


def _symbol(ctx: Context) -> str:
    symbol = ctx.params.required_string("symbol")
    if symbol not in ctx.gw.market.specs:
        raise bad_request(f"Unknown symbol {symbol!r}")
    return symbol


async def get_instruments(ctx: Context) -> list[JsonRow]:
    require_operator(ctx)
    rows = []
    for symbol, spec in ctx.gw.market.specs.items():
        live = ctx.gw.market.live(symbol)
        rows.append(
            {
                "symbol": symbol,
                "kind": spec.kind.name,
                "state": live.get("state"),
                "reference": spec.reference_symbol or None,
                "markPrice": live.get("markPrice"),
                "lastPrice": live.get("lastPrice"),
            }
        )
    return rows


async def post_instrument_state(ctx: Context) -> JsonRow:
    require_operator(ctx)
    symbol = _symbol(ctx)
    state = ctx.params.required_string("state")
    if state not in OPERATOR_STATES:
        raise bad_request(f"state must be one of {', '.join(OPERATOR_STATES)}")
    seq = await _submit(ctx, SetInstrumentState(0, symbol, state))
    return {"symbol": symbol, "state": state, "seq": seq}


async def post_interest_rate(ctx: Context) -> JsonRow:
    require_operator(ctx)
    symbol = _symbol(ctx)
    text = ctx.params.required_string("rate")
    try:
        rate = Decimal(text)
    except InvalidOperation:
        raise bad_request("rate must be a decimal such as 0.0001") from None
    if not rate.is_finite() or abs(rate) > INTEREST_RATE_ABS_MAX:
        raise bad_request(f"rate must be within +-{INTEREST_RATE_ABS_MAX}")
    ppb = rate * PPB
    if ppb != ppb.to_integral_value():
        raise bad_request("rate has more than 9 decimals")
    seq = await _submit(ctx, SetInterestRate(0, symbol, int(ppb)))
    return {"symbol": symbol, "rate": str(rate), "seq": seq}


async def post_fee_tier(ctx: Context) -> JsonRow:
    require_operator(ctx)
    account = ctx.params.integer("account")
    tier = ctx.params.integer("tier")
    if account is None or account <= 0:
        raise bad_request("Invalid account")
    if tier is None or not 0 <= tier <= FEE_TIER_MAX:
        raise bad_request("Invalid tier")
    seq = await _submit(ctx, SetFeeTier(0, account, tier))
    return {"account": account, "tier": tier, "seq": seq}


async def post_staking_rewards(ctx: Context) -> JsonRow:
    """Fund the staking rewards account from outside (BMEx), idempotent by ``transferID``."""
    require_operator(ctx)
    amount = ctx.params.integer("amount")
    transfer_id = ctx.params.required_string("transferID")
    if amount is None or amount <= 0:
        raise bad_request("Invalid amount")
    currency = ctx.params.string("currency", "BMEx") or "BMEx"
    seq = await _submit(ctx, FundStakingRewards(0, currency, amount, transfer_id))
    return {"currency": currency, "amount": amount, "transferID": transfer_id, "seq": seq}


async def post_convert_desk(ctx: Context) -> JsonRow:
    """Fund the convert desk's inventory of ``currency`` from outside, idempotent by
    ``transferID`` (core.convert: conversions pay out of it)."""
    require_operator(ctx)
    amount = ctx.params.integer("amount")
    transfer_id = ctx.params.required_string("transferID")
    currency = ctx.params.required_string("currency")
    if amount is None or amount <= 0:
        raise bad_request("Invalid amount")
    seq = await _submit(ctx, FundConvertDesk(0, currency, amount, transfer_id))
    return {"currency": currency, "amount": amount, "transferID": transfer_id, "seq": seq}


async def post_list_future(ctx: Context) -> JsonRow:
    require_operator(ctx)
    root = ctx.params.required_string("root")
    year = ctx.params.integer("year")
    quarter = ctx.params.integer("quarter")
    if year is None or not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
        raise bad_request("Invalid year")
    if quarter is None or not 1 <= quarter <= 4:
        raise bad_request("quarter must be 1..4")
    seq = await _submit(ctx, ListFuture(0, root, year, quarter))
    return {"root": root, "year": year, "quarter": quarter, "seq": seq}


_SERIES_PAYOUTS: Final = {
    "inverse": Payout.INVERSE,
    "linear": Payout.LINEAR,
    "quanto": Payout.QUANTO,
}
_SERIES_TEXT: Final = frozenset(
    {"key", "root", "quote", "settl", "position_currency", "reference", "settlement_index"}
)
_SERIES_OPTIONAL: Final = frozenset({"position_currency", "u2p", "u2s", "q2s"})


async def post_future_series(ctx: Context) -> JsonRow:
    """Define a futures series at runtime (``perpetua operator catalogue FILE`` sends the
    catalogue file's); the engine checks it (``SERIES_INVALID``, ``INSTRUMENT_EXISTS``)."""
    require_operator(ctx)
    payout = _SERIES_PAYOUTS.get(ctx.params.required_string("payout"))
    if payout is None:
        raise bad_request("payout must be inverse, linear or quanto")
    fields: list[Any] = []
    for name in FutureSeries._fields:
        if name == "payout":
            fields.append(payout)
        elif name in _SERIES_TEXT:
            text = ctx.params.string(name)
            if text is None and name not in _SERIES_OPTIONAL:
                raise bad_request(f"'{name}' is a required arg.")
            fields.append(text or "")
        else:
            number = ctx.params.integer(name)
            if number is None and name not in _SERIES_OPTIONAL:
                raise bad_request(f"'{name}' is a required arg.")
            if number is not None and not -(2**63) < number < 2**63:
                raise bad_request(f"Invalid {name}")
            fields.append(number or 0)
    seq = await _submit(ctx, DefineFutureSeries(0, *fields))
    return {"key": fields[0], "seq": seq}


async def post_announcement(ctx: Context) -> JsonRow:
    """Publish; the answer is BitMEX's ``Announcement`` row (``id`` = the command's seq)."""
    require_operator(ctx)
    title = ctx.params.required_string("title")
    content = ctx.params.string("content") or ""
    link = ctx.params.string("link") or ""
    urgent = ctx.params.boolean("urgent") or False
    result = await _submit_result(ctx, PublishAnnouncement(0, title, content, link, urgent))
    return {**announcement_wire(result.seq, result.ts_ns, title, content, link), "urgent": urgent}


async def delete_announcement(ctx: Context) -> JsonRow:
    require_operator(ctx)
    announcement_id = ctx.params.integer("id")
    if announcement_id is None or announcement_id <= 0:
        raise bad_request("Invalid id")
    if announcement_id not in ctx.gw.market.announcements.rows:
        raise ApiError(404, "Not Found")
    seq = await _submit(ctx, WithdrawAnnouncement(0, announcement_id))
    return {"id": announcement_id, "withdrawn": True, "seq": seq}


async def get_accounts(ctx: Context) -> list[JsonRow]:
    """Balances of the system accounts, from the read models once they hold the last seq."""
    require_operator(ctx)
    rows = await ctx.gw.history.read(ctx.gw.last_seq, wallets_of_all)
    return [
        {
            "account": row.account,
            "name": SYSTEM_ACCOUNTS[row.account],
            "currency": row.currency,
            "amount": row.amount,
        }
        for row in rows
        if row.account in SYSTEM_ACCOUNTS
    ]


SPECS = [
    Spec("/admin/instruments", "GET", get_instruments),
    Spec("/admin/instrument/state", "POST", post_instrument_state),
    Spec("/admin/interestRate", "POST", post_interest_rate),
    Spec("/admin/feeTier", "POST", post_fee_tier),
    Spec("/admin/listFuture", "POST", post_list_future),
    Spec("/admin/stakingRewards", "POST", post_staking_rewards),
    Spec("/admin/convertDesk", "POST", post_convert_desk),
    Spec("/admin/accounts", "GET", get_accounts),
    Spec("/admin/futureSeries", "POST", post_future_series),
    Spec("/admin/announcement", "POST", post_announcement),
    Spec("/admin/announcement", "DELETE", delete_announcement),
]
