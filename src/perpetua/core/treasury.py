"""Money in and out, and fee settings: deposits, withdrawal holds and their release or
completion, transfers between one owner's accounts, an account's fee tier and staking discount.

Deposits are credited from ``EXTERNAL`` once per ``transfer_id`` (a repeat is rejected with
``TRANSFER_ID_DUPLICATE`` and changes nothing). A withdrawal request moves ``amount + fee`` from
the user into ``WITHDRAWAL_TRANSIT`` if what stays covers the account's margin requirement and its
cross positions' unrealised loss; cancelling moves it back; completing sends ``amount`` to
``EXTERNAL`` and ``fee`` to ``FEES``. Withdrawal lifecycle: Pending -> Canceled | Completed.
A wallet transfer (main account <-> sub-account; the accounts service checks ownership) moves
``amount`` at once under the withdrawal's margin rule, one ledger transfer, so the total is
conserved; its id shares the deposits' idempotency table under the prefix ``wt:``.
A deposit reversal (its block reorganised away) sends the deposit back to ``EXTERNAL`` once,
keyed ``rv:`` + its transfer id: first from what the account could withdraw, the rest from
``INSURANCE`` (user balances never go negative; the exchange bears what was already spent).
"""

from perpetua.core import convert as conversion
from perpetua.core import restrictions
from perpetua.core.catalogue import FEE_TIERS
from perpetua.core.commands import (
    Convert,
    Deposit,
    DepositReverse,
    SetFeeDiscount,
    SetFeeTier,
    WalletTransfer,
    WithdrawalCancel,
    WithdrawalComplete,
    WithdrawalRequest,
)
from perpetua.core.events import DepositCredited, Event, FeeSettingsChanged, WithdrawalUpdated
from perpetua.core.invariant import fail
from perpetua.core.ledger import EXTERNAL, FEES, INSURANCE, WITHDRAWAL_TRANSIT, TransferCode
from perpetua.core.liquidation import AccountView
from perpetua.core.placement import reject
from perpetua.core.reasons import Reason
from perpetua.core.state import State, Withdrawal
from perpetua.core.units import PPM

__all__ = [
    "WITHDRAWAL_TRANSITIONS",
    "convert",
    "deposit",
    "deposit_reverse",
    "set_fee_discount",
    "set_fee_tier",
    "wallet_transfer",
    "withdrawal_cancel",
    "withdrawal_complete",
    "withdrawal_request",
]

WITHDRAWAL_TRANSITIONS: dict[str, frozenset[str]] = {
    "Pending": frozenset({"Canceled", "Completed"}),
    "Canceled": frozenset(),
    "Completed": frozenset(),
}


def _move(withdrawal: Withdrawal, status: str) -> None:
    if status not in WITHDRAWAL_TRANSITIONS[withdrawal.status]:
        fail(f"withdrawal {withdrawal.withdrawal_id}: {withdrawal.status} -> {status}")
    withdrawal.status = status


def deposit(state: State, cmd: Deposit, out: list[Event]) -> None:
    if not state.ledger.has_currency(cmd.currency):
        reject(state, out, "Deposit", cmd.account, Reason.CURRENCY_UNKNOWN)
    elif cmd.amount <= 0 or cmd.account <= 0:
        reject(
            state,
            out,
            "Deposit",
            cmd.account,
            Reason.AMOUNT_MUST_BE_POSITIVE if cmd.amount <= 0 else Reason.ACCOUNT_UNKNOWN,
        )
    elif not cmd.transfer_id or cmd.transfer_id in state.deposits:
        reject(state, out, "Deposit", cmd.account, Reason.TRANSFER_ID_DUPLICATE)
    else:
        state.deposits[cmd.transfer_id] = cmd.account
        state.account(cmd.account)
        state.ledger.transfer(
            out,
            state.ts_ns,
            EXTERNAL,
            cmd.account,
            cmd.currency,
            cmd.amount,
            TransferCode.DEPOSIT,
            0,
        )
        out.append(
            DepositCredited(state.ts_ns, cmd.transfer_id, cmd.account, cmd.currency, cmd.amount)
        )


