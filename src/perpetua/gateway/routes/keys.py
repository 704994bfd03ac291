"""Self-service API keys and sub-accounts, under BitMEX's names: ``GET/POST/DELETE /apiKey``,
``POST /apiKey/enable|disable``, ``/user/addSubaccount``, ``/user/updateSubaccount``,
``/user/getWalletTransferAccounts``, ``/user/walletTransfer``.

1. Creating, enabling, disabling and deleting keys and managing sub-accounts need a browser
   session (``routes.accounts`` rule 2); creating or enabling a key with ``withdraw`` needs a
   current second factor: a TOTP code in ``token`` or a security key's assertion in
   ``webauthn`` (``services.keyring``). The secret is in the creation answer only; the key is
   made in the state asked (``enabled``) in the same transaction as its audit row.
2. ``walletTransfer`` moves money between the caller's family accounts by one core command
   (``WalletTransfer``: atomic, conserved, margin-checked like a withdrawal); with an API key
   it needs the ``withdraw`` permission. ``transferID`` (optional) makes a retry safe.
3. Without an accounts service (in-memory keys), ``GET /apiKey`` lists the calling key only.
"""

import uuid
from typing import Any, Final

from perpetua.core.commands import WalletTransfer
from perpetua.core.events import Rejected
from perpetua.core.units import CURRENCIES
from perpetua.gateway.auth import PERMISSION_WITHDRAW
from perpetua.gateway.context import Context
from perpetua.gateway.errors import MSG_ACCESS_DENIED, ApiError, bad_request, from_reason
from perpetua.gateway.routes.accounts import (
    ask,
    credential_of,
    identity_of,
    origin_of,
    require_session,
)
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.sessions import session_of
from perpetua.services.accounts import ApiKeyInfo
from perpetua.services.identity import NewKey
from perpetua.wire.values import JsonRow, iso_ms

__all__ = ["KEY_DOCS", "SPECS"]

TRANSFER_ID_LENGTH_MAX: Final = 64


def key_row(key: ApiKeyInfo, secret: str = "") -> JsonRow:
    """BitMEX's ``APIKey`` model (the secret only at creation)."""
    return {
        "id": key.key_id,
        "secret": secret,
        "name": key.name,
        "nonce": key.nonce,
        "cidr": ",".join(key.cidr),
        "cidrs": list(key.cidr),
        "targetAccountId": key.user_id,
        "permissions": list(key.permissions),
        "enabled": key.enabled,
        "userId": key.user_id,
        "created": iso_ms(key.created_ns),
    }


async def get_api_keys(ctx: Context) -> list[JsonRow]:
    identity = ctx.gw.identity
    if identity is None:
        key = ctx.principal.key if ctx.principal is not None else None
        if key is None:
            raise ApiError(401, MSG_ACCESS_DENIED)
        return [
            {
                "id": key.key_id,
                "secret": "",
                "name": key.name,
                "nonce": key.nonce,
                "cidr": ",".join(key.cidr),
                "cidrs": list(key.cidr),
                "permissions": list(key.permissions),
                "enabled": key.enabled,
                "userId": key.user_id,
                "created": iso_ms(0),
            }
        ]
    return [key_row(k) for k in await ask(identity.api_keys(ctx.account))]


def _list(ctx: Context, name: str) -> list[str]:
    values = ctx.params.string_list(name) or []
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _factor(ctx: Context) -> tuple[str, str]:
    """A current second factor sent with the request: a TOTP code in ``token`` and/or a
    security key's assertion in ``webauthn`` (after ``POST /user/webauthn/confirmOptions``)."""
    return ctx.params.string("token") or "", credential_of(ctx, "webauthn")


