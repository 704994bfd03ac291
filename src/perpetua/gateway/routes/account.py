"""The operator's admin routes (testnet faucet,
API key creation) guarded by the ``x-operator-key`` header."""

import asyncio
import uuid

from perpetua.core.commands import Deposit
from perpetua.core.events import Rejected
from perpetua.core.units import CURRENCIES
from perpetua.gateway.context import Context
from perpetua.gateway.errors import ApiError, bad_request, from_rejection
from perpetua.gateway.routes.operator import require_operator
from perpetua.gateway.routes.spec import Spec
from perpetua.wire.values import JsonRow

__all__ = ["SPECS"]

FAUCET_AMOUNT_MAX = 10**15  # minor units per faucet call


async def post_faucet(ctx: Context) -> JsonRow:
    require_operator(ctx)
    account = ctx.params.integer("account")
    amount = ctx.params.integer("amount")
    currency = ctx.params.required_string("currency")
    if account is None or account <= 0:
        raise bad_request("Invalid account")
    if amount is None or not 0 < amount <= FAUCET_AMOUNT_MAX:
        raise bad_request("Invalid amount")
    if currency not in CURRENCIES:
        raise bad_request("Invalid currency")
    transfer_id = ctx.params.string("transferID") or f"faucet-{uuid.uuid4()}"
    result = await ctx.gw.submit_unshed(Deposit(0, account, currency, amount, transfer_id))
    for event in result.events:
        if isinstance(event, Rejected):
            raise from_rejection(event)
    wallet = ctx.gw.private.wallet_row(account, currency)
    return {
        "transferID": transfer_id,
        "account": account,
        "currency": currency,
        "amount": amount,
        "walletBalance": wallet["amount"],
    }


async def post_admin_api_key(ctx: Context) -> JsonRow:
    require_operator(ctx)
    accounts = ctx.gw.accounts
    if accounts is None:
        raise ApiError(400, "This venue has no accounts service: use `perpetua admin`.")
    user_id = ctx.params.integer("userId")
    if user_id is None or user_id <= 0:
        raise bad_request("Invalid userId")
    permissions = [p for p in (ctx.params.string("permissions") or "").split(",") if p]
    cidr = [c for c in (ctx.params.string("cidr") or "").split(",") if c]
    name = ctx.params.string("name") or ""
    try:  # SQL and argon2 work: off the event loop
        key_id, secret = await asyncio.to_thread(
            accounts.issue_api_key, user_id, permissions, cidr, name
        )
    except ValueError as exc:  # AccountsError: a rejection with a message for the client
        raise bad_request(str(exc)) from exc
    return {
        "id": key_id,
        "secret": secret,
        "userId": user_id,
        "permissions": permissions,
        "cidr": ",".join(cidr),
        "enabled": True,
    }


SPECS = [
    Spec("/admin/faucet", "POST", post_faucet),
    Spec("/admin/apiKey", "POST", post_admin_api_key),
]