def deposit_reverse(state: State, cmd: DepositReverse, out: list[Event]) -> None:
    key = "rv:" + cmd.transfer_id
    if not state.ledger.has_currency(cmd.currency):
        reject(state, out, "DepositReverse", cmd.account, Reason.CURRENCY_UNKNOWN)
    elif cmd.amount <= 0:
        reject(state, out, "DepositReverse", cmd.account, Reason.AMOUNT_MUST_BE_POSITIVE)
    elif cmd.account <= 0 or state.deposits.get(cmd.transfer_id) != cmd.account:
        reject(state, out, "DepositReverse", cmd.account, Reason.DEPOSIT_NOT_FOUND)
    elif key in state.deposits:
        reject(state, out, "DepositReverse", cmd.account, Reason.TRANSFER_ID_DUPLICATE)
    else:
        state.deposits[key] = cmd.account
        taken = max(0, min(cmd.amount, _withdrawable(state, cmd.account, cmd.currency)))
        code = TransferCode.DEPOSIT_REVERSAL
        if taken:
            state.ledger.transfer(
                out, state.ts_ns, cmd.account, EXTERNAL, cmd.currency, taken, code, 0
            )
        if cmd.amount > taken:
            state.ledger.transfer(
                out, state.ts_ns, INSURANCE, EXTERNAL, cmd.currency, cmd.amount - taken, code, 0
            )


def withdrawal_request(state: State, cmd: WithdrawalRequest, out: list[Event]) -> None:
    ledger = state.ledger
    if not ledger.has_currency(cmd.currency):
        reject(state, out, "WithdrawalRequest", cmd.account, Reason.CURRENCY_UNKNOWN)
        return
    if cmd.amount <= 0 or cmd.fee < 0:
        reject(state, out, "WithdrawalRequest", cmd.account, Reason.AMOUNT_MUST_BE_POSITIVE)
        return
    if not cmd.withdrawal_id or cmd.withdrawal_id in state.withdrawals:
        reject(state, out, "WithdrawalRequest", cmd.account, Reason.TRANSFER_ID_DUPLICATE)
        return
    total = cmd.amount + cmd.fee
    if _withdrawable(state, cmd.account, cmd.currency) < total:
        reject(
            state,
            out,
            "WithdrawalRequest",
            cmd.account,
            Reason.BALANCE_INSUFFICIENT,
            required=total,
            currency=cmd.currency,
        )
        return
    withdrawal = Withdrawal(cmd.withdrawal_id, cmd.account, cmd.currency, cmd.amount, cmd.fee)
    state.withdrawals[cmd.withdrawal_id] = withdrawal
    ledger.transfer(
        out,
        state.ts_ns,
        cmd.account,
        WITHDRAWAL_TRANSIT,
        cmd.currency,
        total,
        TransferCode.WITHDRAWAL_HOLD,
        0,
    )
    _publish(state, withdrawal, out)


def _withdrawable(state: State, account: int, currency: str) -> int:
    acct = state.accounts.get(account)
    required = 0 if acct is None else acct.margin_required.get(currency, 0)
    # Withdrawable margin (§3 Margin) is net of cross positions' unrealised loss: without it a
    # request could take the margin those positions stand on and liquidate them at once.
    # (An isolated position's loss is within its posMargin, which ``required`` counts.)
    cross_upnl = AccountView(state, account, currency).cross_upnl
    return state.ledger.available(account, currency) - required + min(0, cross_upnl)


def convert(state: State, cmd: Convert, out: list[Event]) -> None:
    """A quoted conversion (core.convert), checked against what the account may withdraw."""
    withdrawable = (
        _withdrawable(state, cmd.account, cmd.from_currency)
        if cmd.account > 0 and state.ledger.has_currency(cmd.from_currency)
        else 0
    )
    if cmd.account <= 0:
        reject(state, out, "Convert", cmd.account, Reason.ACCOUNT_UNKNOWN)
        return
    if not restrictions.check_spot_trade(state, cmd.account, "Convert", out):
        return
    conversion.convert(state, cmd, out, withdrawable)


