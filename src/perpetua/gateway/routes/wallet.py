"""Deposits and withdrawals on chain (``services.wallets``; docs/wallets.md), BitMEX's routes:

    GET  /user/depositAddress (currency, network)         the account's address: a JSON string
    POST /user/requestWithdrawal (currency, network, amount, address | addressId, otpToken,
         fee, memo, text)                                  -> Transaction (Pending); mails a token
    POST /user/confirmWithdrawal (token)                   the mailed token -> Transaction
    POST /user/cancelWithdrawal (token)                    before signing -> Transaction (Canceled)
    GET  /address, POST /address (currency, network, address, name, note, memo, otpToken)
    POST /address/whitelist (enabled, otpToken)            ours: withdrawals only to saved ones
    GET  /wallet/assets, /wallet/networks                  real status, fees, minimums
and the operator's, under /admin (x-operator-key):
    GET  /admin/wallets                                     networks: switches, hot wallet
    POST /admin/wallets/network (network, deposits, withdrawals)   pause or resume
    GET  /admin/withdrawals (status)                        e.g. status=Approval
    POST /admin/withdrawal/approve (withdrawalId, operator) four-eyes: the second person
    POST /admin/withdrawal/reject (withdrawalId)            releases the hold

Amounts are integers in the currency's minor units (XBt, USDt, Gwei), as on BitMEX. A venue
without a chain answers 400 on the user routes and shows its assets disabled.
"""

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from perpetua.core.units import CURRENCIES
from perpetua.gateway.auth import PERMISSION_WITHDRAW
from perpetua.gateway.context import Context
from perpetua.gateway.errors import ApiError, bad_request
from perpetua.gateway.routes.operator import require_operator
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.tables import TableQuery
from perpetua.services.wallets import (
    DepositRow,
    Request,
    WalletError,
    Wallets,
    WithdrawalRow,
    bitmex_status,
)
from perpetua.services.wallets.addresses import BookEntry
from perpetua.wire.values import JsonRow, iso_ms

__all__ = [
    "SPECS",
    "assets_rows",
    "networks_rows",
    "with_chain_details",
    "withdrawal_transaction",
]

MSG_NO_CHAIN = (
    "Deposits and withdrawals are not available on this venue (no chain configured: "
    "[wallets] chain in the config); test funds come from the operator faucet."
)
_NAMES = {"XBT": "Bitcoin", "USDT": "Tether USD", "ETH": "Ether", "BMEX": "BMEX Token"}
_DEFAULT_NETWORK = {"XBT": "btc", "USDT": "eth", "ETH": "eth", "BMEX": "eth"}
MAX_WITHDRAWAL = 10**15

T = TypeVar("T")


def wallets_of(ctx: Context) -> Wallets:
    if ctx.gw.wallets is None:
        raise ApiError(400, MSG_NO_CHAIN)
    return ctx.gw.wallets


async def call(function: Callable[..., T], *args: Any) -> T:
    """A wallets method in a worker thread (SQL and chain RPC); its refusal as the 4xx."""
    try:
        return await asyncio.to_thread(function, *args)
    except WalletError as error:
        raise ApiError(error.status, error.message, "ValidationError") from None


def currency_of(text: str) -> str:
    for code, currency in CURRENCIES.items():
        if text.lower() in (code.lower(), currency.major.lower()):
            return code
    raise bad_request("Invalid currency")


def withdrawal_transaction(row: WithdrawalRow, wallet_balance: int | None = None) -> JsonRow:
    return {
        "transactID": row.withdrawal_id,
        "account": row.account,
        "currency": row.currency,
        "network": row.network,
        "transactType": "Withdrawal",
        "amount": -(row.amount + row.fee),
        "fee": row.fee,
        "transactStatus": bitmex_status(row.status),
        "state": row.status,  # ours: the venue's own stage, e.g. Approval (waits for an operator)
        "address": row.address,
        "tx": row.tx_hash,
        "text": row.text,
        "transactTime": iso_ms(row.created_ns),
        "timestamp": iso_ms(row.updated_ns),
        "walletBalance": wallet_balance,
    }


