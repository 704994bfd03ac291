"""The projector role of a cluster: the read-model `Projector` fed by a replica of the stream.

Exactly once: the projector stores its offset (``projector_state.last_seq``) in the same SQL
transaction as the rows it writes, skips every record at or below it, and refuses a gap
(`store.projector`). A restarted projector restores the newest snapshot at or below its stored
offset (`transport.snapshots`; without one, a fresh engine at the stream's start), follows the
stream from after it into its replica (the events are derived, not stored) and writes only what
follows its stored offset: no row twice, none missing. The markets it knows (futures series
defined, futures listed at runtime) are the restored engine's, then the stream's
(`Projector._learn`). An empty database replays from the start: every row is needed. A failed
write (database down) stops the process with an error; restarting it resumes from the offset.
"""

import asyncio
import contextlib
import logging
import signal
from typing import Final

import nats.js.errors
from nats.js import JetStreamContext
from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from perpetua.runtime.cluster_config import ClusterConfig
from perpetua.runtime.metrics import ClusterProjectorCollector, CommandCounts, serve_metrics
from perpetua.sequencer import Applied, default_engine
from perpetua.store import Projector, migrate_once, open_engine
from perpetua.transport.node import connect
from perpetua.transport.replica import Replica, StreamFollower
from perpetua.transport.snapshots import latest_snapshot
from perpetua.transport.stream import ClusterNames, wait_for_stream

__all__ = ["run_projector", "start_projection"]

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
    names = ClusterNames(config.prefix)
    nc = await connect(config.servers, f"projector-{config.name}")
    js = nc.jetstream(timeout=5)
    await wait_for_stream(js, names, STREAM_WAIT_S)
    projector, replica = await start_projection(js, names, sql)
    log.warning(
        "projector %s resumes after seq %d, its replica at seq %d",
        config.name, projector.last_seq, replica.applied_seq,
    )  # fmt: skip

    def project(batch: list[Applied]) -> None:
        projector.project([(a.seq, a.ts_ns, a.command, a.events) for a in batch])

    counts = CommandCounts()

    def project_and_count(batch: list[Applied]) -> None:
        project(batch)
        counts.on_batch(batch)

    follower = StreamFollower(js, names, replica, project_and_count)
    stop_metrics = None
    if config.metrics_port:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ClusterProjectorCollector(projector, replica, follower, counts))
        stop_metrics = serve_metrics(registry, config.server.host, config.metrics_port)
    await follower.start()
    try:
        while not stopping.is_set() and follower.failure is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), CHECK_INTERVAL_S)
        if follower.failure is not None:
            raise follower.failure
    finally:
        if stop_metrics is not None:
            stop_metrics()
        await follower.stop()
        await nc.close()
        sql.dispose()


async def start_projection(
    js: JetStreamContext, names: ClusterNames, sql: Engine
) -> tuple[Projector, Replica]:
    """The projector over ``sql`` and the replica that feeds it: the replica restored from the
    newest snapshot at or below the stored offset, the projector knowing that engine's
    instruments and futures series (what the records it skips would have taught it)."""
    replica = await _start_replica(js, names, Projector(sql).last_seq)
    engine = replica.engine
    return Projector(sql, tuple(engine.instruments), dict(engine.state.series)), replica


async def _start_replica(js: JetStreamContext, names: ClusterNames, offset: int) -> Replica:
    """From the newest snapshot at or below the stored offset (the records after it must
    reach the projector), else from the stream's start."""
    if offset <= 0:
        return Replica(default_engine())
    try:
        store = await js.object_store(names.snapshot_bucket)
    except nats.js.errors.BucketNotFoundError:
        return Replica(default_engine())
    found = await latest_snapshot(store, default_engine, max_seq=offset)
    return Replica(default_engine()) if found is None else found[0]