async def post_api_key(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    identity = identity_of(ctx)
    account = ctx.params.integer("targetAccountId", session.user_id) or session.user_id
    key = NewKey(
        ctx.params.string("name") or "",
        tuple(_list(ctx, "permissions")),
        tuple(_list(ctx, "cidr") + _list(ctx, "cidrs")),
        ctx.params.boolean("enabled", True),
    )
    created, secret = await ask(
        identity.create_api_key(session.user_id, account, key, _factor(ctx), origin_of(ctx))
    )
    ctx.headers["cache-control"] = "no-store"
    return key_row(created, secret)


async def _set_enabled(ctx: Context, enabled: bool) -> JsonRow:
    session = require_session(ctx)
    key_id = ctx.params.required_string("apiKeyID")
    info = await ask(
        identity_of(ctx).set_api_key_enabled(
            session.user_id, key_id, enabled, _factor(ctx), origin_of(ctx)
        )
    )
    ctx.gw.keys.forget(key_id)
    return key_row(info)


async def post_enable(ctx: Context) -> JsonRow:
    return await _set_enabled(ctx, True)


async def post_disable(ctx: Context) -> JsonRow:
    return await _set_enabled(ctx, False)


async def delete_api_key(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    key_id = ctx.params.required_string("apiKeyID")
    info = await ask(identity_of(ctx).delete_api_key(session.user_id, key_id, origin_of(ctx)))
    ctx.gw.keys.forget(key_id)
    return key_row(info)


def _account_row(account: Any, caller: int) -> JsonRow:
    name = account.account_name or f"user{account.id}"
    return {
        "id": account.id,
        "account": account.id,
        "accountName": name,
        "ownerId": account.owner_id or account.id,
        "isSubaccount": account.owner_id is not None,
        "isCurrent": account.id == caller,
        "created": iso_ms(account.created_ns),
    }


async def post_add_subaccount(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    added = await ask(
        identity_of(ctx).add_subaccount(
            session.user_id, ctx.params.required_string("accountName"), origin_of(ctx)
        )
    )
    return _account_row(added, session.user_id)


async def post_update_subaccount(ctx: Context) -> JsonRow:
    session = require_session(ctx)
    target = ctx.params.integer("targetAccountId")
    if target is None:
        raise bad_request("'targetAccountId' is a required arg.")
    updated = await ask(
        identity_of(ctx).update_subaccount(
            session.user_id, target, ctx.params.required_string("accountName"), origin_of(ctx)
        )
    )
    return _account_row(updated, session.user_id)


async def get_transfer_accounts(ctx: Context) -> list[JsonRow]:
    family = await ask(identity_of(ctx).family(ctx.account))
    return [_account_row(a, ctx.account) for a in family]


def _currency(text: str) -> str:
    for code, currency in CURRENCIES.items():
        if text.lower() in (code.lower(), currency.major.lower()):
            return code
    raise bad_request("Invalid currency")


async def post_wallet_transfer(ctx: Context) -> JsonRow:
    if session_of(ctx.principal) is None:
        assert ctx.principal is not None
        if PERMISSION_WITHDRAW not in ctx.principal.key.permissions:
            raise ApiError(403, MSG_ACCESS_DENIED)
    identity = identity_of(ctx)
    caller = ctx.account
    currency = _currency(ctx.params.required_string("currency"))
    amount = ctx.params.integer("amount")
    if amount is None or amount <= 0:
        raise bad_request("Invalid amount")
    source = ctx.params.integer("fromAccountId", caller) or caller
    target = ctx.params.integer("targetAccountId")
    if target is None:
        raise bad_request("'targetAccountId' is a required arg.")
    family = {a.id for a in await ask(identity.family(caller))}
    if target not in family or not await ask(identity.owns(caller, source)):
        raise bad_request("Invalid account: transfers stay between your own accounts")
    transfer_id = ctx.params.string("transferID") or f"wt-{uuid.uuid4()}"
    if len(transfer_id) > TRANSFER_ID_LENGTH_MAX:
        raise bad_request(f"transferID longer than {TRANSFER_ID_LENGTH_MAX} characters")
    result = await ctx.gw.submit_unshed(
        WalletTransfer(0, source, target, currency, amount, transfer_id)
    )
    for event in result.events:
        if isinstance(event, Rejected):
            raise from_reason(event.reason, event.required, currency, event.cause)
    stamp = iso_ms(result.ts_ns)
    return {
        "transactID": transfer_id,
        "account": source,
        "currency": currency,
        "transactType": "Transfer",
        "amount": -amount,
        "fee": 0,
        "transactStatus": "Completed",
        "address": str(target),
        "tx": "",
        "text": f"Transfer to account {target}",
        "transactTime": stamp,
        "timestamp": stamp,
        "walletBalance": ctx.gw.private.wallet_row(source, currency)["amount"],
    }


SPECS = [
    Spec("/apiKey", "GET", get_api_keys, private=True),
    Spec("/apiKey", "POST", post_api_key, private=True),
    Spec("/apiKey", "DELETE", delete_api_key, private=True),
    Spec("/apiKey/enable", "POST", post_enable, private=True),
    Spec("/apiKey/disable", "POST", post_disable, private=True),
    Spec("/user/addSubaccount", "POST", post_add_subaccount, private=True),
    Spec("/user/updateSubaccount", "POST", post_update_subaccount, private=True),
    Spec("/user/getWalletTransferAccounts", "GET", get_transfer_accounts, private=True),
    Spec("/user/walletTransfer", "POST", post_wallet_transfer, private=True),
]

KEY_DOCS: Final[list[tuple[str, str, str, list[tuple[str, str, bool]]]]] = [
    (
        "/apiKey",
        "post",
        "Create an API key (session only); the secret is answered once. withdraw needs a "
        "current second factor: a TOTP code in token, or a security key assertion in webauthn "
        "(after POST /user/webauthn/confirmOptions).",
        [
            ("name", "string", False),
            ("permissions", "string", False),
            ("cidr", "string", False),
            ("targetAccountId", "integer", False),
            ("enabled", "boolean", False),
            ("token", "string", False),
            ("webauthn", "string", False),
        ],
    ),
    ("/apiKey", "delete", "Delete an API key (session only).", [("apiKeyID", "string", True)]),
    (
        "/apiKey/enable",
        "post",
        "Enable an API key (session only; withdraw keys need token or webauthn).",
        [("apiKeyID", "string", True), ("token", "string", False), ("webauthn", "string", False)],
    ),
    (
        "/apiKey/disable",
        "post",
        "Disable an API key (session only).",
        [("apiKeyID", "string", True)],
    ),
]
