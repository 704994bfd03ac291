"""``perpetua run --cluster cluster.toml``: one process of a cluster, by its role.

The same parts as the embedded venue (`venue`), wired differently:
    sequencer  a `transport.node.SequencerNode`: a standby replica until it takes the lease,
               then the `Sequencer` over a `JetStreamJournal` (the stream is the journal).
    gateway    `gateway.create_app` over a `ClusterCommandPort` (commands to the leader over
               NATS request/reply; batches from its own replica of the stream), read models on
               PostgreSQL; several gateways share a port with SO_REUSEPORT.
    projector  the read-model `Projector` fed by a replica of the stream, its offset stored in
               the same transaction as the rows it writes.
Sequencers and the projector serve ``GET /metrics`` on ``metrics_port`` when set (gateways on
their own port): `metrics.ClusterSequencerCollector`, `metrics.ClusterProjectorCollector`.
Each role runs until SIGINT or SIGTERM and then stops cleanly (a leader releases its lease, so a
standby takes over at once).
"""

import asyncio
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from perpetua.runtime.cluster_config import ClusterConfig
from perpetua.transport.node import NodeConfig, SequencerNode
from perpetua.transport.stream import ClusterNames

__all__ = ["run_cluster", "sequencer_node"]

log = logging.getLogger("perpetua.cluster")


def _logging(level: str) -> None:
    logging.basicConfig(
        stream=sys.stderr,
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def sequencer_node(config: ClusterConfig) -> SequencerNode:
    """A sequencer whose leadership runs the services that submit commands (index feeds,
    calendars, wallets, compliance, volume tiers, proofs, bots, copy trading: `cluster_leader`)."""
    from perpetua.runtime.cluster_leader import LeaderServices
    from perpetua.runtime.cluster_trading import LeaderTrading
    from perpetua.runtime.leader_services import LEADER_SNAPSHOT_DIR

    images = None
    if config.database_url:  # the proofs' engine images (`leader_services`, 3)
        images = Path(config.data_dir) / LEADER_SNAPSHOT_DIR
        images.mkdir(mode=0o700, parents=True, exist_ok=True)
    trading = None
    if config.database_url:  # bots and copy trading keep their state there
        trading = LeaderTrading(
            config.servers, ClusterNames(config.prefix), config.name, config.database_url
        )
    return SequencerNode(
        NodeConfig(
            name=config.name,
            servers=config.servers,
            names=ClusterNames(config.prefix),
            replicas=config.replicas,
            lease_ttl_s=config.lease_ttl_s,
            snapshot_every=config.snapshot_every,
            leader_snapshot_dir=images,
        ),
        duties=LeaderServices(
            config.feeds,
            config.wallets,
            Path(config.data_dir),
            config.database_url,
            compliance=config.compliance,
            fees=config.fees,
            porl=config.porl,
            trading=trading,
        ),  # fmt: skip
    )


async def _until_signalled(run: "asyncio.Future[None] | None" = None) -> asyncio.Event:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, stopping.set)
    return stopping


async def _sequencer(config: ClusterConfig) -> None:
    from perpetua.runtime.cluster_leader import LeaderServices

    stopping = await _until_signalled()
    node = sequencer_node(config)
    prepared = None
    duties = node.duties
    if isinstance(duties, LeaderServices) and duties.trading is not None:
        # connected and migrated while standing by: a failover's bots need not wait for it
        prepared = asyncio.get_running_loop().create_task(_prepare(duties.trading.prepare()))
    stop_metrics = None
    if config.metrics_port:
        from prometheus_client import CollectorRegistry

        from perpetua.runtime.metrics import ClusterSequencerCollector, serve_metrics

        registry = CollectorRegistry(auto_describe=False)
        registry.register(ClusterSequencerCollector(node))
        stop_metrics = serve_metrics(registry, config.server.host, config.metrics_port)
    try:
        await node.run(stopping)
    finally:
        if prepared is not None:
            prepared.cancel()
        if isinstance(duties, LeaderServices) and duties.trading is not None:
            await duties.trading.disconnect()
        if stop_metrics is not None:
            stop_metrics()
        duties = node.duties
        if isinstance(duties, LeaderServices):
            duties.close()


async def _prepare(work: Coroutine[Any, Any, None]) -> None:
    try:
        await work
    except Exception:  # its leadership prepares again, and logs what fails then
        log.exception("bots and copy trading: not prepared at start")


def run_cluster(config: ClusterConfig) -> int:
    _logging(config.server.log_level)
    if config.role == "sequencer":
        asyncio.run(_sequencer(config))
    elif config.role == "gateway":
        from perpetua.runtime.cluster_gateway import run_gateway

        run_gateway(config)
    else:
        from perpetua.runtime.cluster_projector import run_projector

        asyncio.run(run_projector(config))
    log.info("%s %s stopped cleanly", config.role, config.name)
    return 0
