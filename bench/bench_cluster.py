"""Cluster benchmark (issue 21), JSON on stdout; the machine's load average with each figure.

1. Commands/s and ack p50/p99 of one in-process sequencer, the same workload, in one run: the
   local file journal (fsync per batch) against the JetStream journal on a three-node
   nats-server cluster (stream R3, acknowledged by a majority). ``SUBMITTERS_IN_FLIGHT`` commands
   in flight, ``BENCH_SECONDS`` each.
2. Failover: two sequencer processes under load, the leader killed (kill -9) ``BENCH_KILLS``
   times: seconds from the kill to a standby leading, and to the first acknowledgement of a
   command sent after the kill.
3. REST orders/s (signed IOC limit orders, cancelled unfilled, over keep-alive connections)
   with 1, 2 and 4 gateway processes
   sharing one port (SO_REUSEPORT), rate limits off, projector on PostgreSQL. The load comes
   from bench_gateway.py's raw HTTP/1.1 generator in ``LOADGEN_PROCESSES`` processes,
   ``BENCH_CONNECTIONS`` connections in all (until 2026-12-06 one httpx client process, which
   itself capped the figure at a quarter of what the gateways served).

Run: ``PYTHONPATH=src .venv/bin/python bench/bench_cluster.py`` (needs nats-server; part 3 needs
PostgreSQL at 127.0.0.1:5432 with trust auth and makes a scratch database).
"""

import asyncio
import itertools
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import nats

from bench_gateway import run_loadgen  # bench/ is this script's directory: first on sys.path
from perpetua.core.commands import Command, Deposit, IndexPrice, PlaceOrder
from perpetua.core.enums import OrdType, Side, TimeInForce
from perpetua.runtime.cluster_dev import DevCluster, node_status
from perpetua.runtime.natsd import NatsCluster, free_port
from perpetua.sequencer import Result, Sequencer, SequencerConfig, default_engine, encode_command
from perpetua.transport.journal import JetStreamJournal
from perpetua.transport.loop import LoopThread
from perpetua.transport.node import CLUSTER_SEQUENCER_CONFIG
from perpetua.transport.stream import ClusterNames, ensure_stream
from perpetua.transport.submit import OK, SubmitClient

SECONDS = float(os.environ.get("BENCH_SECONDS", "4"))
KILLS = int(os.environ.get("BENCH_KILLS", "8"))
SUBMITTERS_IN_FLIGHT = 256
ACCOUNTS = 16
GATEWAY_COUNTS = tuple(int(n) for n in os.environ.get("BENCH_GATEWAYS", "1,2,4").split(","))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "16"))
LOADGEN_PROCESSES = 2  # REST: bench_gateway's raw signed-request generator, in processes


def load() -> float:
    return round(os.getloadavg()[0], 2)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def commands() -> Iterator[Command]:
    """Funding and an index, then resting limit orders on both sides of XBTUSD."""
    for account in range(1, ACCOUNTS + 1):
        yield Deposit(0, account, "XBt", 10**12, f"d{account}")
    yield IndexPrice(0, ".BXBT", 50_000, 1)
    for i in itertools.count():
        side = Side.BUY if i % 2 else Side.SELL
        offset = 50 + i % 40
        yield PlaceOrder(
            0, 1 + i % ACCOUNTS, "XBTUSD", side, 100, OrdType.LIMIT,
            price=500_000 - offset if side == Side.BUY else 500_000 + offset,
            time_in_force=TimeInForce.GOOD_TILL_CANCEL, cl_ord_id=f"o{i}",
        )  # fmt: skip


def drive(sequencer: Sequencer, seconds: float) -> dict[str, Any]:
    source = commands()
    latencies: list[float] = []
    lock = threading.Lock()
    window = threading.Semaphore(SUBMITTERS_IN_FLIGHT)
    count = 0

    def done(started: float, _future: "Future[Result]") -> None:
        nonlocal count
        with lock:
            latencies.append(time.perf_counter() - started)
            count += 1
        window.release()

    begin = time.perf_counter()
    while time.perf_counter() - begin < seconds:
        window.acquire()
        started = time.perf_counter()
        future = sequencer.submit_future(next(source))
        future.add_done_callback(lambda f, s=started: done(s, f))
    for _ in range(SUBMITTERS_IN_FLIGHT):
        window.acquire()
    elapsed = time.perf_counter() - begin
    return {
        "commands_per_s": round(count / elapsed),
        "ack_p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        "ack_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        "batches": sequencer.stats().batch_count,
        "load_avg_1m": load(),
    }


def journals(root: Path) -> dict[str, Any]:
    config = SequencerConfig(snapshot_interval_commands=0, snapshot_on_stop=False)
    local = Sequencer.open(root / "local", config=config)
    with local:
        local_figures = drive(local, SECONDS)
    trio = NatsCluster(root / "nats", 3)
    trio.start()
    loop = LoopThread()
    try:
        trio.ready()
        nc = loop.call(nats.connect(list(trio.urls)))
        js = nc.jetstream(timeout=5)
        names = ClusterNames("bench")
        loop.call(ensure_stream(js, names, 3))
        journal = JetStreamJournal(loop.loop, js, names, next_seq=1, last_stream_seq=0)
        replicated = Sequencer(default_engine(), journal, config=CLUSTER_SEQUENCER_CONFIG)
        with replicated:
            replicated_figures = drive(replicated, SECONDS)
        loop.call(nc.close())
    finally:
        loop.stop()
        trio.stop()
    return {
        "local_file_journal_fsync": local_figures,
        "jetstream_r3_three_nodes": replicated_figures,
        "replicated_over_local": round(
            replicated_figures["commands_per_s"] / max(1, local_figures["commands_per_s"]), 3
        ),
    }


