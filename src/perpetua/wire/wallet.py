"""Wallets and wallet history folded from ledger events: the one fold of BitMEX's ``wallet``
and ``walletHistory``/``transact`` models, kept by the read models (``store.wallet_book``) and
the gateway's live views (``gateway.private``) alike, so REST and WebSocket give the same rows
for the same facts.

``WalletTotals``, one account's wallet in one currency:

1. ``amount`` is the ledger balance: every ``Transfer`` moves it, on both sides.
2. The totals BitMEX shows beside it are counted by transfer code: ``deposited`` (DEPOSIT
   credits), ``transfer_in``/``transfer_out`` (WALLET_TRANSFER), ``pending_debit`` (a withdrawal's
   hold until it completes or is released), ``withdrawn`` (completed withdrawals, fee included).
3. A completed withdrawal moves nothing in the ledger (the hold already did): it turns its
   pending debit into ``withdrawn`` (``withdrawal_completed``).
4. ``pending_credit`` and ``confirmed_debit`` are zero until the wallets count unconfirmed
   deposits and confirmed withdrawals.

``WalletFold``, the wallets and the wallet history rows (``TransactRow``), for user accounts
only. ``amount`` is the row's whole signed effect on the wallet, fees included, and ``fee`` only
says how much of it was fee; so each row's ``wallet_balance`` is the previous row's plus its
``amount`` (rows in ``transact_id`` order, per account and currency; a canceled withdrawal
excepted, see below). Per kind of money:

* ``Deposit``: one row per ``DepositCredited`` (ref = its transfer id), status Completed.
* ``Withdrawal``: one row per withdrawal id, made at the request (status Pending, amount =
  -(amount + fee), wallet_balance after the hold) and updated in place to Completed or
  Canceled; ``transact_ts_ns`` stays the request's time and ``timestamp_ns`` becomes the
  completion's (BitMEX: transactTime is submission, timestamp is processing). A canceled
  withdrawal's money came back by a release transfer that has no row of its own, so the
  running balance skips canceled rows.
* ``RealisedPNL``: one row per account, currency and execution (ref = trdMatchID) summing the
  realised PnL, fee and rebate transfers of that fill; fee = fee paid minus rebate received.
  Funding and settlement transfers (codes FUNDING, SETTLEMENT) land here too, one row per
  their ``ref``. This is per execution rather than BitMEX's one row per day: the running
  balance stays exact and a trader can reconcile every fill (decisions §6).
* ``SpotTrade``: one row per account, currency and spot fill (SPOT_BASE, SPOT_QUOTE, and the fee
  or rebate of a spot match): amount = the net change of that currency, fee as above.
* ``Transfer``: any other code that touches a user account, one row per (code, ref).

``text`` is the symbol of the match a transfer's ref names (empty otherwise).
``transact_id`` = ``seq << TRANSACT_INDEX_BITS | n`` for the command's n-th new row (n from 0):
unique, increasing, and the same on every replay.
"""

from collections.abc import Callable, Container, Mapping, Sequence
from typing import Any

from perpetua.core.events import DepositCredited, Event, Trade, Transfer, WithdrawalUpdated
from perpetua.core.ledger import TransferCode

__all__ = [
    "TRANSACT_FIELDS",
    "TRANSACT_INDEX_BITS",
    "TRANSACT_TYPES",
    "WALLET_FIELDS",
    "TransactChange",
    "TransactRow",
    "WalletFold",
    "WalletTotals",
]

TRANSACT_INDEX_BITS = 20  # rows per command < 2**20 (the core bounds levels walked per order)
TRANSACT_TYPES = ("Deposit", "Withdrawal", "RealisedPNL", "SpotTrade", "Transfer")

WALLET_FIELDS = (
    "account",
    "currency",
    "amount",
    "deposited",
    "withdrawn",
    "transfer_in",
    "transfer_out",
    "pending_credit",
    "pending_debit",
    "confirmed_debit",
    "timestamp_ns",
)


