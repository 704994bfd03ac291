"""Cluster snapshots (issue 21): how long a new replica takes to reach the stream's end from the
JetStream object store's newest snapshot, against a replay of the whole stream; what a snapshot
costs to write. JSON on stdout, with the load average.

A seeded workload (``tests.sequencer.workload``: orders of every type, amends, cancels, index
moves, funding...) of ``BENCH_SNAPSHOT_COMMANDS`` commands is published to a one-node
nats-server's stream in messages of ``RECORDS_PER_MESSAGE``; a replica applies the first
``SNAPSHOT_AT`` of it and writes a snapshot (`transport.snapshots.put_snapshot`, the image
checked by a restore first, as a standby does). Then, each on a fresh replica:
    - ``replay``: every message from the first (what every start did before snapshots);
    - ``snapshot``: the newest snapshot restored (`latest_snapshot`), then the messages after it.
Both must end at the same state hash.

Then a gateway's start (`transport.gateway_port.ClusterCommandPort`), each in a fresh port:
    - ``gateway_from_message_1``: the replica applies the whole stream while every batch is
      projected into a scratch SQLite file (what a gateway did before), then the seed is read;
    - ``gateway_from_snapshot``: ``open_at`` the stream's last record (standing in for the
      projector's offset): the snapshot restored, the tail applied, the seed read there.
      The shared read models' REPEATABLE READ reads (PostgreSQL) are not in this figure;
      they are the same reads the first arm makes of its scratch file.

Run: ``.venv/bin/python bench/bench_cluster_snapshots.py`` (needs nats-server).
"""

import asyncio
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import nats

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.sequencer.workload import stamp, workload  # noqa: E402

from perpetua.runtime.natsd import NatsCluster  # noqa: E402
from perpetua.sequencer import (  # noqa: E402
    Applied,  # noqa: E402
    default_engine,
    encode_command,
)
from perpetua.sequencer.seed import engine_seed  # noqa: E402
from perpetua.store import Projector, default_url, migrate, open_engine  # noqa: E402
from perpetua.transport.gateway_port import ClusterCommandPort  # noqa: E402
from perpetua.transport.replica import Replica, fetch_into, last_stream_seq  # noqa: E402
from perpetua.transport.snapshots import (  # noqa: E402
    checked_payload,
    ensure_snapshot_store,
    latest_snapshot,
    put_snapshot,
)
from perpetua.transport.stream import ClusterNames, encode_batch, ensure_stream  # noqa: E402

COMMANDS = int(os.environ.get("BENCH_SNAPSHOT_COMMANDS", "100000"))
SNAPSHOT_AT = 0.9  # of the stream's messages
RECORDS_PER_MESSAGE = 100
NAMES = ClusterNames("bsnap")
START_NS = 1_709_330_400_000_000_000


async def _bench(url: str) -> dict[str, object]:
    nc = await nats.connect(url)
    js = nc.jetstream(timeout=10)
    await ensure_stream(js, NAMES, 1)
    commands = stamp(workload(7, COMMANDS), START_NS)
    records = [(seq, encode_command(c)) for seq, c in enumerate(commands, start=1)]
    for start in range(0, len(records), RECORDS_PER_MESSAGE):
        await js.publish(NAMES.subject, encode_batch(records[start : start + RECORDS_PER_MESSAGE]))
    last = await last_stream_seq(js, NAMES)
    at = int(last * SNAPSHOT_AT)

    writer = Replica(default_engine())
    await fetch_into(js, NAMES, writer, at)
    store = await ensure_snapshot_store(js, NAMES, 1)
    began = time.perf_counter()
    image, state_hash = writer.engine.snapshot_and_hash()
    imaged_s = time.perf_counter() - began
    payload = checked_payload(image, state_hash, default_engine)
    checked_s = time.perf_counter() - began
    await put_snapshot(store, writer.applied_seq, writer.stream_seq, state_hash, payload)
    put_s = time.perf_counter() - began

    began = time.perf_counter()
    replayed = Replica(default_engine())
    await fetch_into(js, NAMES, replayed, last)
    replay_s = time.perf_counter() - began

    began = time.perf_counter()
    found = await latest_snapshot(store, default_engine)
    assert found is not None
    restored, _ref = found
    restored_s = time.perf_counter() - began
    await fetch_into(js, NAMES, restored, last)
    snapshot_s = time.perf_counter() - began
    assert restored.engine.state_hash() == replayed.engine.state_hash()
    await nc.close()
    return {
        "commands": len(records),
        "messages": last,
        "snapshot_seq": writer.applied_seq,
        "snapshot_bytes": len(payload),
        "write_image_s": round(imaged_s, 3),
        "write_image_encode_check_s": round(checked_s, 3),
        "write_total_with_put_s": round(put_s, 3),
        "replay_whole_stream_s": round(replay_s, 3),
        "restore_snapshot_s": round(restored_s, 3),
        "restore_and_follow_tail_s": round(snapshot_s, 3),
        "speedup": round(replay_s / snapshot_s, 1),
        "load_average": os.getloadavg(),
    }


def _gateway_starts(url: str, last_seq: int, scratch: Path) -> dict[str, float]:
    seed_url = default_url(scratch)
    migrate(seed_url)
    projector = Projector(open_engine(seed_url))

    def project(batch: Sequence[Applied]) -> None:
        projector.project([(a.seq, a.ts_ns, a.command, a.events) for a in batch])

    began = time.perf_counter()
    whole = ClusterCommandPort((url,), NAMES, "bench-g1", startup_sink=project)
    whole.open()
    seeded = whole.seed(engine_seed)
    whole_s = time.perf_counter() - began
    whole.close()
    projector.engine.dispose()
    began = time.perf_counter()
    late = ClusterCommandPort((url,), NAMES, "bench-g2")
    from_snapshot = late.open_at(last_seq, engine_seed)
    snapshot_s = time.perf_counter() - began
    assert from_snapshot is not None and late.restored_seq > 0
    assert from_snapshot.seq == seeded.seq == last_seq
    late.close()
    return {
        "gateway_from_message_1_s": round(whole_s, 3),
        "gateway_from_snapshot_s": round(snapshot_s, 3),
        "gateway_speedup": round(whole_s / snapshot_s, 1),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-snap-") as root:
        cluster = NatsCluster(Path(root), 1)
        cluster.start()
        try:
            cluster.ready()
            result = asyncio.run(_bench(cluster.urls[0]))
            result.update(
                _gateway_starts(cluster.urls[0], int(result["commands"]), Path(root) / "gw")  # type: ignore[call-overload]
            )
            result["load_average_after"] = os.getloadavg()
        finally:
            cluster.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
