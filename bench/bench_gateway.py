"""Gateway benchmark over loopback; load generated from separate processes.

1. REST order placement with HMAC auth: ``LOADGEN_PROCESSES`` processes, each with
   ``CONNECTIONS`` keep-alive connections (asyncio, raw HTTP/1.1), post signed IOC limit orders
   (accepted, then cancelled unfilled: the full place path) as fast as answers come -> orders/s.
   Many requests in flight is what lets the sequencer's group commit put many orders in one
   fsync, as real clients do.
2. Ack latency at a paced 1,000 orders/s over the same connections -> p50/p99 ms.
3. WebSocket fan-out: 100 subscribers of orderBookL2:XBTUSD and trade:XBTUSD (raw sockets that
   only count data messages, so the figure is the server's and not a client library's) while
   two producer processes run a market maker's loop (bulk re-pricing of resting quotes, the
   odd crossing order) over several connections -> messages/s delivered.

Server: `perpetua run --no-rate-limits --no-store --no-feeds` (journal on, fsync per batch;
the read models in a temporary file). JSON on stdout. The machine's core count is in the
figures: the load generators share them with the server. With ``BENCH_SERVER=granian`` the same
venue is served by granian (bench/serve_granian.py, decisions §32) and the WebSocket phase is
skipped (the fan-out writes to uvicorn's transport).
"""

import asyncio
import hashlib
import hmac
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

OPERATOR = "bench-operator"
LOADGEN_PROCESSES = int(os.environ.get("BENCH_PROCESSES", "2"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))  # per process
DURATION_S = float(os.environ.get("BENCH_SECONDS", "5"))
PACED_RATE = 1_000
SERVER = os.environ.get("BENCH_SERVER", "uvicorn")  # or "granian" (bench/serve_granian.py)
SUBSCRIBERS = 100
PRODUCER_CONNECTIONS = int(os.environ.get("BENCH_PRODUCER_CONNECTIONS", "8"))
QUOTES_PER_CONNECTION = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _admin(port: int, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/admin/{path}",
        json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json", "x-operator-key": OPERATOR},
    )
    return json.loads(urllib.request.urlopen(req, timeout=30).read())


def _account(port: int, user: int) -> tuple[str, str]:
    key = _admin(port, "apiKey", {"userId": user, "permissions": "order"})
    _admin(port, "faucet", {"account": user, "currency": "XBt", "amount": 100 * 10**8})
    return key["id"], key["secret"]