async def failover(root: Path) -> dict[str, Any]:
    cluster = DevCluster(root / "failover", nats_nodes=3, prefix="bf")
    cluster.start_nats()
    for name in ("s1", "s2"):
        cluster.add("sequencer", name)
        cluster.start(name)
    nc = await nats.connect(list(cluster.nats.urls))
    client = SubmitClient(nc, cluster.names, request_timeout_s=3)
    acked: list[tuple[float, float]] = []  # (sent, acknowledged), monotonic
    stopping = asyncio.Event()

    async def submitter(index: int) -> None:
        serial = 0
        while not stopping.is_set():
            serial += 1
            command = Deposit(0, 1, "XBt", 1, f"f{index}-{serial}")
            sent = time.monotonic()
            reply = await client.submit(f"b{index}-{serial}", encode_command(command))
            if reply[0] == OK:
                acked.append((sent, time.monotonic()))

    async def leader(exclude: str = "") -> str:
        while True:
            for name in ("s1", "s2"):
                if name != exclude and cluster.procs[name].alive:
                    status = await node_status(nc, cluster.names, name)
                    if status is not None and status["role"] == "leader":
                        return name
            await asyncio.sleep(0.02)

    to_leader: list[float] = []
    to_ack: list[float] = []
    tasks = [asyncio.create_task(submitter(i)) for i in range(4)]
    try:
        current = await asyncio.wait_for(leader(), 60)
        for _ in range(KILLS):
            await asyncio.sleep(1.5)
            killed_at = time.monotonic()
            cluster.kill(current)
            new = await asyncio.wait_for(leader(current), 60)
            to_leader.append(time.monotonic() - killed_at)
            while not any(sent > killed_at for sent, _ in acked):  # sent after the kill
                await asyncio.sleep(0.01)
            to_ack.append(min(t for sent, t in acked if sent > killed_at) - killed_at)
            cluster.start(current)
            current = new
    finally:
        stopping.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await nc.close()
        cluster.stop()

    def spread(values: list[float]) -> dict[str, float]:
        return {
            "min_s": round(min(values), 3), "p50_s": round(statistics.median(values), 3),
            "max_s": round(max(values), 3),
        }  # fmt: skip

    return {
        "kills": KILLS,
        "lease_ttl_s": 2.0,
        "kill_to_new_leader": spread(to_leader),
        "kill_to_first_ack": spread(to_ack),
        "samples_to_first_ack_s": [round(v, 3) for v in to_ack],
        "load_avg_1m": load(),
    }


def gateways(root: Path) -> dict[str, Any]:
    database = f"bench_cluster_{uuid.uuid4().hex[:8]}"
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc",
                    f"create database {database}"], check=True)  # fmt: skip
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{database}"
    port = free_port()
    cluster = DevCluster(root / "gateways", nats_nodes=3, prefix="bg", database_url=url,
                         gateway_port=port, rate_limits=False)  # fmt: skip
    figures: dict[str, Any] = {}
    try:
        cluster.start_nats()
        for role, name in (("sequencer", "s1"), ("sequencer", "s2"), ("projector", "p1")):
            cluster.add(role, name)
            cluster.start(name)
        started = 0
        keys: list[tuple[str, str]] = []
        for count in GATEWAY_COUNTS:
            while started < count:
                started += 1
                cluster.add("gateway", f"g{started}")
                cluster.start(f"g{started}")
            time.sleep(1)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:  # every gateway answers on the shared port
                alive = [p for p in cluster.procs.values() if p.role == "gateway"]
                if all(_up(p.log) for p in alive):
                    break
                time.sleep(0.5)
            if not keys:
                keys = [_account(port, 100 + i) for i in range(8)]
            per_process = CONNECTIONS // LOADGEN_PROCESSES
            results = run_loadgen(port, keys[:LOADGEN_PROCESSES], 0, per_process, SECONDS)
            statuses: dict[int, int] = {}
            for result in results:
                for status, n in result[3].items():
                    statuses[status] = statuses.get(status, 0) + n
            latencies = [x for result in results for x in result[2]]
            figures[f"{count}_gateways"] = {
                "orders_per_s": round(sum(r[0] for r in results) / max(r[1] for r in results)),
                "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
                "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
                "load_avg_1m": load(), "statuses": statuses,
            }  # fmt: skip
    finally:
        cluster.stop()
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc",
                        f"drop database if exists {database}"], check=False)  # fmt: skip
    return {"connections": CONNECTIONS, **figures}


def _up(log: Path) -> bool:
    return " serving on " in log.read_text()  # runtime.cluster_gateway logs it


def _account(port: int, user: int) -> tuple[str, str]:
    headers = {"x-operator-key": "dev-operator-key"}
    base = f"http://127.0.0.1:{port}/api/v1/admin"
    key = httpx.post(f"{base}/apiKey", json={"userId": user, "permissions": "order"},
                     headers=headers, timeout=30).json()  # fmt: skip
    httpx.post(f"{base}/faucet", json={"account": user, "currency": "XBt", "amount": 10**10},
               headers=headers, timeout=30)  # fmt: skip
    return key["id"], key["secret"]


def main() -> None:
    out: dict[str, Any] = {"cpus": os.cpu_count(), "seconds_per_figure": SECONDS}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp:
        root = Path(tmp)
        parts = (
            ("journal", lambda: journals(root)),
            ("failover", lambda: asyncio.run(failover(root))),
            ("rest_gateways", lambda: gateways(root)),
        )
        only = os.environ.get("BENCH_PARTS", "journal,failover,rest_gateways").split(",")
        for name, part in parts:
            if name in only:
                try:
                    out[name] = part()
                except Exception as error:  # noqa: BLE001 - report the part, keep the others
                    out[name] = {"error": repr(error)}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
