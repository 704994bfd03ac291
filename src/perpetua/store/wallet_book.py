"""Wallets and wallet history (BitMEX ``wallet`` and ``walletHistory``) in the read models.

The fold is ``wire.wallet.WalletFold``, the one the gateway's live views run too (its docstring
says which rows each kind of money makes): this module gives it balances cached from the
``wallets`` table (loaded on first touch) and writes what it folded, once per SQL transaction:
new ``transactions`` rows, withdrawals' status changes in place, balances, and the insurance
fund's balance after each transfer that touched it (the ``insurance`` table). Holds for open
spot orders are not transfers and do not show here; margin is the risk engine's.
"""

from collections.abc import Sequence

from sqlalchemy import Connection, bindparam, select, update

from perpetua.core.events import DepositCredited, Event, Transfer, WithdrawalUpdated
from perpetua.core.ledger import INSURANCE
from perpetua.store.database import insert_rows, upsert
from perpetua.store.schema import insurance, transactions, wallets
from perpetua.wire.wallet import TRANSACT_TYPES, WalletFold, WalletTotals

__all__ = ["TRANSACT_TYPES", "WalletBook"]


class WalletBook:
    """Balances (cached, loaded from SQL on first touch) and the rows of one SQL transaction:
    ``begin_command`` before each command's events, the ``on_*`` methods per event, ``write``
    once before the commit."""

    def __init__(self) -> None:
        self._wallets: dict[tuple[int, str], WalletTotals] = {}
        self._conn: Connection | None = None
        self._seq = 0
        self.fold = WalletFold(self._wallet)
        self._clear_pending()

    def _clear_pending(self) -> None:
        self._dirty: dict[tuple[int, str], WalletTotals] = {}
        self._insurance: dict[tuple[str, int], dict[str, object]] = {}

    def reset(self) -> None:
        """Forget everything cached and pending (after a failed SQL transaction)."""
        self._wallets.clear()
        self.fold.reset()
        self._clear_pending()

    def _wallet(self, account: int, currency: str) -> WalletTotals:
        conn = self._conn
        assert conn is not None, "wallet read outside a SQL transaction"
        return self.wallet(conn, account, currency)

    def wallet(self, conn: Connection, account: int, currency: str) -> WalletTotals:
        key = (account, currency)
        state = self._wallets.get(key)
        if state is None:
            row = conn.execute(
                select(wallets).where(wallets.c.account == account, wallets.c.currency == currency)
            ).first()
            state = WalletTotals(**row._asdict()) if row else WalletTotals(account, currency)
            self._wallets[key] = state
        return state

    def begin_command(
        self, conn: Connection, seq: int, events: Sequence[Event], spot_symbols: frozenset[str]
    ) -> None:
        """Rows of one fill never span commands: close the per-fill aggregation."""
        self._conn = conn
        self._seq = seq
        self.fold.begin_command(seq, events, spot_symbols)

    def on_transfer(self, ev: Transfer) -> None:
        debit, credit = self.fold.on_transfer(ev)
        self._dirty[(debit.account, debit.currency)] = debit
        self._dirty[(credit.account, credit.currency)] = credit
        if INSURANCE in (ev.debit_account, ev.credit_account):
            fund = debit if debit.account == INSURANCE else credit
            self._insurance[(ev.currency, ev.ts_ns)] = {
                "currency": ev.currency,
                "timestamp_ns": ev.ts_ns,
                "wallet_balance": fund.amount,
                "seq": self._seq,
            }

    def on_deposit(self, ev: DepositCredited) -> None:
        self.fold.on_deposit(ev)

    def on_withdrawal(self, ev: WithdrawalUpdated) -> None:
        state = self.fold.on_withdrawal(ev)
        if ev.status == "Completed":
            self._dirty[(state.account, state.currency)] = state

    def write(self, conn: Connection) -> None:
        """Write what this SQL transaction changed (rows, balances, insurance)."""
        changes = self.fold.take_changes()
        new = {id(c.row) for c in changes if c.action == "insert"}
        insert_rows(conn, transactions, [c.row.columns() for c in changes if c.action == "insert"])
        updates = [
            {"w_account": c.row.account, "w_ref": c.row.ref, "status": c.row.transact_status,
             "ts": c.row.timestamp_ns}
            for c in changes
            if c.action == "update" and id(c.row) not in new
        ]  # fmt: skip
        updates += [
            {"w_account": ev.account, "w_ref": ev.withdrawal_id, "status": ev.status,
             "ts": ev.ts_ns}
            for ev in self.fold.unmatched
        ]  # fmt: skip
        self.fold.unmatched.clear()
        if updates:
            stmt = (
                update(transactions)
                .where(
                    transactions.c.account == bindparam("w_account"),
                    transactions.c.transact_type == "Withdrawal",
                    transactions.c.ref == bindparam("w_ref"),
                )
                .values(transact_status=bindparam("status"), timestamp_ns=bindparam("ts"))
            )
            conn.execute(stmt, updates)
        upsert(conn, wallets, [s.row() for s in self._dirty.values()], ("account", "currency"))
        upsert(conn, insurance, list(self._insurance.values()), ("currency", "timestamp_ns"))
        self._conn = None
        self._clear_pending()
