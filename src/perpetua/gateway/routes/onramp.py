"""Buy crypto (our own routes, "Trading costs" in the served spec; services.onramp):

- ``POST /onramp/bank/order`` (``amount`` in USDt): a bank-transfer order with its reference
  code and the bank details, limited by the buyer's KYC level;
- ``GET /onramp/orders``: the caller's bank orders;
- ``POST /admin/onramp/confirm`` (operator; ``reference``, ``approver``): the money arrived;
  credits at once up to the four-eyes threshold, above it after a second, different approver;
- ``POST /onramp/checkout`` (``provider``, ``fiatAmount`` in cents): a hosted provider's quote
  and the page to send the buyer to;
- ``POST /onramp/webhook?provider=<name>``: the provider's signed notice; verified, replays
  refused, credited once (the core refuses a second Deposit of the same order).
Without an on-ramp service (``CostPorts.onramp``) the routes answer 503.
"""

import asyncio
import time

from perpetua.core.commands import Deposit
from perpetua.core.events import Rejected
from perpetua.core.reasons import Reason
from perpetua.gateway.context import Context
from perpetua.gateway.errors import ApiError, bad_request, from_reason
from perpetua.gateway.routes.operator import require_operator
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.surface import GatewaySurface
from perpetua.services.onramp import (
    AllowAll,
    BankOrder,
    KycLevels,
    OnRamp,
    OnRampError,
    kyc_limit,
)
from perpetua.wire.values import JsonRow

__all__ = ["ONRAMP_DOCS", "SPECS"]


def _onramp(ctx: Context) -> OnRamp:
    found = ctx.gw.costs.onramp
    if found is None:
        raise ApiError(503, "Buy crypto is not enabled on this venue")
    return found


def _levels(ctx: Context) -> KycLevels:
    return ctx.gw.compliance if ctx.gw.compliance is not None else AllowAll()


def _order_row(order: BankOrder, details: str = "") -> JsonRow:
    row: JsonRow = {
        "reference": order.reference,
        "account": order.account,
        "currency": order.currency,
        "amount": order.amount,
        "status": order.status,
        "approvals": len(order.approvals),
    }
    if details:
        row["bankDetails"] = details
    return row


async def _credit(ctx: Context, transfer_id: str, account: int, currency: str, amount: int) -> bool:
    """Submit the Deposit; False when the core had already credited this id (idempotent)."""
    result = await ctx.gw.submit_unshed(Deposit(0, account, currency, amount, transfer_id))
    for event in result.events:
        if isinstance(event, Rejected):
            if event.reason == Reason.TRANSFER_ID_DUPLICATE:
                return False
            raise from_reason(event.reason, event.required, event.currency)
    return True


async def post_bank_order(ctx: Context) -> JsonRow:
    onramp = _onramp(ctx)
    amount = ctx.params.integer("amount")
    if amount is None or amount <= 0:
        raise bad_request("Invalid amount: a positive integer in USDt (1e-6 USDT)")
    try:
        await kyc_limit(_levels(ctx), ctx.account, amount)
        order = await asyncio.to_thread(onramp.bank.create, ctx.account, amount)
    except OnRampError as error:
        raise ApiError(error.status, error.message) from None
    return _order_row(order, onramp.bank.bank_details)


async def get_orders(ctx: Context) -> list[JsonRow]:
    onramp = _onramp(ctx)
    rows = await asyncio.to_thread(onramp.bank.of, ctx.account)
    return [{**row, "approvals": len(row["approvals"])} for row in rows]


async def post_confirm(ctx: Context) -> JsonRow:
    require_operator(ctx)
    onramp = _onramp(ctx)
    reference = ctx.params.required_string("reference")
    approver = ctx.params.required_string("approver")
    try:
        order = await asyncio.to_thread(onramp.bank.confirm, reference, approver)
    except OnRampError as error:
        raise ApiError(error.status, error.message) from None
    if order.status == "Approved":
        await _credit(ctx, "onramp:bank:" + reference, order.account, order.currency, order.amount)
        order = await asyncio.to_thread(onramp.bank.credited, reference)
    return _order_row(order)


async def post_checkout(ctx: Context) -> JsonRow:
    onramp = _onramp(ctx)
    provider = onramp.providers.get(ctx.params.required_string("provider"))
    if provider is None:
        raise bad_request("Unknown on-ramp provider")
    cents = ctx.params.integer("fiatAmount")
    try:
        quote = provider.quote(ctx.account, cents or 0)
        await kyc_limit(_levels(ctx), ctx.account, quote.amount)
    except OnRampError as error:
        raise ApiError(error.status, error.message) from None
    checkout = provider.checkout(ctx.account, quote)
    return {
        "provider": provider.name,
        "orderID": checkout.order_id,
        "redirectUrl": checkout.redirect_url,
        "fiat": quote.fiat,
        "fiatAmount": quote.fiat_amount_cents,
        "currency": quote.currency,
        "amount": quote.amount,
    }


def _header(ctx: Context, name: bytes) -> str:
    for key, value in ctx.scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def post_webhook(ctx: Context) -> JsonRow:
    onramp = _onramp(ctx)
    provider = onramp.providers.get(ctx.params.string("provider") or "")
    if provider is None:
        raise ApiError(404, "Unknown on-ramp provider")
    signature = _header(ctx, b"x-onramp-signature")
    try:
        event = provider.verify_webhook(ctx.body, signature, time.time())
        await kyc_limit(_levels(ctx), event.account, event.amount)
    except OnRampError as error:
        raise ApiError(error.status, error.message) from None
    transfer_id = f"onramp:{provider.name}:{event.order_id}"
    credited = await _credit(ctx, transfer_id, event.account, event.currency, event.amount)
    return {"orderID": event.order_id, "credited": credited}


ONRAMP_DOCS: list[tuple[str, str, str, list[tuple[str, str, bool]]]] = [
    (
        "/onramp/bank/order",
        "post",
        "Buy USDT by bank transfer: an order with a reference code to put on the transfer; "
        "credited when the operator confirms receipt. Limited per order by KYC level.",
        [("amount", "integer", True)],
    ),
    ("/onramp/orders", "get", "Your bank-transfer orders and their status.", []),
    (
        "/onramp/checkout",
        "post",
        "Buy through a hosted provider: its quote and the checkout page to redirect to.",
        [("provider", "string", True), ("fiatAmount", "integer", True)],
    ),
    (
        "/onramp/webhook",
        "post",
        "A provider's signed payment notice (X-Onramp-Signature: t=..,v1=HMAC-SHA256); "
        "replays refused, credited once.",
        [("provider", "string", True)],
    ),
    (
        "/admin/onramp/confirm",
        "post",
        "Operator: a bank transfer arrived (reference, approver); two different approvers "
        "above the four-eyes threshold.",
        [("reference", "string", True), ("approver", "string", True)],
    ),
]


def _served(gw: GatewaySurface) -> bool:
    return gw.costs.onramp is not None


SPECS = [
    Spec("/onramp/bank/order", "POST", post_bank_order, private=True, served=_served),
    Spec("/onramp/orders", "GET", get_orders, private=True, served=_served),
    Spec("/onramp/checkout", "POST", post_checkout, private=True, served=_served),
    Spec("/onramp/webhook", "POST", post_webhook, served=_served),
    Spec("/admin/onramp/confirm", "POST", post_confirm, served=_served),
]
