"""Withdrawals from request to hand-over to the signer (``sender`` takes them on chain).

Lifecycle (``TRANSITIONS``; a move not in it is a programmer error):

    Requested -> Pending | Rejected          the core's WithdrawalRequest holds amount + fee
    Pending -> Confirmed | Canceling         the emailed token confirms within TOKEN_TTL_NS
    Confirmed -> Approval | Queued           at or above the asset's threshold: four-eyes
    Approval -> Queued | Canceling           an operator approves or rejects
    Queued -> Signed | Canceling             the sender signs and records the bytes
    Canceling -> Canceled                    the core released the hold
    Signed -> Broadcast                      (sender)
    Broadcast -> Completed | Failed          (sender: confirmations, or a failed/dropped tx)

Checks at request, in this order, each a 4xx that moves nothing: network and asset known and
withdrawals enabled; the address (saved entry by ``addressId``, or a valid address for the
network; whitelist mode: only saved entries; a saved entry only after its 24 h lock); amount at
least the minimum; fee (default the network fee, at most ``withdrawal_fee_max``); the policy
(restrictions, sanctions); the rolling 24 h limit; the second factor (a current TOTP code,
consumed). Then the row is written as ``Requested`` and the core holds the money (it refuses
when it would take margin that positions or orders use): refused -> ``Rejected``.

Cancelling takes the row first (``Canceling``, so the sender can no longer sign it), then asks
the core to release the hold, then marks it ``Canceled``.

Crash safety (``recover`` at start): a row left ``Requested`` (the process died between the row
and the core's answer) is settled by ``WithdrawalCancel`` (a hold that did happen is released;
none: the core says "not found") and marked ``Canceled``: the request never answered, so nothing
is lost. A row left ``Canceling`` is released the same way.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, insert, select, update

from perpetua.core.commands import WithdrawalCancel, WithdrawalRequest
from perpetua.core.events import Rejected
from perpetua.core.reasons import CAUSE_TEXT, HTTP_STATUS, MESSAGES, RESTRICTION_REASONS, Reason
from perpetua.services.wallets.addresses import AddressBook
from perpetua.services.wallets.errors import WalletError
from perpetua.services.wallets.failpoints import crash_point
from perpetua.services.wallets.networks import AssetRules, Network
from perpetua.services.wallets.policy import WithdrawalPolicy
from perpetua.services.wallets.ports import Clock, Submit, Verifier, refusal, rejection
from perpetua.store.schema import chain_withdrawals

__all__ = [
    "CANCELABLE",
    "TOKEN_TTL_NS",
    "TRANSITIONS",
    "WithdrawalDesk",
    "WithdrawalRow",
    "bitmex_status",
]

TOKEN_TTL_NS = 30 * 60 * 10**9
DAY_NS = 24 * 3600 * 10**9
TEXT_LENGTH_MAX = 200

TRANSITIONS: dict[str, frozenset[str]] = {
    "Requested": frozenset({"Pending", "Rejected", "Canceled"}),
    "Pending": frozenset({"Confirmed", "Canceling"}),
    "Confirmed": frozenset({"Approval", "Queued", "Canceling"}),
    "Approval": frozenset({"Queued", "Canceling"}),
    "Queued": frozenset({"Signed", "Canceling"}),
    "Canceling": frozenset({"Canceled"}),
    "Signed": frozenset({"Broadcast"}),
    "Broadcast": frozenset({"Completed", "Failed"}),
    "Completed": frozenset(),
    "Canceled": frozenset(),
    "Rejected": frozenset(),
    "Failed": frozenset(),
}
CANCELABLE = frozenset({"Pending", "Confirmed", "Approval", "Queued"})
NOT_COUNTED = ("Rejected", "Canceling", "Canceled", "Failed")  # toward the daily limit

# BitMEX's transactStatus for each state (ccxt reads Pending/Confirmed as pending).
_BITMEX_STATUS = {
    "Requested": "Pending",
    "Pending": "Pending",
    "Confirmed": "Confirmed",
    "Approval": "Confirmed",
    "Queued": "Confirmed",
    "Signed": "Confirmed",
    "Broadcast": "Confirmed",
    "Completed": "Completed",
    "Canceling": "Canceled",
    "Canceled": "Canceled",
    "Rejected": "Canceled",
    "Failed": "Canceled",
}


def bitmex_status(status: str) -> str:
    return _BITMEX_STATUS[status]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class WithdrawalRow:
    withdrawal_id: str
    account: int
    network: str
    currency: str
    amount: int
    fee: int
    address: str
    memo: str
    text: str
    status: str
    tx_hash: str
    created_ns: int
    updated_ns: int


def row_of(r: Any) -> WithdrawalRow:
    return WithdrawalRow(
        r.withdrawal_id,
        int(r.account),
        r.network,
        r.currency,
        int(r.amount),
        int(r.fee),
        r.address,
        r.memo,
        r.text,
        r.status,
        r.tx_hash or "",
        int(r.created_ns),
        int(r.updated_ns),
    )


def move(engine: Engine, withdrawal_id: str, old: str, new: str, **values: object) -> bool:
    """``old`` -> ``new`` if the row is still ``old``; False when another actor moved it."""
    if new not in TRANSITIONS[old]:
        raise AssertionError(f"withdrawal {withdrawal_id}: {old} -> {new} is not a transition")
    with engine.begin() as conn:
        done = conn.execute(
            update(chain_withdrawals)
            .where(
                chain_withdrawals.c.withdrawal_id == withdrawal_id,
                chain_withdrawals.c.status == old,
            )
            .values(status=new, **values)
        ).rowcount
    return bool(done)


@dataclass(frozen=True, slots=True)
class Request:
    account: int
    user_id: int
    currency: str
    network: str
    amount: int
    address: str
    address_id: int | None
    memo: str
    fee: int | None
    otp: str
    text: str


class WithdrawalDesk:
    def __init__(
        self,
        engine: Engine,
        networks: dict[str, Network],
        book: AddressBook,
        policy: WithdrawalPolicy,
        verifier: Verifier,
        submit: Submit,
        withdrawals_enabled: Any,
        clock_ns: Clock,
    ) -> None:
        self.engine = engine
        self.networks = networks
        self.book = book
        self.policy = policy
        self.verifier = verifier
        self.submit = submit
        self.withdrawals_enabled = withdrawals_enabled
        self.clock_ns = clock_ns

    # -- request ---------------------------------------------------------------------------

    def _rules(self, req: Request) -> AssetRules:
        net = self.networks.get(req.network)
        rules = None if net is None else net.rules(req.currency)
        if net is None or rules is None:
            raise WalletError(400, f"{req.currency} cannot be withdrawn on network {req.network!r}")
        if not self.withdrawals_enabled(req.network):
            raise WalletError(400, f"Withdrawals on network {req.network} are paused")
        return rules

    def _address(self, req: Request, now: int) -> tuple[str, str]:
        if req.address_id is not None:
            entry = self.book.entry(req.account, req.address_id)
            if entry is None:
                raise WalletError(400, "Unknown addressId")
            if entry.network != req.network or entry.currency != req.currency:
                raise WalletError(400, "The saved address is for another currency or network")
            if req.memo and req.memo != entry.memo:
                raise WalletError(400, "The memo comes from the saved address: leave it empty")
        else:
            self.book.validate(req.currency, req.network, req.address, req.memo)
            entry = self.book.find(req.account, req.network, req.address)
            if entry is None and self.book.whitelist(req.account):
                raise WalletError(400, "Whitelist mode: withdraw only to a saved address")
        if entry is None:
            return req.address, req.memo
        if now < entry.usable_ns:
            raise WalletError(400, "This saved address can be used 24 hours after it was added")
        return entry.address, entry.memo

    def _fee(self, req: Request, rules: AssetRules) -> int:
        if req.fee is None:
            return rules.withdrawal_fee
        if not rules.withdrawal_fee <= req.fee <= rules.withdrawal_fee_max:
            raise WalletError(
                400, f"fee must be {rules.withdrawal_fee}..{rules.withdrawal_fee_max}"
            )
        return req.fee

    def _within_limit(self, req: Request, now: int) -> None:
        with self.engine.connect() as conn:
            used = conn.execute(
                select(func.coalesce(func.sum(chain_withdrawals.c.amount), 0)).where(
                    chain_withdrawals.c.account == req.account,
                    chain_withdrawals.c.currency == req.currency,
                    chain_withdrawals.c.created_ns > now - DAY_NS,
                    chain_withdrawals.c.status.not_in(NOT_COUNTED),
                )
            ).scalar_one()
        if int(used) + req.amount > self.policy.daily_limit(req.account, req.currency):
            raise WalletError(400, "Amount above your 24-hour withdrawal limit")

    def request(self, req: Request) -> tuple[WithdrawalRow, str]:
        """Checks, holds and mails the confirmation token; (row, token)."""
        now = self.clock_ns()
        rules = self._rules(req)
        address, memo = self._address(req, now)
        if req.amount < rules.withdrawal_min:
            raise WalletError(400, f"Amount below the minimum withdrawal {rules.withdrawal_min}")
        fee = self._fee(req, rules)
        verdict = self.policy.check(req.account, req.currency, req.network, address, req.amount)
        if not verdict.allowed:
            raise WalletError(403, verdict.reason or "Withdrawal not allowed")
        self._within_limit(req, now)
        if len(req.text) > TEXT_LENGTH_MAX:
            raise WalletError(400, f"text is at most {TEXT_LENGTH_MAX} characters")
        if not self.verifier.second_factor_ok(req.user_id, req.otp):
            raise WalletError(401, "Invalid or missing two-factor code (otpToken)")
        withdrawal_id = str(uuid.uuid4())
        token = secrets.token_urlsafe(24)
        with self.engine.begin() as conn:
            conn.execute(
                insert(chain_withdrawals).values(
                    withdrawal_id=withdrawal_id,
                    account=req.account,
                    network=req.network,
                    currency=req.currency,
                    amount=req.amount,
                    fee=fee,
                    address=address,
                    memo=memo,
                    text=req.text,
                    status="Requested",
                    token_digest=token_digest(token),
                    token_expires_ns=now + TOKEN_TTL_NS,
                    approved_by="",
                    created_ns=now,
                    updated_ns=now,
                )
            )
        crash_point("withdrawal.requested")
        command = WithdrawalRequest(0, req.account, req.currency, req.amount, fee, withdrawal_id)
        refused = refusal(self.submit(command))
        crash_point("withdrawal.held")
        if refused is not None:
            move(self.engine, withdrawal_id, "Requested", "Rejected", updated_ns=self.clock_ns())
            raise _refused(refused)
        move(self.engine, withdrawal_id, "Requested", "Pending", updated_ns=self.clock_ns())
        self.verifier.send_notice(
            req.user_id,
            "confirm your withdrawal",
            f"Confirm the withdrawal of {req.amount} {req.currency} (fee {fee}) to {address} "
            f"on {req.network} with this token (valid 30 minutes):\n\ntoken: {token}\n\n"
            "If this was not you, cancel it with the same token and change your password.",
        )
        found = self.get(withdrawal_id)
        if found is None:
            raise WalletError(500, "withdrawal lost")
        return found, token

    # -- confirm, cancel, approve ---------------------------------------------------------

    def get(self, withdrawal_id: str) -> WithdrawalRow | None:
        with self.engine.connect() as conn:
            r = conn.execute(
                select(chain_withdrawals).where(chain_withdrawals.c.withdrawal_id == withdrawal_id)
            ).first()
        return None if r is None else row_of(r)

    def _by_token(self, token: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(
                select(chain_withdrawals).where(
                    chain_withdrawals.c.token_digest == token_digest(token or "")
                )
            ).first()

    def confirm(self, token: str) -> WithdrawalRow:
        r = self._by_token(token)
        if r is None or r.status != "Pending":
            raise WalletError(400, "Invalid or already used confirmation token")
        now = self.clock_ns()
        if now > int(r.token_expires_ns):
            raise WalletError(400, "Confirmation token expired: cancel and request again")
        if not move(self.engine, r.withdrawal_id, "Pending", "Confirmed", updated_ns=now):
            raise WalletError(400, "Invalid or already used confirmation token")
        rules = self.networks[r.network].rules(r.currency)
        needs_approval = rules is not None and int(r.amount) >= rules.approval_threshold
        move(
            self.engine,
            r.withdrawal_id,
            "Confirmed",
            "Approval" if needs_approval else "Queued",
            updated_ns=now,
        )
        found = self.get(r.withdrawal_id)
        assert found is not None
        return found

    def cancel_by_token(self, token: str) -> WithdrawalRow:
        r = self._by_token(token)
        if r is None:
            raise WalletError(400, "Invalid token")
        return self.cancel(r.withdrawal_id, int(r.account))

    def cancel(self, withdrawal_id: str, account: int | None) -> WithdrawalRow:
        """Release the hold while the withdrawal has not been signed (``account`` None: the
        operator)."""
        row = self.get(withdrawal_id)
        if row is None or (account is not None and row.account != account):
            raise WalletError(404, "Withdrawal not found")
        if row.status not in CANCELABLE or not move(
            self.engine, withdrawal_id, row.status, "Canceling", updated_ns=self.clock_ns()
        ):
            raise WalletError(400, f"A withdrawal in state {row.status} cannot be canceled")
        self._release(withdrawal_id, "Canceling")
        found = self.get(withdrawal_id)
        assert found is not None
        return found

    def approve(self, withdrawal_id: str, operator: str) -> WithdrawalRow:
        if not operator.strip():
            raise WalletError(400, "operator (who approves) is required")
        row = self.get(withdrawal_id)
        if row is None:
            raise WalletError(404, "Withdrawal not found")
        if row.status != "Approval" or not move(
            self.engine,
            withdrawal_id,
            "Approval",
            "Queued",
            approved_by=operator.strip()[:64],
            updated_ns=self.clock_ns(),
        ):
            raise WalletError(400, f"A withdrawal in state {row.status} needs no approval")
        found = self.get(withdrawal_id)
        assert found is not None
        return found

    def rows(self, account: int | None = None, status: str | None = None) -> list[WithdrawalRow]:
        query = select(chain_withdrawals).order_by(chain_withdrawals.c.created_ns)
        if account is not None:
            query = query.where(chain_withdrawals.c.account == account)
        if status is not None:
            query = query.where(chain_withdrawals.c.status == status)
        with self.engine.connect() as conn:
            return [row_of(r) for r in conn.execute(query).all()]

    def _release(self, withdrawal_id: str, status: str) -> None:
        reason = rejection(self.submit(WithdrawalCancel(0, withdrawal_id)))
        if reason not in (None, Reason.WITHDRAWAL_NOT_FOUND, Reason.WITHDRAWAL_STATE_INVALID):
            raise RuntimeError(f"cannot release {withdrawal_id}: {reason!r}")
        move(self.engine, withdrawal_id, status, "Canceled", updated_ns=self.clock_ns())

    def recover(self, older_than_ns: int | None = None) -> int:
        """Settle rows a crash left ``Requested`` or ``Canceling`` (module docstring).
        ``older_than_ns``: only rows last updated at least that long ago (cluster mode: a
        gateway's request in flight is ``Requested`` for a moment, and must not be settled
        under it); None: every such row (at start, when nothing is in flight)."""
        stuck = self.rows(status="Requested") + self.rows(status="Canceling")
        if older_than_ns is not None:
            before = self.clock_ns() - older_than_ns
            stuck = [row for row in stuck if row.updated_ns <= before]
        for row in stuck:
            self._release(row.withdrawal_id, row.status)
        return len(stuck)


def _refused(event: Rejected) -> WalletError:
    """The core's refusal of the hold as the user sees it: an account restriction is 403 and
    says what the account may do and why (as every other route does), the rest 400."""
    reason = Reason(event.reason)
    message = _reason_text(reason)
    if reason in RESTRICTION_REASONS:
        message = f"{message} (reason: {CAUSE_TEXT.get(event.cause, CAUSE_TEXT[0])})"
    return WalletError(HTTP_STATUS.get(reason, 400), message)


def _reason_text(reason: Reason | None) -> str:
    if reason is None:
        return "Refused"
    if reason == Reason.BALANCE_INSUFFICIENT:
        return "Insufficient available balance (margin used by positions and orders is kept)"
    return MESSAGES.get(reason, reason.name)
