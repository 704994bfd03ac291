"""The deposit follower: one network's blocks in, core ``Deposit`` / ``DepositReverse`` out.

Each ``step``:
1. Reorg check: the stored hash of the cursor's block is compared with the chain's. On a
   mismatch it walks back through the stored hashes (``chain_blocks``, kept for
   ``Network.reorg_window_blocks``) to the highest block still on the chain (the fork point):
   deposits above it not yet credited become ``Orphaned``; credited ones are reversed by the
   core's ``DepositReverse`` and become ``Reversed``; the cursor moves back to the fork point.
2. Scan: blocks cursor+1 .. head (at most ``BLOCKS_PER_STEP_MAX``) for transfers to the
   network's deposit addresses. A transfer is one row keyed ``network:tx:log_index``; a
   transfer seen again after a reorg (re-included) becomes ``Pending`` again.
3. Credit: a ``Pending`` or ``Held`` row whose block has ``confirmations`` blocks on top (its
   own included) and is still on the chain is credited with ``Deposit`` under transfer id
   ``network:tx:log_index`` (``:n`` appended for the n-th re-credit after a reversal), so a
   repeat after a crash is the core's duplicate and changes nothing. Below the asset's minimum:
   ``BelowMinimum``, never credited. Deposits paused on the network, or refused for the account
   by the policy: ``Held``, credited when that changes. Refused by the core (an account
   restriction): ``Refused``, offered again at most every ``HELD_RETRY_NS``.
Core command first, row update after: a crash between them is repaired by the next step (the
core answers "duplicate", the row catches up).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, delete, insert, select, update

from perpetua.chain.adapter import ChainTransfer, DepositWatcher
from perpetua.core.commands import Deposit, DepositReverse
from perpetua.core.reasons import Reason
from perpetua.services.wallets.networks import Network
from perpetua.services.wallets.policy import WithdrawalPolicy
from perpetua.services.wallets.ports import Clock, Submit, rejection
from perpetua.store.schema import chain_blocks, chain_cursors, chain_deposits, wallet_addresses

__all__ = ["BLOCKS_PER_STEP_MAX", "DepositFollower", "FollowerReport"]

log = logging.getLogger("perpetua.wallets.follower")

BLOCKS_PER_STEP_MAX = 500
CREDITABLE = ("Pending", "Held", "Refused")
HELD_RETRY_NS = 60 * 10**9


@dataclass
class FollowerReport:
    head: int = 0
    scanned: int = 0  # blocks read this step
    seen: int = 0  # new transfer rows
    credited: list[str] = field(default_factory=list)  # deposit ids
    reversed: list[str] = field(default_factory=list)
    reorg_depth: int = 0


class DepositFollower:
    def __init__(
        self,
        network: Network,
        watcher: DepositWatcher,
        engine: Engine,
        submit: Submit,
        policy: WithdrawalPolicy,
        deposits_enabled: Callable[[str], bool],
        clock_ns: Clock = time.time_ns,
        start_block: int | None = None,
    ) -> None:
        self.network = network
        self.watcher = watcher
        self.engine = engine
        self.submit = submit
        self.policy = policy
        self.deposits_enabled = deposits_enabled
        self.clock_ns = clock_ns
        self.start_block = start_block

    def step(self) -> FollowerReport:
        report = FollowerReport(head=self.watcher.head())
        cursor = self._cursor(report.head)
        cursor = self._check_reorg(cursor, report)
        last = min(report.head, cursor + BLOCKS_PER_STEP_MAX)
        if last > cursor:
            self._scan(cursor + 1, last, report)
        self._credit(report)
        return report

    # -- 1: reorgs -------------------------------------------------------------------------

    def _cursor(self, head: int) -> int:
        net = self.network.name
        with self.engine.begin() as conn:
            row = conn.execute(
                select(chain_cursors.c.block_number).where(chain_cursors.c.network == net)
            ).first()
            if row is not None:
                return int(row[0])
            start = head if self.start_block is None else self.start_block
            conn.execute(insert(chain_cursors).values(network=net, block_number=start))
            ref = self.watcher.block_ref(start)
            if ref is not None:
                conn.execute(insert(chain_blocks).values(network=net, number=start, hash=ref.hash))
            return start

    def _check_reorg(self, cursor: int, report: FollowerReport) -> int:
        net = self.network.name
        with self.engine.connect() as conn:
            stored = conn.execute(
                select(chain_blocks.c.number, chain_blocks.c.hash)
                .where(chain_blocks.c.network == net)
                .order_by(chain_blocks.c.number.desc())
            ).all()
        if not stored:
            return cursor
        top = stored[0]
        ref = self.watcher.block_ref(int(top.number))
        if ref is not None and ref.hash == top.hash:
            return cursor
        fork = -1
        for row in stored[1:]:
            ref = self.watcher.block_ref(int(row.number))
            if ref is not None and ref.hash == row.hash:
                fork = int(row.number)
                break
        if fork < 0:  # nothing stored survives: rescan the window
            fork = max(0, int(stored[-1].number) - 1)
        report.reorg_depth = cursor - fork
        log.warning("%s: reorg below block %d, back to fork point %d", net, cursor, fork)
        self._unwind(fork, report)
        return fork

    def _unwind(self, fork: int, report: FollowerReport) -> None:
        net = self.network.name
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(chain_deposits).where(
                    chain_deposits.c.network == net, chain_deposits.c.block_number > fork
                )
            ).all()
        for row in rows:
            if row.status == "Credited":
                command = DepositReverse(0, row.transfer_id, row.account, row.currency, row.amount)
                reason = rejection(self.submit(command))
                if reason not in (None, Reason.TRANSFER_ID_DUPLICATE):
                    raise RuntimeError(f"DepositReverse {row.id} refused: {reason!r}")
                status = "Reversed"
                report.reversed.append(row.id)
            elif row.status in ("Reversed", "BelowMinimum"):
                status = row.status
            else:
                status = "Orphaned"
            with self.engine.begin() as conn:
                conn.execute(
                    update(chain_deposits)
                    .where(chain_deposits.c.id == row.id)
                    .values(status=status, updated_ns=self.clock_ns())
                )
        with self.engine.begin() as conn:
            conn.execute(
                delete(chain_blocks).where(
                    chain_blocks.c.network == net, chain_blocks.c.number > fork
                )
            )
            conn.execute(
                update(chain_cursors)
                .where(chain_cursors.c.network == net)
                .values(block_number=fork)
            )

    # -- 2: scanning -----------------------------------------------------------------------

    def watched(self, conn: Connection) -> dict[str, int]:
        rows = conn.execute(
            select(wallet_addresses.c.address, wallet_addresses.c.account).where(
                wallet_addresses.c.network == self.network.name
            )
        ).all()
        return {str(r.address).lower(): int(r.account) for r in rows}

    def _scan(self, first: int, last: int, report: FollowerReport) -> None:
        net = self.network.name
        with self.engine.connect() as conn:
            watched = self.watched(conn)
        transfers = self.watcher.transfers(first, last, frozenset(watched))
        last_ref = self.watcher.block_ref(last)
        now = self.clock_ns()
        with self.engine.begin() as conn:
            hashes = {t.block.number: t.block.hash for t in transfers}
            if last_ref is not None:
                hashes[last] = last_ref.hash
            for number, block_hash in sorted(hashes.items()):
                conn.execute(
                    delete(chain_blocks).where(
                        chain_blocks.c.network == net, chain_blocks.c.number == number
                    )
                )
                conn.execute(
                    insert(chain_blocks).values(network=net, number=number, hash=block_hash)
                )
            for transfer in transfers:
                account = watched.get(transfer.to_address.lower())
                if account is not None and self._record(conn, transfer, account, now):
                    report.seen += 1
            conn.execute(
                delete(chain_blocks).where(
                    chain_blocks.c.network == net,
                    chain_blocks.c.number < last - self.network.reorg_window_blocks,
                )
            )
            conn.execute(
                update(chain_cursors)
                .where(chain_cursors.c.network == net)
                .values(block_number=last)
            )
        report.scanned += last - first + 1

    def _record(self, conn: Connection, t: ChainTransfer, account: int, now: int) -> bool:
        net = self.network.name
        key = f"{net}:{t.tx}:{t.log_index}"
        row = conn.execute(select(chain_deposits).where(chain_deposits.c.id == key)).first()
        place = {"block_number": t.block.number, "block_hash": t.block.hash, "updated_ns": now}
        if row is None:
            rules = self.network.rules(t.currency)
            below = rules is None or t.amount < rules.deposit_min
            conn.execute(
                insert(chain_deposits).values(
                    id=key,
                    network=net,
                    account=account,
                    currency=t.currency,
                    amount=t.amount,
                    tx=t.tx,
                    log_index=t.log_index,
                    address=t.to_address,
                    status="BelowMinimum" if below else "Pending",
                    credits=0,
                    transfer_id=key,
                    seen_ns=now,
                    **place,
                )
            )
            return True
        if row.status in ("Orphaned", "Reversed"):  # re-included after a reorg
            credits = int(row.credits)
            transfer_id = key if credits == 0 else f"{key}:{credits}"
            conn.execute(
                update(chain_deposits)
                .where(chain_deposits.c.id == key)
                .values(status="Pending", transfer_id=transfer_id, **place)
            )
        elif row.block_hash != t.block.hash:
            conn.execute(update(chain_deposits).where(chain_deposits.c.id == key).values(**place))
        return False

    # -- 3: credits ------------------------------------------------------------------------

    def _credit(self, report: FollowerReport) -> None:
        net = self.network.name
        deepest = report.head - self.network.confirmations + 1
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(chain_deposits)
                .where(
                    chain_deposits.c.network == net,
                    chain_deposits.c.status.in_(CREDITABLE),
                    chain_deposits.c.block_number <= deepest,
                )
                .order_by(chain_deposits.c.block_number, chain_deposits.c.log_index)
            ).all()
        if not rows:
            return
        enabled = self.deposits_enabled(net)
        canonical: dict[int, str | None] = {}
        for row in rows:
            number = int(row.block_number)
            if number not in canonical:
                ref = self.watcher.block_ref(number)
                canonical[number] = None if ref is None else ref.hash
            if canonical[number] != row.block_hash:
                continue  # its block left the chain: the next step's reorg check handles it
            held = not enabled or not self.policy.deposits_allowed(int(row.account))
            if held:
                if row.status != "Held":
                    self._set(row.id, status="Held")
                continue
            if row.status == "Refused" and self.clock_ns() < int(row.updated_ns) + HELD_RETRY_NS:
                continue
            command = Deposit(0, int(row.account), row.currency, int(row.amount), row.transfer_id)
            reason = rejection(self.submit(command))
            if reason not in (None, Reason.TRANSFER_ID_DUPLICATE):
                log.warning("%s: deposit %s refused by the core: %r", net, row.id, reason)
                self._set(row.id, status="Refused")
                continue
            self._set(row.id, status="Credited", credits=int(row.credits) + 1)
            report.credited.append(row.id)

    def _set(self, key: str, **values: object) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(chain_deposits)
                .where(chain_deposits.c.id == key)
                .values(updated_ns=self.clock_ns(), **values)
            )
