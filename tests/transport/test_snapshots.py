"""Snapshots in cluster mode (`transport.snapshots`), on a real nats-server with the sequencer
nodes in this process (a leader under load and a standby that writes a snapshot every
``EVERY`` seqs):

1. A standby started after a thousand commands restores the newest snapshot (it does not
   replay from message 1), and every node (the leader, the standby that wrote the snapshots,
   the late one restored from them) holds, at every checkpoint and at its last message, exactly
   the state hash a fresh replay of the stream has at the same message.
2. A damaged newest snapshot (a flipped byte: crc; a lying state hash: restore check) is
   skipped for the one before, and the node still reaches the fresh replay's hash.
3. ``kill -9`` of a process in the middle of a snapshot put leaves no object (its chunks are
   never listed), the stream unchanged, and a new node restores the previous snapshot.
4. A projector with a stored offset starts from the newest snapshot at or below it and knows
   the futures series and listed futures defined before it (it never sees those records).

Hashes are compared at the same stream message only: an idle leader appends a ``Tick`` every
second (``scheduler.IdleTick``), and a standby may take the lease while the test stops the
nodes and append its own. This test once compared a hash taken when the load ended with a
replay of the whole stream read after the nodes stopped: it failed whenever a Tick landed in
between (6 runs in 16 on a loaded machine), which read as snapshots breaking determinism
(docs/decisions.md §22). ``test_the_stream_moves_on_while_idle`` pins that cause down.
"""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest

from perpetua.core.commands import DefineFutureSeries, Deposit, ListFuture
from perpetua.runtime.cluster_projector import start_projection
from perpetua.runtime.natsd import NatsCluster
from perpetua.sequencer import default_engine, encode_command
from perpetua.sequencer.snapshot import decode_snapshot, encode_snapshot
from perpetua.store import default_url, migrate, open_engine
from perpetua.transport.lease import Lease
from perpetua.transport.node import NodeConfig, SequencerNode
from perpetua.transport.replica import Replica, StreamFollower, fetch_into, last_stream_seq
from perpetua.transport.snapshots import (
    ensure_snapshot_store,
    list_snapshot_objects,
    object_name,
)
from perpetua.transport.stream import ClusterNames
from perpetua.transport.submit import OK, SubmitClient
from tests.core.test_future_series import XBTUSDT
from tests.transport.load import Load, records_of

pytestmark = pytest.mark.slow
NAMES = ClusterNames("snaptest")
EVERY = 500
CHECKPOINT_EVERY = 100
SNAPSHOTS_WANTED = 2
WAIT_S = 60.0
BIG_PUT_BYTES = 96 * 2**20  # long enough to be caught half-written


def _node(urls: tuple[str, ...], name: str, every: int) -> SequencerNode:
    return SequencerNode(
        NodeConfig(
            name=name, servers=urls, names=NAMES, snapshot_every=every, lease_ttl_s=1.0,
            checkpoint_every=CHECKPOINT_EVERY,
        )
    )  # fmt: skip


