"""The whole cluster with real processes: three nats-server nodes (stream R3), two sequencers,
two gateways on their own ports, a projector, PostgreSQL read models.

One run, phases in order, the stream replayed and audited after each (conservation and the
core's audit), every acknowledged order checked to be in it once:
1. REST orders through gateway 1; a WebSocket client subscribed to ``order`` there.
2. Gateway 1 dies (kill -9): the client reconnects to gateway 2, authenticates and subscribes
   again; its ``order`` image holds the orders placed before, and new ones arrive.
3. A NATS node dies (kill -9): orders still go through (two of three stream replicas).
4. The leader is partitioned (SIGSTOP): the standby takes the lease and serves; the old leader,
   resumed (SIGCONT), steps down and cannot append (fenced), and the stream stays one history.
5. The projector dies (kill -9) and restarts: the read models equal those a fresh projector
   writes from the same stream (no row twice, none missing).
"""

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
import websockets
from sqlalchemy import func, select

from perpetua.gateway.auth import sign
from perpetua.runtime.cluster_dev import DevCluster, node_status
from perpetua.runtime.natsd import free_port, nats_server_binary
from perpetua.sequencer import default_engine
from perpetua.store import Projector, migrate, open_engine
from perpetua.store.schema import executions, orders, projector_state
from perpetua.transport.node import connect
from perpetua.transport.replica import Replica, fetch_into, last_stream_seq
from tests.store.databases import postgres_schema_url
from tests.transport.load import records_of

pytestmark = pytest.mark.slow
OPERATOR = "dev-operator-key"
USER = 7
WAIT_S = 60.0


