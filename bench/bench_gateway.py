"""Gateway benchmark over loopback, load generated from separate processes.

1. REST order placement with HMAC auth: workers post signed IOC limit orders (accepted, then
   cancelled unfilled: the full place path) as fast as they can -> orders/s.
2. Ack latency at a paced 1,000 orders/s -> p50/p99 ms.
3. WebSocket fan-out: 100 subscribers of orderBookL2:XBTUSD and trade:XBTUSD while a driver
   places and fills orders -> messages/s delivered.
Server: `perpetua run --no-rate-limits --no-store` (journal on, fsync per batch). JSON on stdout.
"""

import asyncio
import hashlib
import hmac
import http.client
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

OPERATOR = "bench-operator"
WORKERS = int(os.environ.get("BENCH_WORKERS", "8"))
DURATION_S = float(os.environ.get("BENCH_SECONDS", "5"))
PACED_RATE = 1_000
SUBSCRIBERS = 100


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _admin(port: int, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/admin/{path}",
                                 json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json",
                                          "x-operator-key": OPERATOR})
    return json.loads(urllib.request.urlopen(req, timeout=10).read())


def _account(port: int, user: int) -> tuple[str, str]:
    key = _admin(port, "apiKey", {"userId": user, "permissions": "order"})
    _admin(port, "faucet", {"account": user, "currency": "XBt", "amount": 100 * 10**8})
    return key["id"], key["secret"]


def _post_order(conn: http.client.HTTPConnection, key: tuple[str, str], body: bytes) -> int:
    expires = str(int(time.time()) + 60)
    sig = hmac.new(key[1].encode(), b"POST/api/v1/order" + expires.encode() + body,
                   hashlib.sha256).hexdigest()
    conn.request("POST", "/api/v1/order", body, {"content-type": "application/json",
                                                 "api-key": key[0], "api-expires": expires,
                                                 "api-signature": sig})
    response = conn.getresponse()
    response.read()
    return response.status


def _worker(port: int, key: tuple[str, str], seconds: float, rate: float, out: mp.Queue) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"symbol": "XBTUSD", "side": "Buy", "orderQty": 100, "price": 1000,
                       "timeInForce": "ImmediateOrCancel"}).encode()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    start = time.perf_counter()
    sent = 0
    while (now := time.perf_counter()) - start < seconds:
        if rate:
            due = start + sent / rate
            if now < due:
                time.sleep(due - now)
        t0 = time.perf_counter()
        status = _post_order(conn, key, body)
        latencies.append(time.perf_counter() - t0)
        statuses[status] = statuses.get(status, 0) + 1
        sent += 1
    out.put((sent, time.perf_counter() - start, latencies, statuses))


def _run_workers(port: int, keys: list[tuple[str, str]], rate_each: float) -> list[tuple]:
    out: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_worker, args=(port, k, DURATION_S, rate_each, out))
             for k in keys]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return results


async def _subscribers(port: int, seconds: float, ready: mp.Event, out: mp.Queue) -> None:
    import websockets

    counts = [0] * SUBSCRIBERS

    async def one(index: int) -> None:
        url = f"ws://127.0.0.1:{port}/realtime?subscribe=orderBookL2:XBTUSD,trade:XBTUSD"
        async with websockets.connect(url, max_queue=None) as ws:
            for _ in range(5):
                await ws.recv()
            ready_counts[index] = 1
            if sum(ready_counts) == SUBSCRIBERS:
                ready.set()
            while True:
                await ws.recv()
                counts[index] += 1

    ready_counts = [0] * SUBSCRIBERS
    tasks = [asyncio.create_task(one(i)) for i in range(SUBSCRIBERS)]
    while not ready.is_set():
        await asyncio.sleep(0.05)
    base = sum(counts)
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    out.put((sum(counts) - base, time.perf_counter() - t0))
    for task in tasks:
        task.cancel()


def _subscriber_proc(port: int, seconds: float, ready: mp.Event, out: mp.Queue) -> None:
    asyncio.run(_subscribers(port, seconds, ready, out))


def _fanout(port: int, keys: list[tuple[str, str]]) -> dict:
    ready, out = mp.Event(), mp.Queue()
    sub = mp.Process(target=_subscriber_proc, args=(port, DURATION_S, ready, out))
    sub.start()
    ready.wait(60)
    drivers = [mp.Process(target=_driver, args=(port, k, DURATION_S + 1, side))
               for k, side in zip(keys[:2], ("Buy", "Sell"), strict=True)]
    for d in drivers:
        d.start()
    delivered, elapsed = out.get()
    for d in drivers:
        d.join()
    sub.join()
    return {"subscribers": SUBSCRIBERS, "messages_delivered": delivered,
            "messages_per_s": round(delivered / elapsed)}


def _driver(port: int, key: tuple[str, str], seconds: float, side: str) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        price = 50000 + (i % 50) * 0.5 if side == "Sell" else 49999.5 - (i % 50) * 0.5
        if i % 4 == 3:
            price = 49999.5 if side == "Sell" else 50000  # cross: trades
        body = json.dumps({"symbol": "XBTUSD", "side": side, "orderQty": 100, "price": price,
                           "timeInForce": "ImmediateOrCancel" if i % 4 == 3 else
                           "GoodTillCancel"}).encode()
        _post_order(conn, key, body)
        i += 1
        if i % 150 == 0:  # keep under the open-orders cap
            expires = str(int(time.time()) + 60)
            sig = hmac.new(key[1].encode(), b"DELETE/api/v1/order/all" + expires.encode(),
                           hashlib.sha256).hexdigest()
            conn.request("DELETE", "/api/v1/order/all", None,
                         {"api-key": key[0], "api-expires": expires, "api-signature": sig})
            conn.getresponse().read()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> None:
    port = _free_port()
    data = tempfile.mkdtemp(prefix="perpetua-bench-")
    src = Path(__file__).resolve().parents[1] / "src"
    server = subprocess.Popen(
        [sys.executable, "-m", "perpetua.cli", "run", "--data-dir", data, "--port", str(port),
         "--operator-key", OPERATOR, "--no-rate-limits", "--no-store", "--log-level", "error"],
        env=dict(os.environ, PYTHONPATH=str(src)))
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/announcement").read()
                break
            except OSError:
                time.sleep(0.2)
        keys = [_account(port, 100 + i) for i in range(WORKERS)]
        results = _run_workers(port, keys, 0)
        total = sum(r[0] for r in results)
        elapsed = max(r[1] for r in results)
        statuses: dict[int, int] = {}
        for r in results:
            for k, v in r[3].items():
                statuses[k] = statuses.get(k, 0) + v
        paced = _run_workers(port, keys[:4], PACED_RATE / 4)
        latencies = [x for r in paced for x in r[2]]
        fanout = _fanout(port, keys)
        print(json.dumps({
            "bench": "gateway",
            "rest_orders_per_s": round(total / elapsed), "rest_workers": WORKERS,
            "rest_statuses": statuses,
            "paced_rate_per_s": PACED_RATE,
            "paced_achieved_per_s": round(len(latencies) / DURATION_S),
            "ack_p50_ms": round(_pct(latencies, 0.50), 3),
            "ack_p99_ms": round(_pct(latencies, 0.99), 3),
            "ws_fanout": fanout,
            "targets": {"rest_orders_per_s": 5000, "ack_p99_ms": 10, "ws_messages_per_s": 200000},
        }))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


if __name__ == "__main__":
    main()
