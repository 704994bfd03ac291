"""`LeaderServices`: the background services that submit commands, run by the leading sequencer
of a cluster (`transport.node.LeaderDuties`), so exactly once in the cluster.

What runs, as in the embedded venue (`venue.open_venue`):
    1. The index feeds (``[feeds]`` of cluster.toml, the venue config's table; simulated by
       default): an `IndexPublisher` over the leader's own `Sequencer` (no NATS hop), for every
       tradable market of the engine as it was when the node took the lease. Marks move.
    2. The TradFi calendars job (holidays and half-days of SPYUSDT, XAUUSDT, EURUSDT), which
       also tells the simulated feed when its asset is closed.
Why the leader (decisions §22): the lease already says who that is, with failover, and the
fence keeps a deposed leader's submissions out of the stream; the feeds submit straight to
the sequencer in-process. A new leader starts them afresh, like the embedded venue after a
restart (a simulated index walk starts again from its seed; a live or replayed feed goes on).

Not here (they need the accounts database and the read models: a ``services`` role would run
them; docs/cluster.md): volume tiers, bots, copy trading, wallets, compliance sync, mail retry,
proof of reserves.
"""

from __future__ import annotations

import asyncio
import logging
import time

from perpetua.core.instruments import InstrumentSpec
from perpetua.feeds import IndexPublisher
from perpetua.runtime.config import FeedsConfig
from perpetua.runtime.indices import build_index_feeds
from perpetua.runtime.venue import feed_calendar, tradable
from perpetua.sequencer import Sequencer, SystemClock
from perpetua.services.calendars import CALENDAR_CHECK_INTERVAL_S, CalendarJob
from perpetua.services.jobs import PeriodicJob

__all__ = ["LeaderServices"]

log = logging.getLogger("perpetua.cluster.leader")


class LeaderServices:
    """`transport.node.LeaderDuties` for ``perpetua run --cluster`` (role sequencer)."""

    def __init__(self, feeds: FeedsConfig) -> None:
        self.feeds = feeds
        self.publisher: IndexPublisher | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

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
        self._tasks = [asyncio.get_running_loop().create_task(job.run(self._stopping))]
        log.warning("leader services started: index feeds for %d sources", len(feeds.sources))

    async def stop(self) -> None:
        self._stopping.set()
        publisher, self.publisher = self.publisher, None
        if publisher is not None:
            await asyncio.get_running_loop().run_in_executor(None, publisher.stop)
        tasks, self._tasks = self._tasks, []
        await asyncio.gather(*tasks, return_exceptions=True)
