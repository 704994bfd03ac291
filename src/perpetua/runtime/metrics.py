"""``/metrics``: the venue's figures in Prometheus's text format (prometheus-client).

Nothing is counted on a request's path that was not counted already: the sequencer, the
journal, the fan-out and the rate limiter keep plain integer counters, and ``VenueCollector``
reads them when Prometheus scrapes. The one thing counted here is per command type, from a
batch subscriber on the sequencer's committer thread (a dict increment per command).

Series (all prefixed ``perpetua_``):
- ``commands_total{type}``: durable commands by type; ``liquidations_total``: positions taken
  over by the insurance fund;
- ``sequencer_queue_depth``, ``sequencer_applied_seq``, ``sequencer_durable_seq``,
  ``sequencer_overloaded_total``, ``sequencer_batches_total``;
- ``journal_commit_seconds``: a histogram of commit latencies (write + sync), cumulative since
  start: each scrape adds the batches committed since the last one (from the sequencer's recent
  latencies; a scrape interval with more batches than it keeps counts the ones it kept);
  ``journal_fsync_seconds_total``, ``journal_fsyncs_total``, ``journal_fsync_max_seconds``;
- ``projector_lag_commands``: durable seq minus the read models' seq;
- ``websocket_sessions``, ``websocket_messages_total``, ``websocket_slow_consumers_total``;
- ``rate_limit_rejections_total``.

A cluster gateway (``ClusterGatewayCollector``) has no sequencer of its own: it shows the
commands its replica applied, ``replica_applied_seq``, the projector's lag behind its replica,
and its WebSocket and rate-limit figures.

A cluster sequencer (``ClusterSequencerCollector``, served by `serve_metrics` on its
``metrics_port``) shows its role (``sequencer_leader``, ``sequencer_role{role}``), how often it
took the lease (``sequencer_leaderships_total``: the failovers it won), stepped down and rebuilt,
its replica (``replica_applied_seq``, ``replica_stream_seq``, ``replica_lag_messages``: stream
messages not yet applied, 0 while it leads) and the snapshots it wrote or restored; while it
leads, the sequencer's figures above (``journal_commit_seconds``: publish and acknowledgement,
the replicated journal's commit) and the publish figures (``journal_publish_seconds_total``,
``journal_publishes_total``, ``journal_publish_retries_total``, ``journal_publish_max_seconds``).
A cluster projector (``ClusterProjectorCollector``) shows its replica, its lag, the commands it
projected by type and its stored offset (``projector_stored_seq``).
"""

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Final, Protocol

from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from perpetua.core.events import PositionLiquidated
from perpetua.gateway.state import Gateway
from perpetua.sequencer import Applied, Sequencer
from perpetua.store import Projector, ProjectorThread

if TYPE_CHECKING:  # runtime imports would load NATS into the embedded venue
    from perpetua.transport.node import SequencerNode
    from perpetua.transport.replica import Replica, StreamFollower

__all__ = [
    "COMMIT_BUCKETS_S",
    "ClusterGatewayCollector",
    "ClusterProjectorCollector",
    "ClusterSequencerCollector",
    "CommandCounts",
    "VenueCollector",
    "metrics_text",
    "serve_metrics",
]

NS_PER_S: Final = 1_000_000_000
COMMIT_BUCKETS_S: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0)
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"


class CommandCounts:
    """Durable commands by type and liquidations, counted from the sequencer's batches."""

    def __init__(self) -> None:
        self.by_type: dict[str, int] = {}
        self.liquidations = 0
        self._lock = threading.Lock()

    def on_batch(self, batch: Sequence[Applied]) -> None:
        with self._lock:
            by_type = self.by_type
            for applied in batch:
                name = type(applied.command).__name__
                by_type[name] = by_type.get(name, 0) + 1
                for event in applied.events:
                    if type(event) is PositionLiquidated:
                        self.liquidations += 1

    def read(self) -> tuple[dict[str, int], int]:
        with self._lock:
            return dict(self.by_type), self.liquidations


class VenueCollector(Collector):
    """The embedded venue's figures: one process with the sequencer, projector and gateway."""

    def __init__(
        self,
        sequencer: Sequencer,
        gateway: Gateway,
        projector: ProjectorThread,
        counts: CommandCounts,
    ) -> None:
        self.sequencer = sequencer
        self.gateway = gateway
        self.projector = projector
        self.counts = counts
        self._commit = _CommitHistogram()

    def collect(self) -> Iterator[Metric]:
        yield from command_metrics(self.counts)
        yield from sequencer_metrics(self.sequencer, self._commit)
        lag = max(0, self.sequencer.stats().durable_seq - self.projector.projector.last_seq)
        yield _projector_lag(lag)
        yield from gateway_metrics(self.gateway)


