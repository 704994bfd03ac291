"""`LeaderShared`: the leading sequencer's services over the shared PostgreSQL database
(decisions §28), part of `cluster_leader.LeaderServices`, as the embedded venue wires them
(`venue.open_venue`):

1. Compliance (`services.compliance`): the sync (restrictions the records imply, the periodic
   review) every ``sync_interval_s``, and the sanctions lists' reload, which screens every
   account again when the files changed; a new leader screens once at its start (a change a
   dead leader loaded but had not screened for), which opens no case twice (a hit a case of the
   user names already is skipped). The wallets' withdrawal policy is `CompliancePolicy`.
2. Volume tiers (`services.volume`): executions from the projector's read models (the same
   database), caught up to this node's seq when it took the lease; the tiers it knows from
   this node's engine, read before its writer thread owned it (`read_replica`), then from the
   leadership's batches. Why the engine and not the read models: the core's tiers are not
   projected, and the leader's engine is exactly the state its submissions are judged on.
   The figures go to the database for the gateways (`volume.SqlFigures`). Each leadership
   measures once at its start (a read), so a day a dead leader left half done is finished.
3. Proof of reserves and liabilities (`services.porl`): the leader's sequencer images its
   engine at a batch boundary into ``data_dir/leader-snapshots`` (`transport.node`), the
   proof is published in the database (`porl.shared`): daily (``[porl] daily``) and when an
   operator asks a gateway. Why the leader's engine, not a standby's: the snapshot is taken at
   a boundary of the journal it writes, with no catching up to wait for.
Everything is opened once per process (`open`, in a thread, on the first leadership) and the
jobs made per leadership (`jobs`), submitting to that leadership's sequencer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from sqlalchemy import Engine as SqlEngine

from perpetua.core.commands import Command
from perpetua.core.instruments import InstrumentSpec
from perpetua.feeds.board import IndexBoard
from perpetua.gateway.history import History
from perpetua.runtime.config import FeesConfig, PorlConfig
from perpetua.runtime.wallets import ChainSetup
from perpetua.sequencer import Result, Sequencer, SequencerStopped, SystemClock
from perpetua.sequencer.replica import Replica
from perpetua.sequencer.seed import fee_tiers
from perpetua.services.compliance import Compliance, ComplianceConfig, CompliancePolicy
from perpetua.services.jobs import PeriodicJob
from perpetua.services.porl.service import ProofService, daily_job
from perpetua.services.porl.shared import SnapshotRequests, requests_job, sql_store
from perpetua.services.volume import SqlFigures, SqlOwners, TierTable, VolumeTiers

__all__ = ["LEADER_SNAPSHOT_DIR", "LeaderShared", "usd_per_xbt"]

log = logging.getLogger("perpetua.cluster.leader")

LEADER_SNAPSHOT_DIR = "leader-snapshots"  # under data_dir: the leader's engine images (3)
XBT_INDEX = ".BXBT"


class _Current:
    """The sequencer of the current leadership, for services made once per process."""

    def __init__(self, current: Callable[[], Sequencer | None]) -> None:
        self.current = current

    def _sequencer(self) -> Sequencer:
        sequencer = self.current()
        if sequencer is None:
            raise SequencerStopped("this node does not lead")
        return sequencer

    async def submit_async(self, command: Command) -> Result:
        return await self._sequencer().submit_async(command)

    def request_snapshot(self) -> Future[Path]:
        try:
            return self._sequencer().request_snapshot()
        except SequencerStopped as error:
            future: Future[Path] = Future()
            future.set_exception(error)
            return future


def usd_per_xbt(board: IndexBoard | None) -> Callable[[], int]:
    """Whole USD per XBT from the leader's own XBT index (0 before its first value): what the
    volume tiers value XBt-settled quanto volume at (the embedded venue uses the XBTUSD mark,
    which follows this index)."""

    def price() -> int:
        reading = None if board is None else board.reading(XBT_INDEX)
        return 0 if reading is None else reading.units // 10**reading.decimals

    return price


class LeaderShared:
    """Items 1-3 of the module docstring."""

    def __init__(
        self,
        database_url: str,
        data_dir: Path,
        compliance: ComplianceConfig,
        fees: FeesConfig,
        porl: PorlConfig,
        current: Callable[[], Sequencer | None],
    ) -> None:
        self.database_url = database_url
        self.data_dir = data_dir
        self.compliance_config = compliance
        self.fees = fees
        self.porl = porl
        self.current = _Current(current)
        self.engine: SqlEngine | None = None
        self.compliance: Compliance | None = None
        self.proofs: ProofService | None = None
        self.fee_tiers: dict[int, int] = {}

    def open(self) -> None:
        """Blocking, once: migrations, the database, the server key, compliance."""
        if self.engine is not None:
            return
        from perpetua.services.server_key import load_server_key, server_key_path
        from perpetua.store import migrate_once, open_engine

        if not server_key_path(self.data_dir).exists():  # its own would seal what no gateway reads
            raise RuntimeError(
                f"{server_key_path(self.data_dir)}: missing; copy the gateways' server key here"
            )
        migrate_once(self.database_url)
        engine = open_engine(self.database_url)
        key = load_server_key(self.data_dir)
        self.compliance = Compliance(engine, key, self.current, self.compliance_config)
        self.engine = engine

    def policy(self) -> CompliancePolicy:
        if self.compliance is None:
            raise RuntimeError("open the leader's services first")
        return CompliancePolicy(self.compliance)

    def read_replica(self, replica: Replica) -> None:
        """The tiers the core charges now (item 2), before the writer thread owns the engine."""
        self.fee_tiers = fee_tiers(replica.engine)

    def jobs(
        self,
        sequencer: Sequencer,
        instruments: tuple[InstrumentSpec, ...],
        chain: ChainSetup | None,
        board: IndexBoard | None,
    ) -> list[PeriodicJob]:
        engine, compliance = self.engine, self.compliance
        if engine is None or compliance is None:
            raise RuntimeError("open the leader's services first")
        jobs = self._compliance_jobs(compliance)
        jobs.append(self._volume_job(engine, sequencer, instruments, board))
        jobs.extend(self._proof_jobs(engine, chain))
        return jobs

    def _compliance_jobs(self, compliance: Compliance) -> list[PeriodicJob]:
        interval = self.compliance_config.sync_interval_s
        screened = False

        async def sanctions() -> None:
            nonlocal screened
            if not self.compliance_config.sanctions_lists:
                return
            if screened:
                await compliance.reload_lists()
                return
            await compliance.reload_list_files()
            opened = await compliance.rescreen()
            screened = True
            log.warning("sanctions: every account screened at leadership: %d cases", opened)

        return [
            PeriodicJob("compliance-sync", interval, compliance.sync_all),
            PeriodicJob("sanctions-reload", interval, sanctions),
        ]

    def _volume_job(
        self,
        engine: SqlEngine,
        sequencer: Sequencer,
        instruments: tuple[InstrumentSpec, ...],
        board: IndexBoard | None,
    ) -> PeriodicJob:
        from perpetua.runtime.cluster_gateway import StoredProgress
        from perpetua.store import queries

        def read(start_ns: int, end_ns: int) -> list[Any]:
            with engine.connect() as conn:
                return queries.traded_totals(conn, start_ns, end_ns)

        figures = SqlFigures(engine, time.time_ns)
        volume = VolumeTiers(
            {spec.symbol: spec for spec in instruments},
            read,
            SqlOwners(engine),
            sequencer.submit_async,
            SystemClock().now_ns,
            table=TierTable(self.fees.adv_usd_min),
            usd_per_xbt=usd_per_xbt(board),
            known_tiers=self.fee_tiers,
            caught_up=History(engine, StoredProgress(engine)).caught_up,
            store=figures,
        )
        # measured afresh at each leadership (its first step), once the read models reach the
        # seq this node took the lease at: only tiers the engine lacks are submitted
        volume.seen_seq = sequencer.stats().durable_seq
        sequencer.subscribe_batches(volume.on_batch)
        return PeriodicJob("volume_tiers", self.fees.volume_check_interval_s, volume.step)

    def _proof_jobs(self, engine: SqlEngine, chain: ChainSetup | None) -> list[PeriodicJob]:
        from perpetua.runtime.venue import reserves_of
        from perpetua.services.server_key import load_server_key

        if self.proofs is None:
            key = load_server_key(self.data_dir)
            self.proofs = ProofService(
                self.data_dir, key, self.current, venue=self.porl.venue,
                reserves=reserves_of(self.porl, chain), store=sql_store(engine, key, self.data_dir),
            )  # fmt: skip
        jobs = [requests_job(self.proofs, SnapshotRequests(engine))]
        if self.porl.daily:
            jobs.append(daily_job(self.proofs))
        return jobs

    def close(self) -> None:
        compliance, self.compliance = self.compliance, None
        if compliance is not None:
            compliance.close()
        engine, self.engine = self.engine, None
        if engine is not None:
            engine.dispose()