class WalletTotals:
    """The ``wallets`` read model's row for (account, currency), as it folds."""

    __slots__ = WALLET_FIELDS

    def __init__(
        self,
        account: int,
        currency: str,
        amount: int = 0,
        deposited: int = 0,
        withdrawn: int = 0,
        transfer_in: int = 0,
        transfer_out: int = 0,
        pending_credit: int = 0,
        pending_debit: int = 0,
        confirmed_debit: int = 0,
        timestamp_ns: int = 0,
    ) -> None:
        self.account = account
        self.currency = currency
        self.amount = amount
        self.deposited = deposited
        self.withdrawn = withdrawn
        self.transfer_in = transfer_in
        self.transfer_out = transfer_out
        self.pending_credit = pending_credit
        self.pending_debit = pending_debit
        self.confirmed_debit = confirmed_debit
        self.timestamp_ns = timestamp_ns

    def on_transfer(self, code: int, amount: int, credited: bool, ts_ns: int) -> None:
        """This wallet's side of one ledger transfer (``credited``: money came in) (1, 2)."""
        if credited:
            self.amount += amount
            if code == TransferCode.DEPOSIT:
                self.deposited += amount
            elif code == TransferCode.WITHDRAWAL_RELEASE:
                self.pending_debit -= amount
            elif code == TransferCode.WALLET_TRANSFER:
                self.transfer_in += amount
        else:
            self.amount -= amount
            if code == TransferCode.WITHDRAWAL_HOLD:
                self.pending_debit += amount
            elif code == TransferCode.WALLET_TRANSFER:
                self.transfer_out += amount
        self.timestamp_ns = ts_ns

    def withdrawal_completed(self, amount_with_fee: int, ts_ns: int) -> None:
        """A withdrawal (amount plus fee) left the venue (3)."""
        self.pending_debit -= amount_with_fee
        self.withdrawn += amount_with_fee
        self.timestamp_ns = ts_ns

    def row(self) -> dict[str, object]:
        """The ``wallets`` table's row (snake case, as stored)."""
        return {name: getattr(self, name) for name in WALLET_FIELDS}


TRANSACT_FIELDS = (
    "transact_id",
    "account",
    "currency",
    "transact_type",
    "transact_status",
    "amount",
    "fee",
    "wallet_balance",
    "ref",
    "network",
    "address",
    "tx",
    "text",
    "transact_ts_ns",
    "timestamp_ns",
    "seq",
)

_PNL_CODES = frozenset({TransferCode.REALISED_PNL, TransferCode.FUNDING, TransferCode.SETTLEMENT})
_FEE_CODES = frozenset({TransferCode.TRADE_FEE, TransferCode.TRADE_REBATE})
_SPOT_CODES = frozenset({TransferCode.SPOT_BASE, TransferCode.SPOT_QUOTE})
# Codes whose user-side rows come from lifecycle events (DepositCredited, WithdrawalUpdated).
_LIFECYCLE_CODES = frozenset(
    {TransferCode.DEPOSIT, TransferCode.WITHDRAWAL_HOLD, TransferCode.WITHDRAWAL_RELEASE}
)


class TransactRow:
    """One ``transactions`` row (snake case, as stored), complete once its command has folded."""

    __slots__ = TRANSACT_FIELDS

    def __init__(
        self, transact_id: int, seq: int, ts_ns: int, account: int, currency: str, kind: str,
        status: str, ref: str, text: str,
    ) -> None:  # fmt: skip
        self.transact_id = transact_id
        self.account = account
        self.currency = currency
        self.transact_type = kind
        self.transact_status = status
        self.amount = 0
        self.fee = 0
        self.wallet_balance = 0
        self.ref = ref
        self.network = ""
        self.address = ""
        self.tx = ""
        self.text = text
        self.transact_ts_ns = ts_ns
        self.timestamp_ns = ts_ns
        self.seq = seq

    @classmethod
    def of(cls, stored: Mapping[Any, Any]) -> "TransactRow":
        """A row read back (the ``transactions`` columns by name)."""
        row = cls(
            stored["transact_id"], stored["seq"], stored["transact_ts_ns"], stored["account"],
            stored["currency"], stored["transact_type"], stored["transact_status"],
            stored["ref"], stored["text"],
        )  # fmt: skip
        row.amount = stored["amount"]
        row.fee = stored["fee"]
        row.wallet_balance = stored["wallet_balance"]
        row.network = stored["network"]
        row.address = stored["address"]
        row.tx = stored["tx"]
        row.timestamp_ns = stored["timestamp_ns"]
        return row

    def columns(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in TRANSACT_FIELDS}