def _address_row(entry: BookEntry, user_id: int) -> JsonRow:
    return {
        "id": entry.id,
        "currency": entry.currency,
        "created": iso_ms(entry.created_ns),
        "userId": user_id,
        "address": entry.address,
        "name": entry.name,
        "note": entry.note,
        "skipConfirm": False,
        "skipConfirmVerified": False,
        "skip2FA": False,
        "skip2FAVerified": False,
        "network": entry.network,
        "memo": entry.memo,
    }


def _chain_rows(
    wallets: Wallets, account: int, currency: str | None
) -> tuple[dict[str, WithdrawalRow], dict[str, DepositRow], list[DepositRow]]:
    withdrawals = {w.withdrawal_id: w for w in wallets.withdrawals(account)}
    deposits = wallets.deposits(account)
    credited = {d.transfer_id: d for d in deposits}
    waiting = [
        d
        for d in deposits
        if d.status in ("Pending", "Held", "Refused") and currency in (None, d.currency)
    ]
    return withdrawals, credited, waiting


async def with_chain_details(
    wallets: Wallets,
    account: int,
    currency: str | None,
    rows: list[dict[str, Any]],
    refs: list[str],
    query: TableQuery,
) -> list[JsonRow]:
    """walletHistory rows with their chain details: a withdrawal's network, address, tx and
    BitMEX status (Pending until the emailed token confirms it, Confirmed while it goes out,
    Completed, Canceled), a deposit's network, address and tx; deposits seen on chain and not
    yet credited first, as Pending (on the first page only)."""
    withdrawals, credited, waiting = await asyncio.to_thread(
        _chain_rows, wallets, account, currency
    )
    for row, ref in zip(rows, refs, strict=True):
        w = withdrawals.get(ref)
        if row["transactType"] == "Withdrawal" and w is not None:
            row.update(withdrawal_transaction(w, row["walletBalance"]))
        d = credited.get(ref)
        if row["transactType"] == "Deposit" and d is not None:
            row.update(network=d.network, address=d.address, tx=d.tx)
    if query.start or not waiting:
        return rows
    pending = [
        {
            "transactID": d.id,
            "account": d.account,
            "currency": d.currency,
            "network": d.network,
            "transactType": "Deposit",
            "amount": d.amount,
            "fee": 0,
            "transactStatus": "Pending",
            "address": d.address,
            "tx": d.tx,
            "text": f"{d.status}: waiting for confirmations"
            if d.status == "Pending"
            else f"{d.status}: deposits held",
            "transactTime": iso_ms(d.seen_ns),
            "timestamp": iso_ms(d.updated_ns),
            "walletBalance": None,
            "marginBalance": None,
        }  # fmt: skip
        for d in waiting
    ]
    return pending[::-1] + rows if query.reverse else rows + pending


# --- user routes ------------------------------------------------------------------------------


async def get_deposit_address(ctx: Context) -> str:
    wallets = wallets_of(ctx)
    currency = currency_of(ctx.params.required_string("currency"))
    network = ctx.params.required_string("network").lower()
    return await call(wallets.book.deposit_address, ctx.account, currency, network)


async def post_request_withdrawal(ctx: Context) -> JsonRow:
    wallets = wallets_of(ctx)
    amount = ctx.params.integer("amount")
    if amount is None or not 0 < amount <= MAX_WITHDRAWAL:
        raise bad_request("Invalid amount")
    address_id = ctx.params.integer("addressId")
    address = ctx.params.string("address") or ""
    if not address and address_id is None:
        raise bad_request("address or addressId is required")
    fee = ctx.params.integer("fee")
    request = Request(
        account=ctx.account,
        user_id=ctx.account,
        currency=currency_of(ctx.params.required_string("currency")),
        network=ctx.params.required_string("network").lower(),
        amount=amount,
        address=address.strip(),
        address_id=address_id,
        memo=ctx.params.string("memo") or "",
        fee=fee,
        otp=ctx.params.string("otpToken") or "",
        text=ctx.params.string("text") or "",
    )
    row, _token = await call(wallets.desk.request, request)
    balance = ctx.gw.private.balance(ctx.account, row.currency)
    return withdrawal_transaction(row, balance)


async def post_confirm_withdrawal(ctx: Context) -> JsonRow:
    wallets = wallets_of(ctx)
    row = await call(wallets.desk.confirm, ctx.params.required_string("token"))
    return withdrawal_transaction(row)