class ClusterGatewayCollector(Collector):
    """A cluster gateway's figures (``/metrics`` on each gateway, about that process): the
    commands its replica applied since it started, by type; its replica's seq; how far the
    shared read models (the projector's stored offset) are behind it; its WebSockets and
    rate-limit refusals. The leader's sequencer figures are the sequencer node's own."""

    def __init__(
        self,
        gateway: Gateway,
        counts: CommandCounts,
        replica_seq: Callable[[], int],
        projected_seq: Callable[[], int],
        restored_seq: Callable[[], int] = lambda: 0,
    ) -> None:
        self.gateway = gateway
        self.counts = counts
        self.replica_seq = replica_seq
        self.projected_seq = projected_seq
        self.restored_seq = restored_seq

    def collect(self) -> Iterator[Metric]:
        yield from command_metrics(self.counts)
        seq = self.replica_seq()
        yield GaugeMetricFamily(
            "perpetua_replica_applied_seq", "Last seq this process's replica applied", value=seq
        )
        yield _projector_lag(max(0, seq - self.projected_seq()))
        yield _restored(self.restored_seq())
        yield from gateway_metrics(self.gateway)


NODE_ROLES: Final = ("starting", "standby", "leader", "stepping-down", "stopped")


class ClusterSequencerCollector(Collector):
    """A cluster sequencer's figures (see the module docstring). Read from the scraping
    thread: plain attributes and the sequencer's own racy stats, nothing locked."""

    def __init__(self, node: "SequencerNode") -> None:
        self.node = node
        self._commit = _CommitHistogram()
        self._sequencer: Sequencer | None = None

    def collect(self) -> Iterator[Metric]:
        node = self.node
        role = node.role
        leading = role == "leader"
        roles = GaugeMetricFamily(
            "perpetua_sequencer_role", "This node's role (1 for the current)", labels=["role"]
        )
        for name in NODE_ROLES:
            roles.add_metric([name], 1 if name == role else 0)
        yield roles
        yield GaugeMetricFamily(
            "perpetua_sequencer_leader", "1 while this node leads", value=int(leading)
        )
        yield CounterMetricFamily(
            "perpetua_sequencer_leaderships",
            "Times this node took the lease (failovers it won, and its first start)",
            value=node.leader_count,
        )
        yield GaugeMetricFamily(
            "perpetua_sequencer_leader_since_seconds",
            "When this node last took the lease (Unix time; 0: never)",
            value=node.leader_since_unix_ms / 1000,
        )
        yield CounterMetricFamily(
            "perpetua_sequencer_step_downs", "Leaderships ended", value=node.step_downs
        )
        yield CounterMetricFamily(
            "perpetua_sequencer_rebuilds",
            "Engines rebuilt from the stream after a failed leadership",
            value=node.rebuilds,
        )
        yield CounterMetricFamily(
            "perpetua_snapshots_written", "Snapshots this node wrote", value=node.snapshots_written
        )
        yield _restored(node.restored_seq)
        sequencer = node.sequencer
        journal = node.journal
        if leading and sequencer is not None and journal is not None:
            if sequencer is not self._sequencer:  # a new leadership: its counts start at 0
                self._sequencer = sequencer
                self._commit.batches_seen = 0
            stats = sequencer.stats()
            yield from _replica_metrics(stats.durable_seq, journal.last_stream_seq, 0)
            yield from sequencer_metrics(sequencer, self._commit)
            yield from _publish_metrics(journal)
        else:
            follower = node.follower
            replica = node.replica
            lag = 0 if follower is None else follower.pending
            yield from _replica_metrics(replica.applied_seq, replica.stream_seq, lag)
            yield self._commit.metric()


class ClusterProjectorCollector(Collector):
    """A cluster projector's figures: its replica, its lag, what it projected, its offset."""

    def __init__(
        self,
        projector: Projector,
        replica: "Replica",
        follower: "StreamFollower",
        counts: CommandCounts,
    ) -> None:
        self.projector = projector
        self.replica = replica
        self.follower = follower
        self.counts = counts

    def collect(self) -> Iterator[Metric]:
        yield from command_metrics(self.counts)
        replica = self.replica
        yield from _replica_metrics(replica.applied_seq, replica.stream_seq, self.follower.pending)
        yield GaugeMetricFamily(
            "perpetua_projector_stored_seq",
            "The read models' stored offset (last seq written)",
            value=self.projector.last_seq,
        )


def _restored(seq: int) -> Metric:
    return GaugeMetricFamily(
        "perpetua_snapshot_restored_seq",
        "Seq of the snapshot the replica last started from (0: message 1)",
        value=seq,
    )


def _replica_metrics(applied_seq: int, stream_seq: int, lag: int) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "perpetua_replica_applied_seq", "Last seq this process's replica applied", value=applied_seq
    )
    yield GaugeMetricFamily(
        "perpetua_replica_stream_seq", "Last stream message applied", value=stream_seq
    )
    yield GaugeMetricFamily(
        "perpetua_replica_lag_messages", "Stream messages not yet applied", value=lag
    )


class _PublishStats(Protocol):
    publish_count: int
    retry_count: int
    publish_ns_total: int
    publish_ns_max: int


