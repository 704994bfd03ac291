"""The projector role of a cluster: the read-model `Projector` fed by a replica of the stream.

Exactly once: the projector stores its offset (``projector_state.last_seq``) in the same SQL
transaction as the rows it writes, skips every record at or below it, and refuses a gap
(`store.projector`). A restarted projector replays the stream from the start into its replica
(the events are derived, not stored) and writes only what follows its stored offset: no row twice,
none missing. A failed write (database down) stops the process with an error; restarting it
resumes from the offset.
"""

import asyncio
import contextlib
import logging
import signal
from typing import Final

from perpetua.runtime.cluster_config import ClusterConfig
from perpetua.runtime.cluster_gateway import migrate_once
from perpetua.sequencer import Applied, default_engine
from perpetua.store import Projector, open_engine
from perpetua.transport.node import connect
from perpetua.transport.replica import Replica, StreamFollower
from perpetua.transport.stream import ClusterNames, wait_for_stream

__all__ = ["run_projector"]

log = logging.getLogger("perpetua.cluster.projector")
CHECK_INTERVAL_S: Final = 0.2
STREAM_WAIT_S: Final = 120.0


async def run_projector(config: ClusterConfig) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stopping.set)
    if not config.database_url:
        raise ValueError("database_url: the projector needs the read models' database")
    await loop.run_in_executor(None, migrate_once, config.database_url)
    sql = open_engine(config.database_url)
    projector = Projector(sql)
    log.warning("projector %s resumes after seq %d", config.name, projector.last_seq)

    def project(batch: list[Applied]) -> None:
        projector.project([(a.seq, a.ts_ns, a.command, a.events) for a in batch])

    names = ClusterNames(config.prefix)
    nc = await connect(config.servers, f"projector-{config.name}")
    js = nc.jetstream(timeout=5)
    await wait_for_stream(js, names, STREAM_WAIT_S)
    follower = StreamFollower(js, names, Replica(default_engine()), project)
    await follower.start()
    try:
        while not stopping.is_set() and follower.failure is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), CHECK_INTERVAL_S)
        if follower.failure is not None:
            raise follower.failure
    finally:
        await follower.stop()
        await nc.close()
        sql.dispose()
