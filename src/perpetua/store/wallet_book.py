"""Wallets and wallet history (BitMEX ``wallet`` and ``walletHistory``) from ledger transfers.

Every ``Transfer`` moves ``amount`` between two ledger accounts, so replaying them gives every
balance exactly; ``wallets`` holds them for user and system accounts alike (the insurance fund's
balance is the ``insurance`` table). Holds for open spot orders are not transfers and do not
show here; margin is the risk engine's.

Wallet history rows (``transactions``), for user accounts only. As on BitMEX, ``amount`` is the
row's whole signed effect on the wallet, fees included, and ``fee`` only says how much of it was
fee; so each row's ``wallet_balance`` is the previous row's plus its ``amount`` (rows in
``transact_id`` order, per account and currency; a canceled withdrawal excepted, see below).
The choice, per kind of money:

* ``Deposit``: one row per ``DepositCredited`` (ref = its transfer id), status Completed.
* ``Withdrawal``: one row per withdrawal id, written at the request (status Pending, amount =
  -(amount + fee), wallet_balance after the hold) and updated in place to Completed or
  Canceled; ``transact_ts_ns`` stays the request's time and ``timestamp_ns`` becomes the
  completion's (BitMEX: transactTime is submission, timestamp is processing). A canceled
  withdrawal's money came back by a release transfer that has no row of its own, so the
  running balance skips canceled rows.
* ``RealisedPNL``: one row per account, currency and execution (ref = trdMatchID) summing the
  realised PnL, fee and rebate transfers of that fill; fee = fee paid minus rebate received.
  Funding and settlement transfers (codes FUNDING, SETTLEMENT) land here too, one row per
  their ``ref``. This is per execution rather than BitMEX's one row per day: the running
  balance stays exact and a trader can reconcile every fill. BitMEX's live ``UnrealisedPNL``
  row (status Pending) needs the mark price: the gateway adds it if it wants it.
* ``SpotTrade``: one row per account, currency and spot fill (SPOT_BASE, SPOT_QUOTE, and the fee
  or rebate of a spot match): amount = the net change of that currency, fee as above.
* ``Transfer``: any other code that touches a user account, one row per (code, ref).

``transact_id`` = ``seq << TRANSACT_INDEX_BITS | n`` for the command's n-th new row (n from 0):
unique, increasing, and the same on every replay.
"""

from sqlalchemy import Connection, bindparam, select, update

from perpetua.core.events import DepositCredited, Transfer, WithdrawalUpdated
from perpetua.core.ledger import INSURANCE, TransferCode
from perpetua.store.database import insert_rows, upsert
from perpetua.store.schema import TRANSACT_INDEX_BITS, insurance, transactions, wallets
from perpetua.wire.wallet import WalletTotals

__all__ = ["TRANSACT_TYPES", "WalletBook"]

TRANSACT_TYPES = ("Deposit", "Withdrawal", "RealisedPNL", "SpotTrade", "Transfer")

_PNL_CODES = frozenset({TransferCode.REALISED_PNL, TransferCode.FUNDING, TransferCode.SETTLEMENT})
_FEE_CODES = frozenset({TransferCode.TRADE_FEE, TransferCode.TRADE_REBATE})
_SPOT_CODES = frozenset({TransferCode.SPOT_BASE, TransferCode.SPOT_QUOTE})
# Codes whose user-side rows come from lifecycle events (DepositCredited, WithdrawalUpdated).
_LIFECYCLE_CODES = frozenset(
    {TransferCode.DEPOSIT, TransferCode.WITHDRAWAL_HOLD, TransferCode.WITHDRAWAL_RELEASE}
)


