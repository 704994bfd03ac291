"""The double-entry ledger: every balance change is a transfer between two accounts.

Accounts are ``(account id, currency)``. User accounts have ids >= 1; system accounts have
negative ids (``SYSTEM_ACCOUNTS``). ``EXTERNAL`` is the outside world: deposits are debited from
it and completed withdrawals credited to it, so for every currency the sum over all accounts,
EXTERNAL included, is exactly zero after every transfer, and the sum over the others changes
only by deposits and withdrawals. ``CLEARING`` holds the derivatives positions' money: it pays
realised profit and receives realised loss, and always equals minus the sum of open position
costs in its currency (checked by the engine).

Every transfer is published as a ``Transfer`` event unless ``publish`` is off (recovery, see
``Engine.apply``); either way its user accounts are noted in ``balances_changed`` for the
engine's follow-up, which reads that, never the events.

Holds (``held``) are not transfers: they reserve part of a user balance for open spot orders, so
``0 <= held <= balance`` for every user account. Amounts are positive ints; user balances never
go negative (an always-on invariant).

Cells. Each ``(account, currency)`` that money has moved through is one ``Cell`` holding its
balance and its hold, so a transfer changes two attributes instead of four dictionary entries;
the hot callers (fills) find a cell once per fill and hand it to ``move``. ``balances`` and
``held`` are views built on demand for cold readers (audit, proofs, tests): the cells are the
one place the figures live.
"""

from enum import IntEnum

from perpetua.core.emit import transfer
from perpetua.core.events import Event
from perpetua.core.invariant import fail

__all__ = [
    "CLEARING",
    "CONVERT_DESK",
    "EXTERNAL",
    "FEES",
    "FUNDING_POOL",
    "INSURANCE",
    "RESIDUE",
    "STAKING",
    "STAKING_REWARDS",
    "SYSTEM_ACCOUNTS",
    "WITHDRAWAL_TRANSIT",
    "Cell",
    "Ledger",
    "TransferCode",
]

EXTERNAL = -1
FEES = -2
INSURANCE = -3
RESIDUE = -4
WITHDRAWAL_TRANSIT = -5
CLEARING = -6
FUNDING_POOL = -7
STAKING = -8  # staked and cooling-off tokens, still their owners' (core.staking)
STAKING_REWARDS = -9  # what staking rewards are paid from
CONVERT_DESK = -10  # the convert desk's inventory (core.convert)

SYSTEM_ACCOUNTS: dict[int, str] = {
    EXTERNAL: "external",
    FEES: "fees",
    INSURANCE: "insurance",
    RESIDUE: "residue",
    WITHDRAWAL_TRANSIT: "withdrawal_transit",
    CLEARING: "clearing",
    FUNDING_POOL: "funding_pool",
    STAKING: "staking",
    STAKING_REWARDS: "staking_rewards",
    CONVERT_DESK: "convert_desk",
}

# System accounts that may go below zero: the outside world, and clearing (which owes open
# positions their unrealised profit). Insurance may be drawn negative only by bankruptcy cover.
# RESIDUE takes the rounding of settlement both ways (a few minor units per settlement).
_MAY_BE_NEGATIVE = frozenset({EXTERNAL, CLEARING, INSURANCE, RESIDUE})


class TransferCode(IntEnum):
    DEPOSIT = 1
    WITHDRAWAL_HOLD = 2
    WITHDRAWAL_RELEASE = 3
    WITHDRAWAL_COMPLETE = 4
    WITHDRAWAL_FEE = 5
    TRADE_FEE = 6
    TRADE_REBATE = 7
    SPOT_BASE = 8
    SPOT_QUOTE = 9
    REALISED_PNL = 10
    BANKRUPTCY_COVER = 11
    FUNDING = 12
    SETTLEMENT = 13
    INSURANCE = 14
    LIQUIDATION_FEE = 15
    FUNDING_RESIDUE = 16
    SETTLEMENT_RESIDUE = 17
    SETTLEMENT_FEE = 18
    WALLET_TRANSFER = 19  # between accounts of one owner (main and sub-accounts)
    DEPOSIT_REVERSAL = 20  # a credited deposit reorganised off the chain, back to EXTERNAL
    STAKE = 21
    UNSTAKE = 22
    STAKING_REWARD = 23
    STAKING_REWARDS_FUNDING = 24
    CONVERT = 25
    CONVERT_DESK_FUNDING = 26


class Cell:
    """One account's money in one currency: its balance and what open spot orders hold of it
    (``0 <= held <= balance`` for user accounts). ``key`` is ``(account, currency)``, built
    once: the follow-up's change sets are keyed by it."""

    __slots__ = ("account", "balance", "currency", "held", "key")

    def __init__(self, account: int, currency: str) -> None:
        self.account = account
        self.currency = currency
        self.key = (account, currency)
        self.balance = 0
        self.held = 0


