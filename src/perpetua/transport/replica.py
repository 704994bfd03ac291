"""`StreamFollower`: feeds a `sequencer.replica.Replica` from the JetStream journal stream, live,
and `fetch_into`, which catches one up by direct reads.

Standby sequencers, gateways and projectors all hold a replica: the same records in the same
order give the same events and the same ``state_hash()`` on every node (the core is
deterministic), so a standby's state equals the leader's at every message boundary and a
gateway builds its views from the events its replica derives.

Invariants
    - Stream sequences are applied consecutively (``stream_seq`` + 1 each message) and record
      seqs consecutively (``applied_seq`` + 1 each record): a gap or a repeat is a programmer
      error (the stream is fenced, `journal`), never skipped silently.
    - Only one thread applies at a time (the follower's loop, or the caller while no follower
      runs).
    - ``checkpoints`` holds ``(seq, state_hash)`` at message boundaries, one per
      ``checkpoint_every`` seqs (0: none), the newest ``CHECKPOINTS_KEPT``: what operators and
      tests compare across nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Final

import nats.errors
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError, ServiceUnavailableError

from perpetua.sequencer import Applied
from perpetua.sequencer.replica import Replica
from perpetua.transport.stream import ClusterNames, decode_batch

__all__ = ["Replica", "StreamFollower", "fetch_into", "last_stream_seq"]

CATCH_UP_POLL_S: Final = 0.01
# Creating the consumer is a JetStream API request: with a node lost or a leader being elected
# it can time out, or the node answers 503 "JetStream system temporarily unavailable" (seen when
# the lost nodes were coming back); the follower tries again for this long before it gives up.
SUBSCRIBE_WAIT_S: Final = 60.0
SUBSCRIBE_RETRY_S: Final = 0.5
_TRANSIENT: Final = (
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    TimeoutError,
    ServiceUnavailableError,
)
AppliedCallback = Callable[[list[Applied]], None]


async def last_stream_seq(js: JetStreamContext, names: ClusterNames) -> int:
    info = await js.stream_info(names.stream)
    return int(info.state.last_seq)


class StreamFollower:
    """Applies every new stream message to a replica on the loop it was started on."""

    def __init__(
        self,
        js: JetStreamContext,
        names: ClusterNames,
        replica: Replica,
        on_applied: AppliedCallback | None = None,
    ) -> None:
        self._js = js
        self._names = names
        self.replica = replica
        self._on_applied = on_applied
        self._subscription: Subscription | None = None
        self._advanced = asyncio.Condition()
        self.failure: BaseException | None = None
        # messages in the stream after the last one applied, as JetStream said with it (the
        # replica's lag; read racily by /metrics)
        self.pending = 0

    async def start(self, wait_s: float = SUBSCRIBE_WAIT_S) -> None:
        """Subscribe from the message after the replica's; a request that times out (a NATS
        node lost, an election under way) is tried again until ``wait_s`` has passed."""
        start = self.replica.stream_seq + 1
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=start)
        deadline = time.monotonic() + wait_s
        while True:  # bounded by the deadline
            try:
                self._subscription = await self._js.subscribe(
                    self._names.subject,
                    stream=self._names.stream,
                    ordered_consumer=True,
                    config=config,
                    cb=self._on_message,
                    idle_heartbeat=1.0,
                )
                return
            except _TRANSIENT:
                if time.monotonic() + SUBSCRIBE_RETRY_S >= deadline:
                    raise
                await asyncio.sleep(SUBSCRIBE_RETRY_S)

    async def _on_message(self, message: Msg) -> None:
        if self.failure is not None:
            return
        stream_seq = int(message.metadata.sequence.stream)
        if stream_seq <= self.replica.stream_seq:
            return  # the ordered consumer re-delivers after a reset: already applied
        try:
            applied = self.replica.apply_message(stream_seq, decode_batch(message.data))
            self.pending = int(message.metadata.num_pending)
            if self._on_applied is not None and applied:
                self._on_applied(applied)
        except BaseException as error:  # a gap or an engine crash: this replica is unusable
            self.failure = error
            raise
        async with self._advanced:
            self._advanced.notify_all()

    async def wait_for(self, stream_seq: int, timeout_s: float) -> bool:
        """Wait until the replica applied stream message ``stream_seq``; False on timeout."""
        deadline = time.monotonic() + timeout_s
        async with self._advanced:
            while self.replica.stream_seq < stream_seq:  # bounded by the deadline
                left = deadline - time.monotonic()
                if left <= 0 or self.failure is not None:
                    return False
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._advanced.wait(), min(left, 0.5))
        return True

    async def caught_up(self, timeout_s: float) -> bool:
        """Wait until the replica applied the stream's last message as of now."""
        return await self.wait_for(await last_stream_seq(self._js, self._names), timeout_s)

    async def stop(self) -> None:
        subscription = self._subscription
        self._subscription = None
        if subscription is not None:
            with contextlib.suppress(nats.errors.Error):  # a closed connection: nothing to stop
                await subscription.unsubscribe()


async def fetch_into(
    js: JetStreamContext, names: ClusterNames, replica: Replica, until_stream_seq: int
) -> list[Applied]:
    """Apply stream messages after the replica's up to ``until_stream_seq`` by direct reads
    (a leader-to-be catching up with no follower running)."""
    applied: list[Applied] = []
    while replica.stream_seq < until_stream_seq:  # bounded: stream_seq grows each pass
        try:
            message = await js.get_msg(names.stream, seq=replica.stream_seq + 1)
        except NotFoundError:
            raise RuntimeError(f"stream message {replica.stream_seq + 1} missing") from None
        records = decode_batch(message.data or b"")
        applied.extend(replica.apply_message(replica.stream_seq + 1, records))
    return applied