async def post_cancel_withdrawal(ctx: Context) -> JsonRow:
    wallets = wallets_of(ctx)
    row = await call(wallets.desk.cancel_by_token, ctx.params.required_string("token"))
    return withdrawal_transaction(row)


async def get_addresses(ctx: Context) -> list[JsonRow]:
    wallets = wallets_of(ctx)
    entries = await call(wallets.book.entries, ctx.account)
    return [_address_row(e, ctx.account) for e in entries]


async def post_address(ctx: Context) -> JsonRow:
    wallets = wallets_of(ctx)
    p = ctx.params
    entry = await call(
        wallets.book.add,
        ctx.account,
        ctx.account,
        currency_of(p.required_string("currency")),
        p.required_string("network").lower(),
        p.required_string("address").strip(),
        p.required_string("name"),
        p.string("note") or "",
        p.string("memo") or "",
        p.string("otpToken") or "",
    )
    return _address_row(entry, ctx.account)


async def post_address_whitelist(ctx: Context) -> JsonRow:
    wallets = wallets_of(ctx)
    enabled = ctx.params.boolean("enabled")
    otp = ctx.params.string("otpToken") or ""
    done = await call(wallets.book.set_whitelist, ctx.account, ctx.account, enabled, otp)
    return {"account": ctx.account, "whitelist": done}


# --- assets and networks ----------------------------------------------------------------------


def assets_rows(wallets: Wallets | None) -> list[JsonRow]:
    rows: list[JsonRow] = []
    for code, currency in CURRENCIES.items():
        networks: list[JsonRow] = []
        minimums: list[tuple[int, int]] = []
        for name, network in (wallets.networks if wallets else {}).items():
            rules = network.rules(code)
            if rules is None:
                continue
            state = wallets.state(name) if wallets else None
            minimums.append((rules.deposit_min, rules.withdrawal_min))
            networks.append(
                {
                    "asset": name,
                    "tokenAddress": rules.asset.token or "",
                    "depositEnabled": bool(state and state.deposits_enabled),
                    "withdrawalEnabled": bool(state and state.withdrawals_enabled),
                    "withdrawalFee": rules.withdrawal_fee,
                    "minFee": rules.withdrawal_fee,
                    "maxFee": rules.withdrawal_fee_max,
                    "depositConfirmations": network.confirmations,
                    "memoRequired": network.memo_required,
                }
            )
        if not networks:
            networks.append(
                {
                    "asset": _DEFAULT_NETWORK.get(currency.major, "eth"),
                    "tokenAddress": "",
                    "depositEnabled": False,
                    "withdrawalEnabled": False,
                    "withdrawalFee": 0,
                    "minFee": 0,
                    "maxFee": 0,
                }
            )
        rows.append(
            {
                "asset": currency.major,
                "currency": code,
                "majorCurrency": currency.major,
                "name": _NAMES.get(currency.major, currency.major),
                "currencyType": "Crypto",
                "scale": currency.scale,
                "enabled": True,
                "isMarginCurrency": code in ("XBt", "USDt"),
                "minDepositAmount": min((m[0] for m in minimums), default=0),
                "minWithdrawalAmount": min((m[1] for m in minimums), default=0),
                "maxWithdrawalAmount": MAX_WITHDRAWAL,
                "memoRequired": any(n.get("memoRequired", False) for n in networks),
                "networks": networks,
            }
        )
    return rows


def networks_rows(wallets: Wallets | None) -> list[JsonRow]:
    if wallets is None:
        return [
            {
                "asset": n,
                "tokenAddress": "",
                "network": n,
                "name": n.upper(),
                "currency": n.upper(),
                "networkSymbol": n.upper(),
                "transactionExplorer": "",
                "tokenExplorer": "",
                "depositConfirmations": 1,
                "enabled": False,
            }  # fmt: skip
            for n in sorted(set(_DEFAULT_NETWORK.values()))
        ]
    rows: list[JsonRow] = []
    for name, network in wallets.networks.items():
        state = wallets.state(name)
        rows.append(
            {
                "asset": name,
                "tokenAddress": "",
                "network": name,
                "name": network.title,
                "currency": network.symbol,
                "networkSymbol": network.symbol,
                "transactionExplorer": network.explorer_tx,
                "tokenExplorer": "",
                "depositConfirmations": network.confirmations,
                "enabled": state.deposits_enabled or state.withdrawals_enabled,
                "depositEnabled": state.deposits_enabled,
                "withdrawalEnabled": state.withdrawals_enabled,
            }
        )
    return rows


