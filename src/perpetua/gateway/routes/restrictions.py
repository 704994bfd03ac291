"""Account restrictions over REST: what an account may do and why, and the operator's routes
that set restrictions and liquidate a breaching account (each one core command).

    GET  /user/restrictions          (signed) this account's restriction, in words
    GET  /admin/restriction          account: its restriction
    POST /admin/restriction          account, trading (Allowed | CloseOnly | Frozen),
                                     productsDenied (Spot,Derivatives,TradFi), deposits,
                                     withdrawals (true | false), cause, text
    POST /admin/liquidate            account, band (fraction, default 0.05), text

The restriction is core state (``core.restrictions``): these routes submit
``SetAccountRestriction`` / ``LiquidateAccount`` through the sequencer; the gateway's copy
(``Gateway.restrictions``) is folded from ``AccountRestricted`` events and the start-up seed.
With compliance running, an operator's restriction goes through it
(``Compliance.operator_restriction``): it is kept as the account's operator restriction and
merged with what the account's KYC records require, so the compliance sync never lifts it, and
setting ``Allowed`` lifts only the operator's part (the answer shows what is in force).
"""

from decimal import Decimal, InvalidOperation
from typing import Any, Final

from perpetua.core.commands import LiquidateAccount, SetAccountRestriction
from perpetua.core.enums import RestrictionCause, TradingMode
from perpetua.core.events import AccountRestricted, OrderEvent, Rejected
from perpetua.core.reasons import CAUSE_TEXT
from perpetua.gateway.context import Context
from perpetua.gateway.errors import bad_request, from_rejection
from perpetua.gateway.routes.operator import require_operator
from perpetua.gateway.routes.spec import Spec
from perpetua.wire.values import JsonRow
from perpetua.wire.vocabulary import (
    PRODUCT_CLASS_NAMES,
    RESTRICTION_CAUSE_NAMES,
    TRADING_MODE_NAMES,
    by_name,
    product_class_names,
)

__all__ = ["RESTRICTION_DOCS", "SPECS", "describe", "restriction_command"]

LIQUIDATION_BAND_DEFAULT: Final = Decimal("0.05")
LIQUIDATION_BAND_MAX: Final = Decimal("0.5")
TEXT_LENGTH_MAX: Final = 200
PPM: Final = 1_000_000

_MODES = by_name(TRADING_MODE_NAMES)
_PRODUCTS = by_name(PRODUCT_CLASS_NAMES)
_CAUSES = by_name(RESTRICTION_CAUSE_NAMES)

_MAY_DO: Final = {
    TradingMode.ALLOWED: "trade",
    TradingMode.CLOSE_ONLY: "reduce positions (ReduceOnly or Close orders) and cancel orders",
    TradingMode.FROZEN: "cancel orders only",
}


def describe(account: int, restriction: AccountRestricted | None) -> JsonRow:
    """An account's restriction in words: what it may do and why."""
    if restriction is None:
        return {
            "account": account,
            "restricted": False,
            "trading": TRADING_MODE_NAMES[TradingMode.ALLOWED],
            "productsDenied": [],
            "deposits": True,
            "withdrawals": True,
            "cause": RESTRICTION_CAUSE_NAMES[RestrictionCause.NONE],
            "reason": "",
            "mayDo": _MAY_DO[TradingMode.ALLOWED],
        }
    frozen = restriction.trading == TradingMode.FROZEN
    may_do = _MAY_DO[TradingMode(restriction.trading)]
    denied = product_class_names(restriction.products_denied)
    if denied and restriction.trading == TradingMode.ALLOWED:
        may_do = f"trade, but only reduce positions in {', '.join(denied)}"
    return {
        "account": account,
        "restricted": True,
        "trading": TRADING_MODE_NAMES[restriction.trading],
        "productsDenied": denied,
        "deposits": restriction.deposits and not frozen,
        "withdrawals": restriction.withdrawals and not frozen,
        "cause": RESTRICTION_CAUSE_NAMES.get(restriction.cause, "None"),
        "reason": CAUSE_TEXT.get(restriction.cause, CAUSE_TEXT[0]),
        "mayDo": may_do,
    }


def _products(value: Any) -> int:
    if value is None or value == "":
        return 0
    names = value if isinstance(value, list) else str(value).split(",")
    bits = 0
    for name in names:
        bit = _PRODUCTS.get(str(name).strip())
        if bit is None:
            raise bad_request(f"productsDenied: one of {', '.join(_PRODUCTS)}")
        bits |= bit
    return bits


