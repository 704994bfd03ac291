"""`LeaderServices`: the background services that submit commands, run by the leading sequencer
of a cluster (`transport.node.LeaderDuties`), so exactly once in the cluster.

What runs, as in the embedded venue (`venue.open_venue`):
    1. The index feeds (``[feeds]`` of cluster.toml, the venue config's table; simulated by
       default): an `IndexPublisher` over the leader's own `Sequencer` (no NATS hop), for every
       tradable market of the engine as it was when the node took the lease. Marks move.
    2. The TradFi calendars job (holidays and half-days of SPYUSDT, XAUUSDT, EURUSDT), which
       also tells the simulated feed when its asset is closed.
    3. The wallets' jobs (``[wallets]`` with chain "rpc" and ``database_url``; decisions
       §27): per network the deposit follower (blocks in, ``Deposit`` out), the sender (sign,
       record, broadcast, follow, complete or refund) and the sweeps, over the shared
       PostgreSQL database, submitting to the leader's own `Sequencer` (``execute`` from the
       jobs' worker threads). The wallets are opened on the first leadership (the keystore's
       scrypt is paid once) and kept; their submit goes to the sequencer of the current
       leadership and raises `SequencerStopped` between leaderships.
    4. The shared-database services (with ``database_url``; decisions §28), as the embedded
       venue's jobs: the compliance sync (restrictions, periodic review) and the sanctions
       lists' reload with its rescreen (`leader_services.LeaderShared`); the volume tiers
       (executions from the projector's read models, tiers from this node's engine, figures
       kept for the gateways); the daily proof of reserves and liabilities and the proofs
       operators ask a gateway for (the leader's sequencer images its engine; published in
       the database). Compliance's withdrawal policy is the wallets' (`CompliancePolicy`).
    5. Users' trading bots and copy trading with its profit share (with ``database_url``;
       decisions §29; `cluster_trading.LeaderTrading`): fresh services each leadership, fed
       by its sequencer's batches and seeded from the read models at an offset at least its
       durable seq when it subscribed, so the new leader has folded every order the old one placed
       before it acts (deterministic clOrdIDs: no fill copied twice, no grid order placed
       twice); the gateways serve their routes by request to this node.
Why the leader (decisions §22, §27): the lease already says who that is, with failover, and the
fence keeps a deposed leader's submissions out of the stream; the feeds submit straight to
the sequencer in-process. A new leader starts them afresh, like the embedded venue after a
restart (a simulated index walk starts again from its seed; a live or replayed feed goes on).
The wallets' jobs resume from the database: a deposit's ``Deposit`` carries its chain-derived
transfer id (``network:tx:log_index``), so a deposit a dead leader credited without marking its
row is answered "duplicate" by the core and the row catches up; a withdrawal is taken from
``Queued`` by a compare-and-set before it is signed, so two leaders (one deposed but not yet
aware) never sign one withdrawal twice; a withdrawal request a gateway left ``Requested`` is
settled only once ``RECOVER_AFTER_NS`` old (a gateway's request in flight is not).

The shared-database jobs are idempotent across a failover (decisions §28): a tier is set
only where the engine's differs, a restriction only where ``kyc_applied`` differs, a proof
is write-once by height and the daily one skipped once the database holds one of the day.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Final

from perpetua.core.commands import Command
from perpetua.core.instruments import InstrumentSpec
from perpetua.feeds import IndexPublisher
from perpetua.runtime.cluster_trading import LeaderTrading
from perpetua.runtime.config import FeedsConfig, FeesConfig, PorlConfig, WalletsConfig
from perpetua.runtime.indices import build_index_feeds
from perpetua.runtime.leader_services import LeaderShared
from perpetua.runtime.venue import feed_calendar, tradable
from perpetua.runtime.wallets import ChainSetup
from perpetua.sequencer import Result, Sequencer, SequencerStopped, SystemClock
from perpetua.sequencer.replica import Replica
from perpetua.services.calendars import CALENDAR_CHECK_INTERVAL_S, CalendarJob
from perpetua.services.compliance import ComplianceConfig
from perpetua.services.jobs import PeriodicJob

__all__ = ["RECOVER_AFTER_NS", "LeaderServices"]

log = logging.getLogger("perpetua.cluster.leader")

# a withdrawal request a gateway left ``Requested`` this long is settled (released): longer than
# a gateway's submit can take (no leader for NO_LEADER_WAIT_S, then APPLIED_WAIT_S for its
# replica), so a request still in flight is never released under it
RECOVER_AFTER_NS: Final = 120 * 10**9
SUBMIT_WAIT_S: Final = 30.0  # a wallet job's command: durable within this, else the step fails


class JobsOnly:
    """The wallets' `Verifier` on the leader: its jobs never ask for a second factor (requests
    and the address book are the gateways'), so none is ever accepted here."""

    def second_factor_ok(self, user_id: int, code: str) -> bool:
        return False

    def send_notice(self, user_id: int, subject: str, body: str) -> None:
        log.warning("notice to user %d not sent from the leader: %s", user_id, subject)