async def _until(check: object, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def _killed_put(url: str, directory: Path) -> int:
    """Start a process putting a big snapshot object, kill -9 it once its chunks are flowing;
    the stream sequence of the object store's last message at the kill."""
    script = directory / "put.py"
    script.write_text(
        "import asyncio, sys, nats\n"
        "from perpetua.transport.snapshots import ensure_snapshot_store, put_snapshot\n"
        "from perpetua.transport.stream import ClusterNames\n"
        "async def main():\n"
        "    nc = await nats.connect(sys.argv[1])\n"
        "    js = nc.jetstream(timeout=5)\n"
        "    store = await ensure_snapshot_store(js, ClusterNames('snaptest'), 1)\n"
        f"    await put_snapshot(store, 10**9, 10**9, 'h', bytes({BIG_PUT_BYTES}))\n"
        "asyncio.run(main())\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2] / "src"))
    process = subprocess.Popen([sys.executable, str(script), url], env=env)

    async def watch() -> int:
        nc = await nats.connect(url)
        js = nc.jetstream(timeout=5)
        stream = f"OBJ_{NAMES.snapshot_bucket}"
        before = (await js.stream_info(stream)).state.messages
        deadline = time.monotonic() + WAIT_S
        while (await js.stream_info(stream)).state.messages < before + 8:
            assert process.poll() is None and time.monotonic() < deadline
            await asyncio.sleep(0.005)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        last = int((await js.stream_info(stream)).state.last_seq)
        await nc.close()
        return last

    try:
        return asyncio.run(watch())
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_snapshots_restore_fall_back_and_survive_a_killed_write(
    nats_single: NatsCluster, tmp_path: Path
) -> None:
    urls = nats_single.urls
    sqlite = default_url(tmp_path / "rm")
    (tmp_path / "rm").mkdir()
    migrate(sqlite)

    async def phase_one() -> tuple[SequencerNode, ...]:
        stopping = asyncio.Event()
        leader, standby = _node(urls, "s1", 0), _node(urls, "s2", EVERY)
        runs = [asyncio.create_task(leader.run(stopping))]
        await _until(lambda: leader.role == "leader")
        runs.append(asyncio.create_task(standby.run(stopping)))
        nc = await nats.connect(list(urls))
        client = SubmitClient(nc, NAMES)
        for key, command in (
            ("series", DefineFutureSeries(0, *XBTUSDT)),
            ("listing", ListFuture(0, "XBTUSDT", 2027, 1)),
        ):
            assert (await client.submit(key, encode_command(command)))[0] == OK
        load = Load(nc, NAMES, seed=11)
        loading = asyncio.create_task(load.run(workers=4))
        await _until(lambda: len(standby.status()["snapshots_written"]) >= SNAPSHOTS_WANTED)
        load.stopping.set()
        await loading
        js = nc.jetstream(timeout=5)
        last = await last_stream_seq(js, NAMES)
        await _until(lambda: standby.replica.stream_seq == last)
        await standby._writer.drain()  # type: ignore[union-attr]
        # 1. a new standby restores the newest snapshot and follows the rest
        late = _node(urls, "s3", 0)
        runs.append(asyncio.create_task(late.run(stopping)))
        await _until(lambda: late.replica.stream_seq == last)
        refs = await list_snapshot_objects(await ensure_snapshot_store(js, NAMES, 1))
        assert late.restored_seq == refs[-1].seq >= SNAPSHOTS_WANTED * EVERY
        assert late.replica.engine.state_hash() == standby.replica.engine.state_hash()
        # 4. a projector whose offset is past the newest snapshot starts from it
        sql = open_engine(sqlite)
        first, replica = await start_projection(js, NAMES, sql)
        assert replica.applied_seq == 0  # empty database: every row is needed, from seq 1
        follower = StreamFollower(
            js, NAMES, replica,
            lambda batch: first.project([(a.seq, a.ts_ns, a.command, a.events) for a in batch]),
        )  # fmt: skip
        await follower.start()
        await _until(lambda: replica.stream_seq == last)
        await follower.stop()
        restarted, restored = await start_projection(js, NAMES, sql)
        assert restored.applied_seq == refs[-1].seq and restarted.last_seq == first.last_seq
        assert restarted.series.keys() >= {"XBTUSDT"} and "XBTUSDTH27" in restarted.specs
        sql.dispose()
        stopping.set()
        await asyncio.gather(*runs)
        await nc.close()
        return leader, standby, late

    nodes = asyncio.run(phase_one())
    assert nodes[1].status()["snapshots_written"] and nodes[2].restored_seq
    assert nodes[1].replica.checkpoints  # the snapshot writer, compared at every 100 seqs
    for node in nodes:  # 1. each at its own last message: they stopped one after another
        _same_as_a_fresh_replay(urls, node)
    replayed, _records = asyncio.run(records_of(urls, NAMES))  # audited

    async def damage() -> int:
        nc = await nats.connect(list(urls))
        store = await ensure_snapshot_store(nc.jetstream(timeout=5), NAMES, 1)
        newest = (await list_snapshot_objects(store))[-1]
        good = bytes((await store.get(newest.name)).data or b"")
        flipped = bytearray(good)
        flipped[-1] ^= 0xFF
        payload = decode_snapshot(good, Path(newest.name)).payload
        lying = encode_snapshot(newest.seq + 2, "0" * 64, payload)
        await store.put(object_name(newest.seq + 1, newest.stream_seq), bytes(flipped))
        await store.put(object_name(newest.seq + 2, newest.stream_seq), lying)
        await nc.close()
        return newest.seq

    good_seq = asyncio.run(damage())
    # 3. kill -9 in the middle of a put: nothing listed, nothing lost
    stream_last = asyncio.run(_stream_last(urls))
    _killed_put(urls[0], tmp_path)

    async def phase_two() -> tuple[int, SequencerNode]:
        nc = await nats.connect(list(urls))
        js = nc.jetstream(timeout=5)
        store = await ensure_snapshot_store(js, NAMES, 1)
        assert object_name(10**9, 10**9) not in {r.name for r in await list_snapshot_objects(store)}
        assert await last_stream_seq(js, NAMES) == stream_last
        # the lease held elsewhere: s4 stays a standby (a leader would journal its own commands)
        assert await Lease(await js.key_value(NAMES.lease_bucket), "test", 600).try_acquire()
        stopping = asyncio.Event()
        node = _node(urls, "s4", 0)
        run = asyncio.create_task(node.run(stopping))
        # 2. the two damaged newer objects are skipped for the good one before them
        await _until(lambda: node.replica.stream_seq == stream_last)
        stopping.set()
        await run
        await nc.close()
        return node.restored_seq, node

    restored_seq, node = asyncio.run(phase_two())
    assert restored_seq == good_seq
    assert node.replica.stream_seq == stream_last == replayed.stream_seq
    _same_as_a_fresh_replay(urls, node)


async def _replayed_to(urls: tuple[str, ...], stream_seq: int) -> Replica:
    """A fresh replica of the stream's first ``stream_seq`` messages (checkpoints as a node's)."""
    nc = await nats.connect(list(urls))
    replica = Replica(default_engine(), checkpoint_every=CHECKPOINT_EVERY)
    await fetch_into(nc.jetstream(timeout=5), NAMES, replica, stream_seq)
    await nc.close()
    return replica


def _same_as_a_fresh_replay(urls: tuple[str, ...], node: SequencerNode) -> None:
    """The node's hash at its last message, and at each of its checkpoints, equal a fresh
    replay's at the same message."""
    replica = node.replica
    replayed = asyncio.run(_replayed_to(urls, replica.stream_seq))
    assert replayed.applied_seq == replica.applied_seq
    assert replayed.engine.state_hash() == replica.engine.state_hash(), node.config.name
    for seq, state_hash in replica.checkpoints.items():
        assert replayed.checkpoints[seq] == state_hash, f"{node.config.name} at seq {seq}"


async def _stream_last(urls: tuple[str, ...]) -> int:
    nc = await nats.connect(list(urls))
    last = await last_stream_seq(nc.jetstream(timeout=5), NAMES)
    await nc.close()
    return last


def test_the_stream_moves_on_while_idle(nats_single: NatsCluster) -> None:
    """Why a hash must be compared at the same message: with no client speaking, the leader
    still appends a Tick a second later, which moves the state (its time), so a hash taken
    before it differs from a replay of the whole stream taken after, and equals a replay of the
    stream up to the message it was taken at."""
    urls = nats_single.urls

    async def scenario() -> tuple[int, str, int]:
        stopping = asyncio.Event()
        leader, standby = _node(urls, "i1", 0), _node(urls, "i2", 0)
        runs = [asyncio.create_task(leader.run(stopping))]
        await _until(lambda: leader.role == "leader")
        runs.append(asyncio.create_task(standby.run(stopping)))
        nc = await nats.connect(list(urls))
        js = nc.jetstream(timeout=5)
        deposit = Deposit(0, 1, "XBt", 10**8, "idle-1")
        assert (await SubmitClient(nc, NAMES).submit("idle", encode_command(deposit)))[0] == OK
        last = await last_stream_seq(js, NAMES)
        await _until(lambda: standby.replica.stream_seq >= last)
        at, taken = standby.replica.stream_seq, standby.replica.engine.state_hash()
        await _until(lambda: standby.replica.stream_seq > at, 10.0)  # a Tick, unprompted
        stopping.set()
        await asyncio.gather(*runs)
        end = await last_stream_seq(js, NAMES)
        await nc.close()
        return at, taken, end

    at, taken, end = asyncio.run(scenario())
    assert end > at
    assert asyncio.run(_replayed_to(urls, at)).engine.state_hash() == taken
    assert asyncio.run(_replayed_to(urls, end)).engine.state_hash() != taken