class WalletBook:
    """Balances (cached, loaded from SQL on first touch) and the rows of one SQL transaction:
    ``begin_command`` before each command's events, the ``on_*`` methods per event, ``write``
    once before the commit."""

    def __init__(self) -> None:
        self._wallets: dict[tuple[int, str], WalletTotals] = {}
        self._seq = 0
        self._rows_in_command = 0
        self._spot_matches: frozenset[int] = frozenset()
        self._clear_pending()

    def _clear_pending(self) -> None:
        self._dirty: dict[tuple[int, str], WalletTotals] = {}
        self._new_rows: list[dict[str, object]] = []
        self._open_rows: dict[tuple[int, str, str, str], dict[str, object]] = {}
        self._pending_withdrawals: dict[str, dict[str, object]] = {}
        self._withdrawal_updates: list[dict[str, object]] = []
        self._insurance: dict[tuple[str, int], dict[str, object]] = {}

    def reset(self) -> None:
        """Forget everything cached and pending (after a failed SQL transaction)."""
        self._wallets.clear()
        self._clear_pending()

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

    def begin_command(self, seq: int, spot_matches: frozenset[int]) -> None:
        """Rows of one fill never span commands: close the per-fill aggregation."""
        self._seq = seq
        self._rows_in_command = 0
        self._spot_matches = spot_matches
        self._open_rows.clear()

    def _new_row(
        self, ts_ns: int, account: int, currency: str, kind: str, status: str, ref: str, text: str
    ) -> dict[str, object]:
        if self._rows_in_command >= 1 << TRANSACT_INDEX_BITS:
            raise ValueError(f"seq {self._seq}: more wallet rows than transact ids")
        transact_id = (self._seq << TRANSACT_INDEX_BITS) | self._rows_in_command
        self._rows_in_command += 1
        row: dict[str, object] = {
            "transact_id": transact_id,
            "account": account,
            "currency": currency,
            "transact_type": kind,
            "transact_status": status,
            "amount": 0,
            "fee": 0,
            "wallet_balance": 0,
            "ref": ref,
            "network": "",
            "address": "",
            "tx": "",
            "text": text,
            "transact_ts_ns": ts_ns,
            "timestamp_ns": ts_ns,
            "seq": self._seq,
        }
        self._new_rows.append(row)
        return row

    def on_transfer(self, conn: Connection, ev: Transfer, text: str) -> None:
        code = ev.code  # a TransferCode (an int): compared, never converted on this hot path
        debit = self.wallet(conn, ev.debit_account, ev.currency)
        credit = self.wallet(conn, ev.credit_account, ev.currency)
        debit.on_transfer(code, ev.amount, False, ev.ts_ns)
        credit.on_transfer(code, ev.amount, True, ev.ts_ns)
        for state in (debit, credit):
            self._dirty[(state.account, state.currency)] = state
        if INSURANCE in (ev.debit_account, ev.credit_account):
            fund = self.wallet(conn, INSURANCE, ev.currency)
            self._insurance[(ev.currency, ev.ts_ns)] = {
                "currency": ev.currency,
                "timestamp_ns": ev.ts_ns,
                "wallet_balance": fund.amount,
                "seq": self._seq,
            }
        if code in _LIFECYCLE_CODES:
            return
        for state, sign in ((debit, -1), (credit, 1)):
            if state.account > 0:
                self._history(ev, code, state, sign, text)

    def _history(self, ev: Transfer, code: int, state: WalletTotals, sign: int, text: str) -> None:
        if code in _SPOT_CODES or (code in _FEE_CODES and ev.ref in self._spot_matches):
            kind = "SpotTrade"
        elif code in _PNL_CODES or code in _FEE_CODES:
            kind = "RealisedPNL"
        else:
            kind = "Transfer"
        ref = str(ev.ref) if kind != "Transfer" else f"{TransferCode(code).name}:{ev.ref}"
        key = (state.account, state.currency, kind, ref)
        row = self._open_rows.get(key)
        if row is None:
            row = self._new_row(
                ev.ts_ns, state.account, state.currency, kind, "Completed", ref, text
            )
            self._open_rows[key] = row
        row["amount"] = int(row["amount"]) + sign * ev.amount  # type: ignore[call-overload]
        if code in _FEE_CODES:
            row["fee"] = int(row["fee"]) - sign * ev.amount  # type: ignore[call-overload]
        row["wallet_balance"] = state.amount
        row["transact_ts_ns"] = ev.ts_ns

    def on_deposit(self, conn: Connection, ev: DepositCredited) -> None:
        state = self.wallet(conn, ev.account, ev.currency)
        row = self._new_row(
            ev.ts_ns, ev.account, ev.currency, "Deposit", "Completed", ev.transfer_id, ""
        )
        row.update(amount=ev.amount, wallet_balance=state.amount)

    def on_withdrawal(self, conn: Connection, ev: WithdrawalUpdated) -> None:
        state = self.wallet(conn, ev.account, ev.currency)
        if ev.status == "Pending":
            row = self._new_row(
                ev.ts_ns, ev.account, ev.currency, "Withdrawal", "Pending", ev.withdrawal_id, ""
            )
            row.update(amount=-(ev.amount + ev.fee), fee=ev.fee, wallet_balance=state.amount)
            self._pending_withdrawals[ev.withdrawal_id] = row
            return
        if ev.status == "Completed":
            state.withdrawal_completed(ev.amount + ev.fee, ev.ts_ns)
            self._dirty[(state.account, state.currency)] = state
        pending = self._pending_withdrawals.get(ev.withdrawal_id)
        if pending is not None:
            pending.update(transact_status=ev.status, timestamp_ns=ev.ts_ns)
        else:
            self._withdrawal_updates.append(
                {
                    "w_account": ev.account,
                    "w_ref": ev.withdrawal_id,
                    "status": ev.status,
                    "ts": ev.ts_ns,
                }
            )

    def write(self, conn: Connection) -> None:
        """Write what this SQL transaction changed (rows, balances, insurance)."""
        insert_rows(conn, transactions, self._new_rows)
        if self._withdrawal_updates:
            stmt = (
                update(transactions)
                .where(
                    transactions.c.account == bindparam("w_account"),
                    transactions.c.transact_type == "Withdrawal",
                    transactions.c.ref == bindparam("w_ref"),
                )
                .values(transact_status=bindparam("status"), timestamp_ns=bindparam("ts"))
            )
            conn.execute(stmt, self._withdrawal_updates)
        upsert(conn, wallets, [s.row() for s in self._dirty.values()], ("account", "currency"))
        upsert(conn, insurance, list(self._insurance.values()), ("currency", "timestamp_ns"))
        self._clear_pending()