def restriction_command(
    account: int,
    trading: str,
    products: Any = None,
    deposits: bool = True,
    withdrawals: bool = True,
    cause: str = "Operator",
    text: str = "",
) -> SetAccountRestriction:
    """The core command for a restriction given by name (400 on a bad name)."""
    mode = _MODES.get(trading)
    if mode is None:
        raise bad_request(f"trading must be one of {', '.join(_MODES)}")
    code = _CAUSES.get(cause)
    if code is None:
        raise bad_request(f"cause must be one of {', '.join(_CAUSES)}")
    if len(text) > TEXT_LENGTH_MAX:
        raise bad_request(f"text is longer than {TEXT_LENGTH_MAX} characters")
    return SetAccountRestriction(
        0, account, mode, _products(products), deposits, withdrawals, code, text
    )


def _account(ctx: Context) -> int:
    account = ctx.params.integer("account")
    if account is None or account <= 0:
        raise bad_request("Invalid account")
    return account


async def get_user_restrictions(ctx: Context) -> JsonRow:
    return describe(ctx.account, ctx.gw.restrictions.get(ctx.account))


async def get_restriction(ctx: Context) -> JsonRow:
    require_operator(ctx)
    account = _account(ctx)
    return describe(account, ctx.gw.restrictions.get(account))


async def post_restriction(ctx: Context) -> JsonRow:
    require_operator(ctx)
    account = _account(ctx)
    params = ctx.params
    command = restriction_command(
        account,
        params.string("trading") or "",
        params.raw("productsDenied"),
        params.boolean("deposits", True),
        params.boolean("withdrawals", True),
        params.string("cause") or "Operator",
        params.string("text") or "",
    )
    compliance = ctx.gw.compliance
    if compliance is not None:  # kept as the operator's own, merged with what KYC requires
        result = await compliance.operator_restriction(command)
    else:
        result = await ctx.gw.submit_unshed(command)
    for event in result.events:
        if isinstance(event, Rejected):
            raise from_rejection(event)
    cancelled = [
        e.order_id for e in result.events if isinstance(e, OrderEvent) and e.account == account
    ]
    set_to = next(e for e in result.events if isinstance(e, AccountRestricted))
    restricted = set_to.trading or set_to.products_denied
    answer = describe(
        account, set_to if restricted or not (set_to.deposits and set_to.withdrawals) else None
    )
    return {**answer, "canceledOrders": cancelled, "seq": result.seq}


async def post_liquidate(ctx: Context) -> JsonRow:
    require_operator(ctx)
    account = _account(ctx)
    text = ctx.params.string("band")
    try:
        band = Decimal(text) if text else LIQUIDATION_BAND_DEFAULT
    except InvalidOperation:
        raise bad_request("band must be a fraction such as 0.05") from None
    if not band.is_finite() or not 0 < band <= LIQUIDATION_BAND_MAX:
        raise bad_request(f"band must be in (0, {LIQUIDATION_BAND_MAX}]")
    band_ppm = int(band * PPM)
    if band_ppm <= 0:
        raise bad_request("band is below one millionth")
    note = ctx.params.string("text") or ""
    if len(note) > TEXT_LENGTH_MAX:
        raise bad_request(f"text is longer than {TEXT_LENGTH_MAX} characters")
    result = await ctx.gw.submit_unshed(LiquidateAccount(0, account, band_ppm, note))
    for event in result.events:
        if isinstance(event, Rejected) and event.command == "LiquidateAccount":
            raise from_rejection(event)
    rows = [e for e in result.events if isinstance(e, OrderEvent) and e.account == account]
    closed = {}
    for row in rows:
        if row.cl_ord_id == "" and row.cum_qty:
            closed[row.symbol] = row.cum_qty * row.side
    return {"account": account, "bandPpm": band_ppm, "closed": closed, "seq": result.seq}


RESTRICTION_DOCS: list[tuple[str, str, str, list[tuple[str, str, bool]]]] = [
    ("/user/restrictions", "get", "What this account may do, and why (signed).", []),
    (
        "/admin/restriction",
        "get",
        "An account's restriction (operator key in x-operator-key).",
        [("account", "integer", True)],
    ),
    (
        "/admin/restriction",
        "post",
        "Set an account's restriction: a core command (operator key in x-operator-key).",
        [
            ("account", "integer", True),
            ("trading", "string", True),
            ("productsDenied", "string", False),
            ("deposits", "boolean", False),
            ("withdrawals", "boolean", False),
            ("cause", "string", False),
            ("text", "string", False),
        ],
    ),
    (
        "/admin/liquidate",
        "post",
        "Cancel an account's orders and close its positions at market within a price band: "
        "one core command (operator key in x-operator-key).",
        [("account", "integer", True), ("band", "number", False), ("text", "string", False)],
    ),
]

SPECS = [
    Spec("/user/restrictions", "GET", get_user_restrictions, private=True),
    Spec("/admin/restriction", "GET", get_restriction),
    Spec("/admin/restriction", "POST", post_restriction),
    Spec("/admin/liquidate", "POST", post_liquidate),
]