class Client:
    """Signed and operator requests to one gateway; ``timeout_s`` bounds a signed request."""

    timeout_s = 30.0

    def __init__(self, port: int, key: tuple[str, str] = ("", "")) -> None:
        self.port = port
        self.key = key

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def admin(self, path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(
            f"{self.base}/api/v1/admin/{path}", json=body,
            headers={"x-operator-key": OPERATOR}, timeout=30,
        )  # fmt: skip
        assert response.status_code == 200, response.text
        return response.json()

    def signed(self, verb: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        data = json.dumps(body) if body is not None else ""
        expires = str(int(time.time()) + 60)
        headers = {
            "api-key": self.key[0],
            "api-expires": expires,
            "api-signature": sign(self.key[1], verb, "/api/v1" + path, expires, data),
            "content-type": "application/json",
        }
        return httpx.request(
            verb, f"{self.base}/api/v1{path}", content=data, headers=headers,
            timeout=self.timeout_s,
        )  # fmt: skip

    def place(self, price: int, cl_ord_id: str) -> dict[str, Any]:
        body = {
            "symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": price,
            "ordType": "Limit", "clOrdID": cl_ord_id,
        }  # fmt: skip
        response = self.signed("POST", "/order", body)
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]


def wait_http(port: int) -> None:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v1/instrument?symbol=XBTUSD").is_success:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"gateway on {port} did not come up")


async def ws_orders(port: int, key: tuple[str, str]) -> tuple[Any, list[dict[str, Any]]]:
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/realtime")
    await asyncio.wait_for(ws.recv(), 5)  # welcome
    expires = int(time.time()) + 60
    signature = sign(key[1], "GET", "/realtime", str(expires))
    await ws.send(json.dumps({"op": "authKeyExpires", "args": [key[0], expires, signature]}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 5)).get("success") is True
    await ws.send(json.dumps({"op": "subscribe", "args": ["order"]}))
    messages: list[dict[str, Any]] = []
    while not any(m.get("action") == "partial" for m in messages):
        messages.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
    return ws, messages


async def ws_until(ws: Any, cl_ord_id: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if any(row.get("clOrdID") == cl_ord_id for row in message.get("data", ())):
            return
    raise AssertionError(f"{cl_ord_id} not seen on the WebSocket")


async def audited(cluster: DevCluster, acked: dict[str, int]) -> None:
    """The stream replayed into a fresh engine passes the audit and holds each acked order
    exactly once."""
    _replica, records = await records_of(cluster.nats.urls, cluster.names)
    seen: dict[str, int] = {}
    for command in records.values():
        cl_ord_id = getattr(command, "cl_ord_id", "")
        if cl_ord_id:
            seen[cl_ord_id] = seen.get(cl_ord_id, 0) + 1
    for cl_ord_id in acked:
        assert seen.get(cl_ord_id) == 1, (cl_ord_id, seen.get(cl_ord_id))


async def leader(cluster: DevCluster, exclude: str = "") -> str:
    nc = await nats.connect(list(cluster.nats.urls))
    try:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            for name in ("s1", "s2"):
                if name == exclude or not cluster.procs[name].alive:
                    continue
                status = await node_status(nc, cluster.names, name)
                if status is not None and status["role"] == "leader":
                    return name
            await asyncio.sleep(0.05)
    finally:
        await nc.close()
    raise AssertionError("no leader")


def row_counts(url: str) -> tuple[int, int, int]:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            return (
                int(conn.execute(select(func.count()).select_from(executions)).scalar() or 0),
                int(conn.execute(select(func.count()).select_from(orders)).scalar() or 0),
                int(conn.execute(select(projector_state.c.last_seq)).scalar() or 0),
            )
    finally:
        engine.dispose()


async def fresh_projection(cluster: DevCluster, url: str) -> tuple[int, int, int]:
    migrate(url)
    projector = Projector(open_engine(url))
    nc = await connect(cluster.nats.urls, "check")
    try:
        js = nc.jetstream(timeout=5)
        replica = Replica(default_engine())
        applied = await fetch_into(
            js, cluster.names, replica, await last_stream_seq(js, cluster.names)
        )
    finally:
        await nc.close()
    projector.project([(a.seq, a.ts_ns, a.command, a.events) for a in applied])
    projector.engine.dispose()
    return row_counts(url)


def test_cluster_end_to_end(tmp_path: Path) -> None:
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed")
    with postgres_schema_url() as url, postgres_schema_url() as check_url:
        cluster = DevCluster(tmp_path / "c", nats_nodes=3, prefix="e2e", database_url=url,
                             reuse_port=False)  # fmt: skip
        cluster.start_nats()
        try:
            asyncio.run(_phases(cluster, check_url))
        except BaseException:
            for name, proc in cluster.procs.items():
                if proc.log.exists():
                    print(f"--- {name}\n{proc.log.read_text()[-3000:]}")
            raise
        finally:
            codes = cluster.stop()
        assert all(code in (0, -9, None) for code in codes.values()), codes


async def _phases(cluster: DevCluster, check_url: str) -> None:
    for name in ("s1", "s2"):
        cluster.add("sequencer", name)
        cluster.start(name)
    cluster.add("projector", "p1")
    cluster.start("p1")
    ports = {"g1": free_port(), "g2": free_port()}
    for name, port in ports.items():
        cluster.add("gateway", name, port=port)
        cluster.start(name)
    for port in ports.values():
        await asyncio.to_thread(wait_http, port)
    g1, g2 = Client(ports["g1"]), Client(ports["g2"])
    key = g1.admin("apiKey", {"userId": USER, "permissions": "order"})
    g1.key = g2.key = (key["id"], key["secret"])
    g2.admin("faucet", {"account": USER, "currency": "XBt", "amount": 10 * 10**8})
    acked: dict[str, int] = {}

    def place(client: Client, price: int) -> str:
        cl_ord_id = f"c-{uuid.uuid4().hex[:12]}"
        row = client.place(price, cl_ord_id)
        acked[cl_ord_id] = price
        assert row["clOrdID"] == cl_ord_id and row["ordStatus"] == "New", row
        return cl_ord_id

    # 1. orders through gateway 1, seen on its WebSocket
    ws, _ = await ws_orders(ports["g1"], g1.key)
    first = await asyncio.to_thread(place, g1, 30_000)
    await ws_until(ws, first)
    await audited(cluster, acked)

    # 2. gateway 1 dies; the client goes to gateway 2 and subscribes again
    cluster.kill("g1")
    await ws.close()
    ws, messages = await ws_orders(ports["g2"], g2.key)
    partial = next(m for m in messages if m.get("action") == "partial")
    assert first in {row["clOrdID"] for row in partial["data"]}
    second = await asyncio.to_thread(place, g2, 30_001)
    await ws_until(ws, second)
    await audited(cluster, acked)

    # 3. a NATS node dies: writes go on with two of three
    cluster.nats.kill(0)
    for price in range(30_002, 30_007):
        await asyncio.to_thread(place, g2, price)
    await audited(cluster, acked)

    # 4. the leader is partitioned; the standby takes over; the old one cannot append
    old = await leader(cluster)
    process = cluster.procs[old].process
    assert process is not None
    process.send_signal(signal.SIGSTOP)
    new = await leader(cluster, exclude=old)
    assert new != old
    for price in range(30_010, 30_013):
        await asyncio.to_thread(place, g2, price)
    process.send_signal(signal.SIGCONT)
    await asyncio.sleep(3)
    nc = await nats.connect(list(cluster.nats.urls[1:]))
    status = await node_status(nc, cluster.names, old)
    await nc.close()
    assert status is not None and status["role"] != "leader", status
    await asyncio.to_thread(place, g2, 30_013)
    await audited(cluster, acked)

    # 5. the projector dies and resumes: rows equal a fresh projection of the same stream
    cluster.kill("p1")
    for price in range(30_020, 30_024):
        await asyncio.to_thread(place, g2, price)
    cluster.start("p1")
    await ws.close()
    _replica, records = await records_of(cluster.nats.urls, cluster.names)
    last = max(records)
    deadline = time.monotonic() + WAIT_S
    while row_counts(cluster.database_url)[2] < last:
        assert time.monotonic() < deadline, "the projector did not catch up"
        await asyncio.sleep(0.2)
    await asyncio.sleep(0.5)
    expected = await fresh_projection(cluster, check_url)
    got = row_counts(cluster.database_url)
    # the same rows (idle ticks may have moved both offsets on; they write no rows)
    assert got[:2] == expected[:2] and min(got[2], expected[2]) >= last, (got, expected)
    history = g2.signed("GET", "/order?count=500&reverse=true")
    assert history.status_code == 200
    assert set(acked) <= {row["clOrdID"] for row in history.json()}
    await audited(cluster, acked)