class Signer:
    """Signed request bytes; the signature only changes with ``expires`` (once a second)."""

    def __init__(self, key: tuple[str, str]) -> None:
        self.key = key
        self.cache: dict[tuple[str, str, bytes], tuple[int, bytes]] = {}

    def request(self, verb: str, path: str, body: bytes) -> bytes:
        expires = int(time.time()) + 60
        cached = self.cache.get((verb, path, body))
        if cached is None or cached[0] != expires:
            sig = hmac.new(
                self.key[1].encode(),
                verb.encode() + path.encode() + str(expires).encode() + body,
                hashlib.sha256,
            ).hexdigest()
            head = (
                f"{verb} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n"
                f"content-type: application/json\r\ncontent-length: {len(body)}\r\n"
                f"api-key: {self.key[0]}\r\napi-expires: {expires}\r\n"
                f"api-signature: {sig}\r\n\r\n"
            ).encode()
            cached = (expires, head + body)
            self.cache[(verb, path, body)] = cached
        return cached[1]


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def _connection(
    port: int,
    signer: Signer,
    body: bytes,
    deadline: float,
    interval: float,
    latencies: list[float],
    statuses: dict[int, int],
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sent = 0
    start = time.perf_counter()
    while (now := time.perf_counter()) < deadline:
        if interval:
            due = start + sent * interval
            if now < due:
                await asyncio.sleep(due - now)
        t0 = time.perf_counter()
        status = await _exchange(reader, writer, signer.request("POST", "/api/v1/order", body))
        latencies.append(time.perf_counter() - t0)
        statuses[status] = statuses.get(status, 0) + 1
        sent += 1
    writer.close()
    return sent


async def _loadgen(
    port: int, key: tuple[str, str], seconds: float, rate: float, connections: int
) -> tuple[int, float, list[float], dict[int, int]]:
    signer = Signer(key)
    body = json.dumps(
        {
            "symbol": "XBTUSD",
            "side": "Buy",
            "orderQty": 100,
            "price": 1000,
            "timeInForce": "ImmediateOrCancel",
        }
    ).encode()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    interval = connections / rate if rate else 0.0
    start = time.perf_counter()
    counts = await asyncio.gather(
        *(
            _connection(port, signer, body, start + seconds, interval, latencies, statuses)
            for _ in range(connections)
        )
    )
    return sum(counts), time.perf_counter() - start, latencies, statuses


def _loadgen_proc(
    port: int, key: tuple[str, str], seconds: float, rate: float, connections: int, out: Any
) -> None:
    out.put(asyncio.run(_loadgen(port, key, seconds, rate, connections)))


def run_loadgen(
    port: int,
    keys: list[tuple[str, str]],
    rate_each: float,
    connections: int,
    seconds: float = DURATION_S,
) -> list[Any]:
    """One load-generator process per key, ``connections`` keep-alive connections each, for
    ``seconds`` (``rate_each`` orders/s per process, 0: as fast as answers come); per process
    (orders answered 200, elapsed s, latencies s, {status: count}). bench_cluster.py uses it."""
    out: Any = mp.Queue()
    procs = [
        mp.Process(target=_loadgen_proc, args=(port, k, seconds, rate_each, connections, out))
        for k in keys
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return results


# WebSocket fan-out ---------------------------------------------------------------------------


DATA_MARKER = b'{"table":"'  # starts every data message's payload, and nothing else


async def _subscriber(port: int, counts: list[int], index: int, ready: list[int]) -> None:
    """A raw WebSocket client that counts data messages (C-speed ``bytes.count`` of the marker
    each payload starts with; the tail of each read is kept so a split marker is not lost)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            "GET /realtime?subscribe=orderBookL2:XBTUSD,trade:XBTUSD HTTP/1.1\r\n"
            f"host: 127.0.0.1:{port}\r\nupgrade: websocket\r\nconnection: Upgrade\r\n"
            "sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\r\n"
        ).encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    tail = b""
    keep = len(DATA_MARKER) - 1
    while True:
        chunk = await reader.read(1 << 20)
        if not chunk:
            return
        data = tail + chunk
        counts[index] += data.count(DATA_MARKER)
        tail = data[-keep:]
        if tail.count(DATA_MARKER[:1]) == 0:
            tail = b""
        if not ready[index] and counts[index] >= 2:  # the two partials
            ready[index] = 1


async def _subscribers(port: int, seconds: float, ready_event: Any, out: Any) -> None:
    counts = [0] * SUBSCRIBERS
    ready = [0] * SUBSCRIBERS
    tasks = [asyncio.create_task(_subscriber(port, counts, i, ready)) for i in range(SUBSCRIBERS)]
    while sum(ready) < SUBSCRIBERS:
        await asyncio.sleep(0.05)
    ready_event.set()
    await asyncio.sleep(0.5)  # producers start
    base = sum(counts)
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    out.put((sum(counts) - base, time.perf_counter() - t0))
    for task in tasks:
        task.cancel()


def _subscriber_proc(port: int, seconds: float, ready: Any, out: Any) -> None:
    asyncio.run(_subscribers(port, seconds, ready, out))


async def _producer(
    port: int, key: tuple[str, str], seconds: float, side: str, connections: int, out: Any
) -> None:
    """A market maker's loop (the sample market maker's ``amend_bulk_orders``): each connection
    keeps ``QUOTES_PER_CONNECTION`` resting quotes and re-prices them all with one bulk amend,
    again and again (each re-priced quote leaves one level and joins another: L2 deltas);
    every tenth request is a small crossing IOC (trades)."""
    signer = Signer(key)
    deadline = time.perf_counter() + seconds
    requests = [0]
    sign = -1 if side == "Buy" else 1
    other = "Sell" if side == "Buy" else "Buy"

    def prices(offset: int, shift: int) -> list[float]:
        base = 50_000.5 if side == "Sell" else 49_999.5
        return [
            base + sign * (5 + ((i * connections + offset + shift) % 60) * 0.5)
            for i in range(QUOTES_PER_CONNECTION)
        ]

    async def one(offset: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        orders = [
            {"symbol": "XBTUSD", "side": side, "orderQty": 100, "price": p}
            for p in prices(offset, 0)
        ]
        placed = await _json(
            reader,
            writer,
            signer.request("POST", "/api/v1/order/bulk", json.dumps({"orders": orders}).encode()),
        )
        ids = [o["orderID"] for o in placed]
        shift = 0
        while time.perf_counter() < deadline:
            shift += 1
            if shift % 10 == 0:
                body = json.dumps(
                    {
                        "symbol": "XBTUSD",
                        "side": other,
                        "orderQty": 100,
                        "price": 50_100 if other == "Buy" else 49_900,
                        "timeInForce": "ImmediateOrCancel",
                    }
                ).encode()
                await _exchange(reader, writer, signer.request("POST", "/api/v1/order", body))
            amends = [
                {"orderID": i, "price": p} for i, p in zip(ids, prices(offset, shift), strict=True)
            ]
            await _exchange(
                reader,
                writer,
                signer.request(
                    "PUT", "/api/v1/order/bulk", json.dumps({"orders": amends}).encode()
                ),
            )
            requests[0] += 1
        writer.close()

    await asyncio.gather(*(one(i) for i in range(connections)))
    out.put(requests[0])


async def _json(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> Any:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line[15:]) for line in head.split(b"\r\n") if line[:15].lower() == b"content-length:"
    )
    return json.loads(await reader.readexactly(length))


def _producer_proc(
    port: int, key: tuple[str, str], seconds: float, side: str, connections: int, out: Any
) -> None:
    asyncio.run(_producer(port, key, seconds, side, connections, out))


def _fanout(port: int, keys: list[tuple[str, str]]) -> dict[str, Any]:
    ready, out, placed = mp.Event(), mp.Queue(), mp.Queue()
    sub = mp.Process(target=_subscriber_proc, args=(port, DURATION_S, ready, out))
    sub.start()
    ready.wait(60)
    producers = [
        mp.Process(
            target=_producer_proc,
            args=(port, k, DURATION_S + 1, side, PRODUCER_CONNECTIONS // 2, placed),
        )
        for k, side in zip(keys[:2], ("Buy", "Sell"), strict=True)
    ]
    for p in producers:
        p.start()
    delivered, elapsed = out.get()
    requests = sum(placed.get() for _ in producers)
    for p in producers:
        p.join()
    sub.join()
    return {
        "subscribers": SUBSCRIBERS,
        "messages_delivered": delivered,
        "messages_per_s": round(delivered / elapsed),
        "producer_bulk_amends_per_s": round(requests / (DURATION_S + 1)),
        "quotes_per_amend": QUOTES_PER_CONNECTION,
    }


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used: the server's cost per order, which the
    other load on a shared machine does not change the way it changes wall-clock rates."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _fsync_ms(directory: str, count: int = 200) -> dict[str, float]:
    """One small append + fsync on the data dir's disk, as the journal commits a batch: the
    floor under every ack (a pipelined ack can wait for two)."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND)
    times = []
    try:
        for _ in range(count):
            os.write(fd, b"x" * 256)
            t0 = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
        os.unlink(path)
    return {"p50": round(_pct(times, 0.5), 3), "p99": round(_pct(times, 0.99), 3)}


CATCH_UP_WAIT_MAX_S = 120.0


def _projector_lag(port: int) -> int:
    """``perpetua_projector_lag_commands`` from the server's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "perpetua_projector_lag_commands":
                return int(sample.value)
    raise SystemExit("/metrics has no perpetua_projector_lag_commands")


def _wait_for_read_models(port: int) -> tuple[float, int]:
    """(seconds until the read models caught up with the burst, commands they were behind):
    the paced phase then measures the ack at 1,000/s, not beside a catch-up."""
    started = time.monotonic()
    behind = lag = _projector_lag(port)
    while lag > 0:
        if time.monotonic() - started > CATCH_UP_WAIT_MAX_S:
            raise SystemExit(f"the read models were still {lag} commands behind")
        time.sleep(0.1)
        lag = _projector_lag(port)
    return time.monotonic() - started, behind


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    if SERVER not in ("uvicorn", "granian"):
        raise SystemExit(f"BENCH_SERVER={SERVER!r}: uvicorn or granian")
    port = _free_port()
    data = tempfile.mkdtemp(prefix="perpetua-bench-")
    src = Path(__file__).resolve().parents[1] / "src"
    server = subprocess.Popen(
        [
            sys.executable,
            *(
                [str(Path(__file__).resolve().parent / "serve_granian.py")]
                if SERVER == "granian"
                else ["-m", "perpetua.cli", "run"]
            ),
            "--data-dir",
            data,
            "--port",
            str(port),
            "--operator-key",
            OPERATOR,
            "--no-rate-limits",
            "--no-store",
            "--log-level",
            "error",
            # the orders are priced for a still mark: no index feeds
            "--no-feeds",
        ],
        env=dict(os.environ, PYTHONPATH=str(src)),
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/announcement").read()
                break
            except OSError:
                time.sleep(0.2)
        keys = [_account(port, 100 + i) for i in range(max(LOADGEN_PROCESSES, 2))]
        cpu0 = _cpu_s(server.pid)
        results = run_loadgen(port, keys[:LOADGEN_PROCESSES], 0, CONNECTIONS)
        cpu_rest = _cpu_s(server.pid) - cpu0
        total = sum(r[0] for r in results)
        elapsed = max(r[1] for r in results)
        statuses: dict[int, int] = {}
        for r in results:
            for k, v in r[3].items():
                statuses[k] = statuses.get(k, 0) + v
        full_latencies = [x for r in results for x in r[2]]
        catch_up_s, behind = _wait_for_read_models(port)
        paced = run_loadgen(port, keys[:LOADGEN_PROCESSES], PACED_RATE / LOADGEN_PROCESSES, 8)
        latencies = [x for r in paced for x in r[2]]
        cpu0 = _cpu_s(server.pid)
        fanout: dict[str, Any] = {} if SERVER == "granian" else _fanout(port, keys)
        fanout["server_cpu_s"] = round(_cpu_s(server.pid) - cpu0, 2)
        fsync = _fsync_ms(data)
        print(
            json.dumps(
                {
                    "bench": "gateway",
                    "server": SERVER,
                    "cores": os.cpu_count(),
                    "rest_orders_per_s": round(total / elapsed),
                    "rest_in_flight": LOADGEN_PROCESSES * CONNECTIONS,
                    "rest_orders_per_server_cpu_s": round(total / cpu_rest) if cpu_rest else None,
                    "server_cpu_share": round(cpu_rest / elapsed, 2),
                    "rest_statuses": statuses,
                    "rest_p50_ms_at_max": round(_pct(full_latencies, 0.50), 3),
                    "read_models_behind_after_rest": behind,
                    "read_models_catch_up_s": round(catch_up_s, 2),
                    "paced_rate_per_s": PACED_RATE,
                    "paced_achieved_per_s": round(len(latencies) / DURATION_S),
                    "ack_p50_ms": round(_pct(latencies, 0.50), 3),
                    "ack_p99_ms": round(_pct(latencies, 0.99), 3),
                    "fsync_ms": fsync,
                    "ws_fanout": fanout,
                    "targets": {
                        "rest_orders_per_s": 5000,
                        "ack_p99_ms": 10,
                        "ws_messages_per_s": 200000,
                    },
                }
            )
        )
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


if __name__ == "__main__":
    main()