def _publish_metrics(journal: _PublishStats) -> Iterator[Metric]:
    yield CounterMetricFamily(
        "perpetua_journal_publishes", "Stream messages published", value=journal.publish_count
    )
    yield CounterMetricFamily(
        "perpetua_journal_publish_retries",
        "Publish attempts tried again (no acknowledgement in time)",
        value=journal.retry_count,
    )
    yield CounterMetricFamily(
        "perpetua_journal_publish_seconds",
        "Time from publishing a message to JetStream's acknowledgement",
        value=journal.publish_ns_total / NS_PER_S,
    )
    yield GaugeMetricFamily(
        "perpetua_journal_publish_max_seconds",
        "Slowest publish",
        value=journal.publish_ns_max / NS_PER_S,
    )


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> Callable[[], None]:
    """``GET /metrics`` on ``host:port`` from a daemon thread (prometheus-client's server: the
    roles without a web app); the function that stops it."""
    server, thread = start_http_server(port, host, registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return stop


def _projector_lag(lag: int) -> Metric:
    return GaugeMetricFamily(
        "perpetua_projector_lag_commands", "Durable commands not yet in the read models", value=lag
    )


def command_metrics(counts: CommandCounts) -> Iterator[Metric]:
    by_type, liquidations = counts.read()
    commands = CounterMetricFamily("perpetua_commands", "Durable commands by type", labels=["type"])
    for name, count in sorted(by_type.items()):
        commands.add_metric([name], count)
    yield commands
    yield CounterMetricFamily(
        "perpetua_liquidations", "Positions taken over by the insurance fund", value=liquidations
    )


def sequencer_metrics(sequencer: Sequencer, commit: "_CommitHistogram") -> Iterator[Metric]:
    """The sequencer's and its journal's figures."""
    stats = sequencer.stats()
    yield GaugeMetricFamily(
        "perpetua_sequencer_queue_depth", "Commands waiting", value=stats.queue_depth
    )
    yield GaugeMetricFamily(
        "perpetua_sequencer_applied_seq", "Last applied seq", value=stats.applied_seq
    )
    yield GaugeMetricFamily(
        "perpetua_sequencer_durable_seq", "Last durable seq", value=stats.durable_seq
    )
    yield CounterMetricFamily(
        "perpetua_sequencer_overloaded", "Commands shed (503)", value=stats.overloaded_count
    )
    yield CounterMetricFamily(
        "perpetua_sequencer_batches", "Journal batches committed", value=stats.batch_count
    )
    commit.add_new(stats.batch_count, sequencer.commit_latencies_ns())
    yield commit.metric()
    if stats.fsync is not None:
        yield CounterMetricFamily(
            "perpetua_journal_fsyncs", "Journal syncs", value=stats.fsync.fsync_count
        )
        yield CounterMetricFamily(
            "perpetua_journal_fsync_seconds",
            "Time spent syncing",
            value=stats.fsync.total_ns / NS_PER_S,
        )
        yield GaugeMetricFamily(
            "perpetua_journal_fsync_max_seconds",
            "Slowest sync",
            value=stats.fsync.max_ns / NS_PER_S,
        )


def gateway_metrics(gateway: Gateway) -> Iterator[Metric]:
    """The gateway's own figures: WebSocket sessions and messages, rate-limit refusals."""
    fanout = gateway.fanout
    yield GaugeMetricFamily(
        "perpetua_websocket_sessions", "Open WebSocket sessions", value=len(fanout.sessions)
    )
    yield CounterMetricFamily(
        "perpetua_websocket_messages", "WebSocket messages sent", value=fanout.messages_sent
    )
    yield CounterMetricFamily(
        "perpetua_websocket_slow_consumers",
        "Sessions closed for falling behind",
        value=fanout.slow_consumers_dropped,
    )
    yield CounterMetricFamily(
        "perpetua_rate_limit_rejections",
        "Requests answered 429",
        value=gateway.limits.rejected_count,
    )


class _CommitHistogram:
    """Journal commit latencies as a Prometheus histogram: counts only ever grow."""

    def __init__(self) -> None:
        self.bucket_counts = [0] * len(COMMIT_BUCKETS_S)
        self.count = 0
        self.sum_ns = 0
        self.batches_seen = 0

    def add_new(self, batch_count: int, recent_ns: Sequence[int]) -> None:
        """Add the latencies of the batches committed since the last call (one per batch)."""
        new = max(0, batch_count - self.batches_seen)
        self.batches_seen = max(self.batches_seen, batch_count)
        for sample_ns in recent_ns[len(recent_ns) - min(new, len(recent_ns)) :]:
            self.count += 1
            self.sum_ns += sample_ns
            for index, bound in enumerate(COMMIT_BUCKETS_S):
                if sample_ns <= bound * NS_PER_S:
                    self.bucket_counts[index] += 1

    def metric(self) -> Metric:
        bounds = zip(COMMIT_BUCKETS_S, self.bucket_counts, strict=True)
        buckets = [(str(bound), float(n)) for bound, n in bounds]
        buckets.append(("+Inf", float(self.count)))
        return HistogramMetricFamily(
            "perpetua_journal_commit_seconds",
            "Journal commit latencies (write and sync)",
            buckets=buckets,
            sum_value=self.sum_ns / NS_PER_S,
        )


def metrics_text(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