def wallet_transfer(state: State, cmd: WalletTransfer, out: list[Event]) -> None:
    key = "wt:" + cmd.transfer_id
    if not state.ledger.has_currency(cmd.currency):
        reject(state, out, "WalletTransfer", cmd.account, Reason.CURRENCY_UNKNOWN)
    elif cmd.amount <= 0:
        reject(state, out, "WalletTransfer", cmd.account, Reason.AMOUNT_MUST_BE_POSITIVE)
    elif cmd.account <= 0 or cmd.to_account <= 0 or cmd.account == cmd.to_account:
        reject(state, out, "WalletTransfer", cmd.account, Reason.ACCOUNT_UNKNOWN)
    elif not cmd.transfer_id or key in state.deposits:
        reject(state, out, "WalletTransfer", cmd.account, Reason.TRANSFER_ID_DUPLICATE)
    elif _withdrawable(state, cmd.account, cmd.currency) < cmd.amount:
        reject(
            state,
            out,
            "WalletTransfer",
            cmd.account,
            Reason.BALANCE_INSUFFICIENT,
            required=cmd.amount,
            currency=cmd.currency,
        )
    else:
        state.deposits[key] = cmd.account
        state.account(cmd.to_account)
        state.ledger.transfer(
            out,
            state.ts_ns,
            cmd.account,
            cmd.to_account,
            cmd.currency,
            cmd.amount,
            TransferCode.WALLET_TRANSFER,
            0,
        )


def _publish(state: State, w: Withdrawal, out: list[Event]) -> None:
    out.append(
        WithdrawalUpdated(
            state.ts_ns, w.withdrawal_id, w.account, w.currency, w.amount, w.fee, w.status
        )
    )


def _pending(state: State, withdrawal_id: str, command: str, out: list[Event]) -> Withdrawal | None:
    withdrawal = state.withdrawals.get(withdrawal_id)
    if withdrawal is None:
        reject(state, out, command, 0, Reason.WITHDRAWAL_NOT_FOUND)
        return None
    if withdrawal.status != "Pending":
        reject(state, out, command, withdrawal.account, Reason.WITHDRAWAL_STATE_INVALID)
        return None
    return withdrawal


def withdrawal_cancel(state: State, cmd: WithdrawalCancel, out: list[Event]) -> None:
    w = _pending(state, cmd.withdrawal_id, "WithdrawalCancel", out)
    if w is None:
        return
    _move(w, "Canceled")
    state.ledger.transfer(
        out,
        state.ts_ns,
        WITHDRAWAL_TRANSIT,
        w.account,
        w.currency,
        w.amount + w.fee,
        TransferCode.WITHDRAWAL_RELEASE,
        0,
    )
    _publish(state, w, out)


def withdrawal_complete(state: State, cmd: WithdrawalComplete, out: list[Event]) -> None:
    w = _pending(state, cmd.withdrawal_id, "WithdrawalComplete", out)
    if w is None:
        return
    _move(w, "Completed")
    ledger = state.ledger
    ledger.transfer(
        out,
        state.ts_ns,
        WITHDRAWAL_TRANSIT,
        EXTERNAL,
        w.currency,
        w.amount,
        TransferCode.WITHDRAWAL_COMPLETE,
        0,
    )
    if w.fee:
        ledger.transfer(
            out,
            state.ts_ns,
            WITHDRAWAL_TRANSIT,
            FEES,
            w.currency,
            w.fee,
            TransferCode.WITHDRAWAL_FEE,
            0,
        )
    _publish(state, w, out)


def set_fee_tier(state: State, cmd: SetFeeTier, out: list[Event]) -> None:
    if not 0 <= cmd.tier < len(FEE_TIERS) or cmd.account <= 0:
        reject(state, out, "SetFeeTier", cmd.account, Reason.FEE_TIER_UNKNOWN)
        return
    acct = state.account(cmd.account)
    acct.fee_tier = cmd.tier
    _fee_settings(state, acct.account, out)


def set_fee_discount(state: State, cmd: SetFeeDiscount, out: list[Event]) -> None:
    if not 0 <= cmd.discount_ppm <= PPM or cmd.account <= 0:
        reject(state, out, "SetFeeDiscount", cmd.account, Reason.DISCOUNT_INVALID)
        return
    acct = state.account(cmd.account)
    acct.discount_ppm = cmd.discount_ppm
    _fee_settings(state, acct.account, out)


def _fee_settings(state: State, account: int, out: list[Event]) -> None:
    """Publish the account's tier and effective discount (the larger of the operator's and
    the staking tier's: core.staking)."""
    acct = state.account(account)
    discount = max(acct.discount_ppm, acct.staking_discount_ppm)
    out.append(FeeSettingsChanged(state.ts_ns, account, acct.fee_tier, discount))