class LeaderServices:
    """`transport.node.LeaderDuties` for ``perpetua run --cluster`` (role sequencer)."""

    def __init__(
        self,
        feeds: FeedsConfig,
        wallets: WalletsConfig | None = None,
        data_dir: Path = Path("data"),
        database_url: str = "",
        *,
        compliance: ComplianceConfig | None = None,
        fees: FeesConfig | None = None,
        porl: PorlConfig | None = None,
        trading: LeaderTrading | None = None,
    ) -> None:
        self.feeds = feeds
        self.trading = trading  # bots and copy trading (item 5)
        self.wallets_config = wallets or WalletsConfig()
        self.data_dir = data_dir
        self.database_url = database_url
        self.chain: ChainSetup | None = None  # opened on the first leadership, then kept
        self.shared = (
            LeaderShared(
                database_url,
                data_dir,
                compliance or ComplianceConfig(),
                fees or FeesConfig(),
                porl or PorlConfig(),
                lambda: self._sequencer,
            )  # fmt: skip
            if database_url
            else None
        )
        self.publisher: IndexPublisher | None = None
        self._sequencer: Sequencer | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def _submit(self, command: Command) -> Result:
        """The wallets' submit: the sequencer of the current leadership (from worker threads)."""
        sequencer = self._sequencer
        if sequencer is None:
            raise SequencerStopped("this node does not lead")
        return sequencer.execute(command, SUBMIT_WAIT_S)

    def _open_wallets(self) -> ChainSetup | None:
        from perpetua.runtime.wallets import open_wallets
        from perpetua.store import migrate_once, open_engine

        migrate_once(self.database_url)
        return open_wallets(
            self.wallets_config, self.data_dir, open_engine(self.database_url), self._submit,
            JobsOnly(), recover_after_ns=RECOVER_AFTER_NS,
            policy=None if self.shared is None else self.shared.policy(),
        )  # fmt: skip

    def read_replica(self, replica: Replica) -> None:
        if self.shared is not None:
            self.shared.read_replica(replica)

    async def start(self, sequencer: Sequencer, instruments: tuple[InstrumentSpec, ...]) -> None:
        clock = SystemClock()
        feeds = build_index_feeds(self.feeds, tradable(instruments), time.time_ns())
        self.publisher = IndexPublisher(feeds.sources, sequencer, clock, feeds.board)
        self.publisher.start()
        calendars = CalendarJob(
            sequencer.submit_async, clock.now_ns, on_calendar=feed_calendar(feeds, instruments)
        )
        job = PeriodicJob("tradfi_calendars", CALENDAR_CHECK_INTERVAL_S, calendars.step)
        self._stopping = asyncio.Event()
        self._sequencer = sequencer
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(job.run(self._stopping))]
        if self.wallets_config.chain != "none" or self.shared is not None:
            # not awaited here: the node renews its lease once start returns, and opening the
            # wallets (migrations, the keystore's scrypt) can take longer than the lease lasts
            self._tasks.append(
                loop.create_task(self._database_jobs(self._stopping, sequencer, instruments))
            )
        if self.trading is not None:  # not awaited either: it waits for the read models
            run = self.trading.run(sequencer, instruments, self._stopping)
            self._tasks.append(loop.create_task(_logged("bots and copy trading", run)))
        log.warning("leader services started: index feeds for %d sources", len(feeds.sources))

    async def _database_jobs(
        self,
        stopping: asyncio.Event,
        sequencer: Sequencer,
        instruments: tuple[InstrumentSpec, ...],
    ) -> None:
        """The wallets' jobs and the shared-database services (items 3-4), opened first (in a
        thread: migrations, the keystore's scrypt) on the first leadership."""
        shared = self.shared
        jobs: list[PeriodicJob] = []
        try:
            if shared is not None:
                await asyncio.to_thread(shared.open)
            if self.chain is None and self.wallets_config.chain != "none":
                self.chain = await asyncio.to_thread(self._open_wallets)
            if stopping.is_set():
                return
            if self.chain is not None:
                jobs.extend(self.chain.wallets.jobs(self.wallets_config.poll_interval_s))
            if shared is not None:
                board = None if self.publisher is None else self.publisher.board
                jobs.extend(shared.jobs(sequencer, instruments, self.chain, board))
        except Exception:  # logged here: `stop` gathers this task's outcome silently
            log.exception("the leader's jobs did not start")
            raise
        log.warning("leader jobs started: %s", ", ".join(j.name for j in jobs))
        await asyncio.gather(*(job.run(stopping) for job in jobs))

    async def stop(self) -> None:
        self._stopping.set()
        self._sequencer = None  # what a job submits from here on is refused
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            await asyncio.get_running_loop().run_in_executor(None, publisher.stop)
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks, return_exceptions=True)

    def close(self) -> None:
        """At the process's end: the wallets' RPC clients and database."""
        if self.trading is not None:
            self.trading.close()
        chain, self.chain = self.chain, None
        if chain is not None:
            chain.close()
            chain.wallets.engine.dispose()
        if self.shared is not None:
            self.shared.close()


async def _logged(what: str, work: Coroutine[Any, Any, None]) -> None:
    """``work``, its failure logged (``stop`` gathers the task's outcome silently)."""
    try:
        await work
    except Exception:
        log.exception("%s stopped with an error", what)
        raise
