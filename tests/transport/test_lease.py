"""The lease bucket when the NATS node leading it dies (a 3-node JetStream cluster, R3 bucket):
a gateway must still learn who leads while the bucket elects a new leader. Before, a lease
read went to the bucket's leader only, timed out through the election, and a gateway that
could not read the lease took the cluster for leaderless: its clients got 503 after a NATS
node was killed, though the sequencer still led (tests/transport/test_cluster.py, phase 3,
under load)."""

import asyncio
import time

import nats
import pytest

from perpetua.runtime.natsd import NatsCluster
from perpetua.transport.lease import Lease
from perpetua.transport.node import ensure_bucket
from perpetua.transport.stream import ClusterNames
from perpetua.transport.submit import SubmitClient

pytestmark = pytest.mark.slow
NAMES = ClusterNames("ltest")
READS = 20


def test_the_lease_is_read_while_its_bucket_elects(nats_trio: NatsCluster) -> None:
    async def scenario() -> tuple[list[str], float]:
        nc = await nats.connect(list(nats_trio.urls))
        js = nc.jetstream(timeout=2)
        kv = await ensure_bucket(js, NAMES.lease_bucket, 3)
        assert await Lease(kv, "s1", 600).try_acquire()
        info = await js.stream_info(f"KV_{NAMES.lease_bucket}")
        assert info.cluster is not None and info.cluster.leader
        leader_index = int(info.cluster.leader.removeprefix("n")) - 1
        await nc.close()
        # a gateway connected to a node that stays, having read the lease once
        survivor = nats_trio.urls[(leader_index + 1) % 3]
        reader = await nats.connect([survivor])
        client = SubmitClient(reader, NAMES)
        assert await client.leader(fresh=True) == "s1"
        nats_trio.kill(leader_index)
        began = time.monotonic()
        seen = [await client.leader(fresh=True) for _ in range(READS)]
        took = time.monotonic() - began
        await reader.close()
        return seen, took

    seen, _took_s = asyncio.run(scenario())
    assert seen == ["s1"] * READS, seen