class Ledger:
    __slots__ = ("balances_changed", "cells", "holds_changed", "publish")

    def __init__(self) -> None:
        self.cells: dict[str, dict[int, Cell]] = {}
        # (account, currency) whose holds changed since the engine last looked: holds reduce
        # what backs cross-margined positions, so their thresholds must be re-derived.
        self.holds_changed: dict[tuple[int, str], None] = {}
        # (account, currency) of user accounts a transfer moved since the engine last looked,
        # in transfer order (debit, then credit). Not state: empty between commands.
        self.balances_changed: dict[tuple[int, str], None] = {}
        self.publish = True  # build Transfer events (Engine.apply sets it per command)

    def open_currency(self, currency: str) -> None:
        if currency not in self.cells:
            self.cells[currency] = {}

    def has_currency(self, currency: str) -> bool:
        return currency in self.cells

    @property
    def balances(self) -> dict[str, dict[int, int]]:
        """Every cell's balance by currency and account (a copy, for cold readers)."""
        return {
            cur: {account: cell.balance for account, cell in cells.items()}
            for cur, cells in self.cells.items()
        }

    @property
    def held(self) -> dict[str, dict[int, int]]:
        """Every non-zero hold by currency and account (a copy, for cold readers)."""
        return {
            cur: {account: cell.held for account, cell in cells.items() if cell.held}
            for cur, cells in self.cells.items()
        }

    def cell(self, account: int, currency: str) -> Cell:
        """``account``'s cell in ``currency`` (an open currency), made on first use."""
        cells = self.cells[currency]
        cell = cells.get(account)
        if cell is None:
            cell = Cell(account, currency)
            cells[account] = cell
        return cell

    def balance(self, account: int, currency: str) -> int:
        cell = self.cells[currency].get(account)
        return 0 if cell is None else cell.balance

    def held_amount(self, account: int, currency: str) -> int:
        cell = self.cells[currency].get(account)
        return 0 if cell is None else cell.held

    def available(self, account: int, currency: str) -> int:
        cell = self.cells[currency].get(account)
        return 0 if cell is None else cell.balance - cell.held

    def transfer(
        self,
        out: list[Event],
        ts_ns: int,
        debit: int,
        credit: int,
        currency: str,
        amount: int,
        code: TransferCode,
        ref: int,
    ) -> None:
        """Move ``amount`` from ``debit`` to ``credit``; publish it as a ``Transfer`` event."""
        if debit == credit:
            fail(f"transfer {code.name}: same account {debit}")
        self.move(
            out, ts_ns, self.cell(debit, currency), self.cell(credit, currency), amount, code, ref
        )

    def move(
        self,
        out: list[Event],
        ts_ns: int,
        debit: Cell,
        credit: Cell,
        amount: int,
        code: TransferCode,
        ref: int,
    ) -> None:
        """``transfer`` between two cells of one currency (the fill path finds them once)."""
        # amount >> 63: a positive amount above INT64_MAX, without comparing with a constant
        # too large for the compiled core's fast ints
        if amount <= 0 or amount >> 63 or debit is credit or debit.currency != credit.currency:
            fail(f"transfer {code.name}: bad amount {amount} or cells {debit.key} {credit.key}")
        debit_after = debit.balance - amount
        account = debit.account
        if debit_after < 0 and account not in _MAY_BE_NEGATIVE:
            fail(f"transfer {code.name}: account {account} {debit.currency} would go negative")
        if account > 0 and debit_after < debit.held:
            fail(f"transfer {code.name}: account {account} {debit.currency} below its holds")
        debit.balance = debit_after
        credit.balance += amount
        changed = self.balances_changed
        if account > 0:
            changed[debit.key] = None
        if credit.account > 0:
            changed[credit.key] = None
        if self.publish:
            out.append(transfer(ts_ns, account, credit.account, debit.currency, amount, code, ref))

    def hold(self, account: int, currency: str, delta: int) -> None:
        """Change ``account``'s hold by ``delta`` (either sign), keeping 0 <= held <= balance."""
        cell = self.cell(account, currency)
        after = cell.held + delta
        self.holds_changed[cell.key] = None
        if after < 0 or after > cell.balance:
            fail(f"hold on {account} {currency} out of range: {after}")
        cell.held = after

    def total(self, currency: str, include_external: bool = False) -> int:
        return sum(
            cell.balance
            for account, cell in self.cells[currency].items()
            if include_external or account != EXTERNAL
        )

    def snapshot(self) -> dict[str, object]:
        return {
            "balances": {
                cur: sorted((a, c.balance) for a, c in cells.items() if c.balance)
                for cur, cells in sorted(self.cells.items())
            },
            "held": {
                cur: sorted((a, c.held) for a, c in cells.items() if c.held)
                for cur, cells in sorted(self.cells.items())
            },
        }

    def restore(self, data: dict[str, object]) -> None:
        balances = data["balances"]
        held = data["held"]
        if not isinstance(balances, dict) or not isinstance(held, dict):
            fail("ledger snapshot malformed")
        self.cells = {}
        for cur in (*balances, *held):
            self.open_currency(cur)
        for cur, rows in balances.items():
            for a, v in rows:
                self.cell(int(a), cur).balance = int(v)
        for cur, rows in held.items():
            for a, v in rows:
                self.cell(int(a), cur).held = int(v)