class TransactChange:
    """A row made (``insert``) or changed in place (``update``: a withdrawal's status)."""

    __slots__ = ("action", "row")

    def __init__(self, action: str, row: TransactRow) -> None:
        self.action = action
        self.row = row


class WalletFold:
    """Balances (through ``wallet``, which the owner keeps: SQL-backed or in memory) and the
    wallet history rows of the commands folded: ``begin_command`` before each command's events,
    the ``on_*`` methods per event, ``take_changes`` when the owner writes or sends them.

    ``pending`` maps a withdrawal id to its Pending row until the withdrawal ends; a withdrawal
    whose row is not held (requested before the owner started, or written already) ends up in
    ``unmatched`` for the owner to apply to its stored row.

    ``deferred``: the rows of a command are made only when ``finish_command`` is told that one
    of its accounts wants them (the gateway's WebSocket subscribers), or when it requests a
    withdrawal (whose row a later completion updates); balances fold at once either way. The
    money events are kept in order with the balances after each, so the rows made late are the
    rows made at once: same ids, amounts and balances."""

    def __init__(self, wallet: Callable[[int, str], WalletTotals], deferred: bool = False) -> None:
        self.wallet = wallet
        self.deferred = deferred
        # the command's money events with the balances after each: (event, debit or the
        # account's balance, credit balance or 0); kept when ``deferred``
        self._money: list[tuple[Transfer | DepositCredited | WithdrawalUpdated, int, int]] = []
        self._withdrawal_in_command = False
        self.pending: dict[str, TransactRow] = {}
        self.unmatched: list[WithdrawalUpdated] = []
        self.changes: list[TransactChange] = []  # since the last ``take_changes``
        self._open: dict[tuple[int, str, str, str], TransactRow] = {}
        self._seq = 0
        self._rows_in_command = 0
        self._events: Sequence[Event] = ()
        self._matches: dict[int, str] | None = None
        self._spot_symbols: frozenset[str] = frozenset()

    def begin_command(
        self, seq: int, events: Sequence[Event], spot_symbols: frozenset[str]
    ) -> None:
        """Rows of one fill never span commands: close the per-fill aggregation. (Every
        command passes here: the work waits for the command's first row.)"""
        self._seq = seq
        self._rows_in_command = 0
        self._events = events
        self._matches = None  # the command's matches, read on its first transfer
        self._spot_symbols = spot_symbols
        if self._open:
            self._open.clear()

    def finish_command(self, rows_for: Container[int]) -> None:
        """(``deferred``) Make the command's rows if one of its accounts is in ``rows_for``
        or it requested a withdrawal; else forget its money events."""
        money = self._money
        if not money:
            return
        if self._withdrawal_in_command or any(_names_one_of(item[0], rows_for) for item in money):
            for event, first, second in money:
                if type(event) is Transfer:
                    self._transfer_rows(event, first, second)
                elif type(event) is DepositCredited:
                    self._deposit_row(event, first)
                elif type(event) is WithdrawalUpdated:
                    self._withdrawal_row(event, first)
        money.clear()
        self._withdrawal_in_command = False

    def take_changes(self) -> list[TransactChange]:
        changes, self.changes = self.changes, []
        return changes

    def reset(self) -> None:
        """Forget what is pending (after the owner's write failed)."""
        self.pending.clear()
        self.unmatched.clear()
        self.changes.clear()
        self._open.clear()
        self._money.clear()
        self._withdrawal_in_command = False

    def _match_symbols(self) -> dict[int, str]:
        matches = self._matches
        if matches is None:
            matches = self._matches = {
                ev.trd_match_id: ev.symbol for ev in self._events if type(ev) is Trade
            }
        return matches

    def _new_row(
        self, ts_ns: int, account: int, currency: str, kind: str, status: str, ref: str, text: str
    ) -> TransactRow:
        if self._rows_in_command >= 1 << TRANSACT_INDEX_BITS:
            raise ValueError(f"seq {self._seq}: more wallet rows than transact ids")
        transact_id = (self._seq << TRANSACT_INDEX_BITS) | self._rows_in_command
        self._rows_in_command += 1
        row = TransactRow(transact_id, self._seq, ts_ns, account, currency, kind, status, ref, text)
        self.changes.append(TransactChange("insert", row))
        return row

    def on_transfer(self, ev: Transfer) -> tuple[WalletTotals, WalletTotals]:
        """Both sides of ``ev`` moved, and its user sides in the history; (debit, credit)."""
        code = ev.code  # a TransferCode (an int): compared, never converted on this hot path
        debit = self.wallet(ev.debit_account, ev.currency)
        credit = self.wallet(ev.credit_account, ev.currency)
        debit.on_transfer(code, ev.amount, False, ev.ts_ns)
        credit.on_transfer(code, ev.amount, True, ev.ts_ns)
        if code not in _LIFECYCLE_CODES and (debit.account > 0 or credit.account > 0):
            if self.deferred:
                self._money.append((ev, debit.amount, credit.amount))
            else:
                self._transfer_rows(ev, debit.amount, credit.amount)
        return debit, credit

    def _transfer_rows(self, ev: Transfer, debit_balance: int, credit_balance: int) -> None:
        code = ev.code
        if ev.debit_account > 0:
            self._history(ev, code, ev.debit_account, debit_balance, -1)
        if ev.credit_account > 0:
            self._history(ev, code, ev.credit_account, credit_balance, 1)

    def _history(self, ev: Transfer, code: int, account: int, balance: int, sign: int) -> None:
        matches = self._match_symbols()
        text = matches.get(ev.ref, "")
        if code in _SPOT_CODES or (code in _FEE_CODES and text in self._spot_symbols):
            kind = "SpotTrade"
        elif code in _PNL_CODES or code in _FEE_CODES:
            kind = "RealisedPNL"
        else:
            kind = "Transfer"
        ref = str(ev.ref) if kind != "Transfer" else f"{TransferCode(code).name}:{ev.ref}"
        key = (account, ev.currency, kind, ref)
        row = self._open.get(key)
        if row is None:
            row = self._new_row(ev.ts_ns, account, ev.currency, kind, "Completed", ref, text)
            self._open[key] = row
        row.amount += sign * ev.amount
        if code in _FEE_CODES:
            row.fee -= sign * ev.amount
        row.wallet_balance = balance
        row.transact_ts_ns = ev.ts_ns

    def on_deposit(self, ev: DepositCredited) -> WalletTotals:
        state = self.wallet(ev.account, ev.currency)
        if self.deferred:
            self._money.append((ev, state.amount, 0))
        else:
            self._deposit_row(ev, state.amount)
        return state

    def _deposit_row(self, ev: DepositCredited, balance: int) -> None:
        row = self._new_row(
            ev.ts_ns, ev.account, ev.currency, "Deposit", "Completed", ev.transfer_id, ""
        )
        row.amount = ev.amount
        row.wallet_balance = balance

    def _withdrawal_row(self, ev: WithdrawalUpdated, balance: int) -> None:
        row = self._new_row(
            ev.ts_ns, ev.account, ev.currency, "Withdrawal", "Pending", ev.withdrawal_id, ""
        )
        row.amount = -(ev.amount + ev.fee)
        row.fee = ev.fee
        row.wallet_balance = balance
        self.pending[ev.withdrawal_id] = row

    def on_withdrawal(self, ev: WithdrawalUpdated) -> WalletTotals:
        state = self.wallet(ev.account, ev.currency)
        if ev.status == "Pending":
            if self.deferred:
                self._money.append((ev, state.amount, 0))
                self._withdrawal_in_command = True
            else:
                self._withdrawal_row(ev, state.amount)
            return state
        if ev.status == "Completed":
            state.withdrawal_completed(ev.amount + ev.fee, ev.ts_ns)
        pending = self.pending.pop(ev.withdrawal_id, None)
        if pending is None:
            self.unmatched.append(ev)
        else:
            pending.transact_status = ev.status
            pending.timestamp_ns = ev.ts_ns
            self.changes.append(TransactChange("update", pending))
        return state


def _names_one_of(
    event: Transfer | DepositCredited | WithdrawalUpdated, accounts: Container[int]
) -> bool:
    if isinstance(event, Transfer):
        return event.debit_account in accounts or event.credit_account in accounts
    return event.account in accounts
