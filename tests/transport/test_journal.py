"""The journal on JetStream: acknowledged only once stored, replayable, fenced.

1. A sequencer over `JetStreamJournal` acknowledges a workload; a replica that applies the
   stream reaches the leader's state hash and audit.
2. A writer whose expected last sequence is stale (a deposed leader) cannot append: its commit
   raises `JournalFencedError`, its sequencer fails the commands in flight with
   `SequencerFailed`, and the stream holds only the new leader's batch.
3. A commit whose first attempt landed but whose acknowledgement was lost is recognised on
   retry (the same bytes at the expected sequence) and not appended twice.
"""

from collections.abc import Iterator

import nats
import pytest
from nats.js import JetStreamContext

from perpetua.core.audit import audit
from perpetua.core.commands import Deposit
from perpetua.runtime.natsd import NatsCluster
from perpetua.sequencer import (
    Sequencer,
    SequencerFailed,
    SimulatedClock,
    default_engine,
    encode_command,
)
from perpetua.transport.journal import JetStreamJournal, JournalFencedError
from perpetua.transport.loop import LoopThread
from perpetua.transport.node import CLUSTER_SEQUENCER_CONFIG
from perpetua.transport.replica import Replica, fetch_into, last_stream_seq
from perpetua.transport.stream import ClusterNames, encode_batch, ensure_stream
from tests.sequencer.workload import drive, workload

pytestmark = pytest.mark.slow
NAMES = ClusterNames("jtest")
START_NS = 1_709_330_400_000_000_000


@pytest.fixture
def link(nats_single: NatsCluster) -> Iterator[tuple[LoopThread, JetStreamContext]]:
    loop = LoopThread()
    nc = loop.call(nats.connect(list(nats_single.urls)))
    js = nc.jetstream(timeout=2)
    loop.call(ensure_stream(js, NAMES, 1))
    try:
        yield loop, js
    finally:
        loop.call(nc.close())
        loop.stop()


def replay(loop: LoopThread, js: JetStreamContext) -> Replica:
    replica = Replica(default_engine())

    async def fetch() -> None:
        await fetch_into(js, NAMES, replica, await last_stream_seq(js, NAMES))

    loop.call(fetch())
    return replica


def test_acknowledged_batches_are_the_stream(link: tuple[LoopThread, JetStreamContext]) -> None:
    loop, js = link
    journal = JetStreamJournal(loop.loop, js, NAMES, next_seq=1, last_stream_seq=0)
    clock = SimulatedClock(START_NS)
    sequencer = Sequencer(default_engine(), journal, clock=clock, config=CLUSTER_SEQUENCER_CONFIG)
    with sequencer:
        results = drive(sequencer, clock, workload(7, 400))
    assert results and results[-1].seq == sequencer.stats().durable_seq
    assert journal.publish_count >= 1
    replica = replay(loop, js)
    assert replica.applied_seq == sequencer.stats().durable_seq
    assert replica.stream_seq == journal.last_stream_seq
    assert replica.engine.state_hash() == sequencer.engine.state_hash()
    audit(replica.engine.state)


def test_a_deposed_writer_cannot_append(link: tuple[LoopThread, JetStreamContext]) -> None:
    loop, js = link
    first = Deposit(START_NS, 1, "XBt", 10**8, "d-1")
    old = JetStreamJournal(loop.loop, js, NAMES, next_seq=1, last_stream_seq=0)
    new = JetStreamJournal(loop.loop, js, NAMES, next_seq=1, last_stream_seq=0)
    new.append_batch([(1, encode_command(first))])
    assert new.commit() == 1
    # The old leader, which did not see the new one's batch, applies and commits its own.
    clock = SimulatedClock(START_NS)
    sequencer = Sequencer(default_engine(), old, clock=clock, config=CLUSTER_SEQUENCER_CONFIG)
    with sequencer:
        future = sequencer.submit_future(Deposit(0, 2, "XBt", 5 * 10**8, "d-old"))
        with pytest.raises(SequencerFailed):
            future.result(10)
    assert isinstance(sequencer.failure, JournalFencedError)
    replica = replay(loop, js)
    assert (replica.applied_seq, replica.stream_seq) == (1, 1)
    assert replica.engine.state.ledger.balances["XBt"].get(2, 0) == 0
    audit(replica.engine.state)


def test_a_lost_acknowledgement_is_not_a_second_append(
    link: tuple[LoopThread, JetStreamContext],
) -> None:
    loop, js = link
    records = [(1, encode_command(Deposit(START_NS, 1, "XBt", 10**8, "d-1")))]

    async def publish_behind_the_journals_back() -> None:
        await js.publish(NAMES.subject, encode_batch(records))

    loop.call(publish_behind_the_journals_back())
    journal = JetStreamJournal(loop.loop, js, NAMES, next_seq=1, last_stream_seq=0)
    journal.append_batch(records)
    assert journal.commit() == 1  # the same bytes at sequence 1: it was this commit's
    assert journal.last_stream_seq == 1
    assert loop.call(last_stream_seq(js, NAMES)) == 1