async def get_assets(ctx: Context) -> list[JsonRow]:
    return await asyncio.to_thread(assets_rows, ctx.gw.wallets)


async def get_networks(ctx: Context) -> list[JsonRow]:
    return await asyncio.to_thread(networks_rows, ctx.gw.wallets)


# --- operator ---------------------------------------------------------------------------------


def _admin_view(wallets: Wallets) -> list[JsonRow]:
    rows: list[JsonRow] = []
    for name, network in wallets.networks.items():
        state = wallets.state(name)
        signer = wallets.signers.get(name)
        hot = signer.hot_address if signer else ""
        rows.append(
            {
                "network": name,
                "depositsEnabled": state.deposits_enabled,
                "withdrawalsEnabled": state.withdrawals_enabled,
                "confirmations": network.confirmations,
                "hotAddress": hot,
                "hotBalances": {c: signer.balance(c, hot) for c in network.assets}
                if signer
                else {},
                "coldAddress": wallets.cold_addresses.get(name, ""),
            }
        )
    return rows


async def get_admin_wallets(ctx: Context) -> list[JsonRow]:
    require_operator(ctx)
    return await call(_admin_view, wallets_of(ctx))


async def post_admin_network(ctx: Context) -> JsonRow:
    require_operator(ctx)
    wallets = wallets_of(ctx)
    p = ctx.params
    deposits = p.boolean("deposits") if p.has("deposits") else None
    withdrawals = p.boolean("withdrawals") if p.has("withdrawals") else None
    network = p.required_string("network").lower()
    state = await call(wallets.set_state, network, deposits, withdrawals)
    return {
        "network": network,
        "depositsEnabled": state.deposits_enabled,
        "withdrawalsEnabled": state.withdrawals_enabled,
    }


async def get_admin_withdrawals(ctx: Context) -> list[JsonRow]:
    require_operator(ctx)
    wallets = wallets_of(ctx)
    rows = await call(wallets.desk.rows, None, ctx.params.string("status"))
    return [withdrawal_transaction(r) for r in rows]


async def post_admin_approve(ctx: Context) -> JsonRow:
    require_operator(ctx)
    wallets = wallets_of(ctx)
    row = await call(
        wallets.desk.approve,
        ctx.params.required_string("withdrawalId"),
        ctx.params.required_string("operator"),
    )
    return withdrawal_transaction(row)


async def post_admin_reject(ctx: Context) -> JsonRow:
    require_operator(ctx)
    wallets = wallets_of(ctx)
    row = await call(wallets.desk.cancel, ctx.params.required_string("withdrawalId"), None)
    return withdrawal_transaction(row)


SPECS = [
    Spec("/user/depositAddress", "GET", get_deposit_address, private=True),
    Spec(
        "/user/requestWithdrawal",
        "POST",
        post_request_withdrawal,
        private=True,
        permission=PERMISSION_WITHDRAW,
    ),
    Spec("/user/confirmWithdrawal", "POST", post_confirm_withdrawal),
    Spec("/user/cancelWithdrawal", "POST", post_cancel_withdrawal),
    Spec("/address", "GET", get_addresses, private=True),
    Spec("/address", "POST", post_address, private=True, permission=PERMISSION_WITHDRAW),
    Spec(
        "/address/whitelist",
        "POST",
        post_address_whitelist,
        private=True,
        permission=PERMISSION_WITHDRAW,
    ),
    Spec("/wallet/assets", "GET", get_assets),
    Spec("/wallet/networks", "GET", get_networks),
    Spec("/admin/wallets", "GET", get_admin_wallets),
    Spec("/admin/wallets/network", "POST", post_admin_network),
    Spec("/admin/withdrawals", "GET", get_admin_withdrawals),
    Spec("/admin/withdrawal/approve", "POST", post_admin_approve),
    Spec("/admin/withdrawal/reject", "POST", post_admin_reject),
]
