"""The sender: queued withdrawals signed, recorded, broadcast and followed to completion.

One ``step`` (never two at once: the background job runs it serially):
1. ``Signed`` rows (bytes recorded, maybe never sent: a crash) are broadcast again, the same
   bytes: a chain takes one transaction per hash and per nonce, so this never pays twice.
2. ``Broadcast`` rows are followed: mined and ``confirmations`` deep -> the core's
   ``WithdrawalComplete`` -> ``Completed``; reverted on chain -> ``WithdrawalCancel`` (the
   refund) -> ``Failed``; unknown to the node -> sent again, unless the hot wallet's nonce has
   moved past it (another transaction took that nonce: it can never be mined) -> refund.
3. ``Queued`` rows, oldest first: nonce = the next after every nonce recorded (or the node's
   pending count when higher); sign; **record the signed bytes, hash and nonce (commit)**;
   then broadcast; then ``Broadcast``. A crash between record and broadcast leaves a ``Signed``
   row that 1 sends; a crash before the record leaves ``Queued`` (nothing was sent).
4. A queued withdrawal the hot wallet cannot cover waits (logged), in order.
Core command before row update everywhere: the core's "invalid state" on a repeat is a no-op.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from sqlalchemy import Engine, func, select

from perpetua.chain.adapter import TxStatus, WithdrawalSigner
from perpetua.core.commands import WithdrawalCancel, WithdrawalComplete
from perpetua.core.reasons import Reason
from perpetua.services.wallets.failpoints import crash_point
from perpetua.services.wallets.networks import Network
from perpetua.services.wallets.ports import Clock, Submit, rejection
from perpetua.services.wallets.withdrawals import WithdrawalDesk, move
from perpetua.store.schema import chain_withdrawals

__all__ = ["SendReport", "Sender"]

log = logging.getLogger("perpetua.wallets.sender")
SENDS_PER_STEP_MAX = 100


@dataclass
class SendReport:
    broadcast: list[str] = field(default_factory=list)
    completed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


class Sender:
    def __init__(
        self,
        network: Network,
        signer: WithdrawalSigner,
        engine: Engine,
        desk: WithdrawalDesk,
        submit: Submit,
        clock_ns: Clock = time.time_ns,
    ) -> None:
        self.network = network
        self.signer = signer
        self.engine = engine
        self.desk = desk
        self.submit = submit
        self.clock_ns = clock_ns

    def step(self) -> SendReport:
        report = SendReport()
        net = self.network.name
        for row in self.desk.rows(status="Signed"):
            if row.network == net:
                self._resend(row.withdrawal_id, report)
        for row in self.desk.rows(status="Broadcast"):
            if row.network == net:
                self._follow(row.withdrawal_id, report)
        for row in self.desk.rows(status="Queued")[:SENDS_PER_STEP_MAX]:
            if row.network == net and not self._send(row.withdrawal_id, report):
                break  # in order: a withdrawal the hot wallet cannot cover blocks later ones
        return report

    def _raw(self, withdrawal_id: str) -> tuple[str, str, int]:
        with self.engine.connect() as conn:
            r = conn.execute(
                select(chain_withdrawals.c.raw_tx, chain_withdrawals.c.tx_hash,
                       chain_withdrawals.c.nonce)
                .where(chain_withdrawals.c.withdrawal_id == withdrawal_id)
            ).one()  # fmt: skip
        return str(r.raw_tx), str(r.tx_hash), int(r.nonce)

    def _resend(self, withdrawal_id: str, report: SendReport) -> None:
        raw, _, _ = self._raw(withdrawal_id)
        self.signer.broadcast(raw)
        move(self.engine, withdrawal_id, "Signed", "Broadcast", updated_ns=self.clock_ns())
        report.broadcast.append(withdrawal_id)

    def _follow(self, withdrawal_id: str, report: SendReport) -> None:
        raw, tx_hash, nonce = self._raw(withdrawal_id)
        state = self.signer.state(tx_hash)
        if state.status == TxStatus.MINED:
            if state.confirmations < self.network.confirmations:
                return
            reason = rejection(self.submit(WithdrawalComplete(0, withdrawal_id)))
            if reason not in (None, Reason.WITHDRAWAL_STATE_INVALID):
                raise RuntimeError(f"WithdrawalComplete {withdrawal_id}: {reason!r}")
            crash_point("signer.completed")
            move(
                self.engine, withdrawal_id, "Broadcast", "Completed",
                block_number=state.block_number, updated_ns=self.clock_ns(),
            )  # fmt: skip
            report.completed.append(withdrawal_id)
        elif state.status == TxStatus.FAILED or (
            state.status == TxStatus.UNKNOWN and self.signer.next_nonce() > nonce
        ):
            self._refund(withdrawal_id, report)
        elif state.status == TxStatus.UNKNOWN:
            self.signer.broadcast(raw)  # dropped from the mempool: the same bytes again

    def _refund(self, withdrawal_id: str, report: SendReport) -> None:
        reason = rejection(self.submit(WithdrawalCancel(0, withdrawal_id)))
        if reason not in (None, Reason.WITHDRAWAL_STATE_INVALID):
            raise RuntimeError(f"WithdrawalCancel {withdrawal_id}: {reason!r}")
        move(self.engine, withdrawal_id, "Broadcast", "Failed", updated_ns=self.clock_ns())
        report.failed.append(withdrawal_id)
        log.warning("withdrawal %s failed on chain: refunded", withdrawal_id)

    def _next_nonce(self) -> int:
        with self.engine.connect() as conn:
            recorded = conn.execute(
                select(func.max(chain_withdrawals.c.nonce)).where(
                    chain_withdrawals.c.network == self.network.name
                )
            ).scalar()
        chain = self.signer.next_nonce()
        return chain if recorded is None else max(chain, int(recorded) + 1)

    def _send(self, withdrawal_id: str, report: SendReport) -> bool:
        row = self.desk.get(withdrawal_id)
        if row is None or row.status != "Queued":
            return True
        if self.signer.balance(row.currency, self.signer.hot_address) < row.amount:
            log.warning("hot wallet cannot cover withdrawal %s yet", withdrawal_id)
            report.waiting.append(withdrawal_id)
            return False
        signed = self.signer.sign(row.currency, row.address, row.amount, self._next_nonce())
        if not move(
            self.engine, withdrawal_id, "Queued", "Signed", nonce=signed.nonce,
            tx_hash=signed.tx_hash, raw_tx=signed.raw, updated_ns=self.clock_ns(),
        ):  # fmt: skip
            return True  # canceled meanwhile: nothing was sent
        crash_point("signer.recorded")
        self.signer.broadcast(signed.raw)
        crash_point("signer.broadcast")
        move(self.engine, withdrawal_id, "Signed", "Broadcast", updated_ns=self.clock_ns())
        report.broadcast.append(withdrawal_id)
        return True
