"""Sign-in cost with the chosen argon2id parameters, and what it does to trading.

1. argon2id with ``services.passwords``' parameters, hashed in this process on one thread:
   CPU ms per hash and hashes per second per core.
2. The real server (``perpetua run --no-rate-limits --no-store``, journal on) with mail to an
   aiosmtpd sink in this process: ``SIGN_INS`` users sign up and confirm; then order acks are
   measured at a paced 1,000 orders/s (``bench_gateway``'s load generators) alone, and again
   while sign-ins run at a paced 20/s -> sign-in p50/p99 latency, and the order ack p99 with
   and without them (hashing runs in worker threads: the event loop must not stall).

JSON on stdout. ``BENCH_SECONDS`` sets each phase's length (default 5).
"""

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

import bench_gateway as gateway_bench
from perpetua.services.mail import free_port
from perpetua.services.passwords import (
    ARGON2_MEMORY_KIB,
    ARGON2_PARALLELISM,
    ARGON2_TIME_COST,
    default_hasher,
)

HASHES = 30
SIGN_IN_RATE = 20.0
USERS = 20
PASSWORD = "violet tractor umbrella 42"
DURATION_S = gateway_bench.DURATION_S


class Sink:
    def __init__(self) -> None:
        self.tokens: dict[str, str] = {}

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        text = envelope.content.decode("utf-8", "replace")
        for line in text.splitlines():
            if line.startswith("Token: "):
                self.tokens[envelope.rcpt_tos[0]] = line[7:].strip()
        return "250 OK"


def _hash_cost() -> dict[str, float]:
    hasher = default_hasher()
    cpu0 = time.thread_time()
    for i in range(HASHES):
        hasher.hash(f"{PASSWORD} {i}")
    per_hash_s = (time.thread_time() - cpu0) / HASHES
    return {
        "hash_cpu_ms": round(per_hash_s * 1000, 1),
        "hashes_per_s_per_core": round(1 / per_hash_s, 1),
    }


def _post(port: int, path: str, body: dict[str, Any]) -> tuple[int, float]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1{path}",
        json.dumps(body).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    return status, time.perf_counter() - t0


def _users(port: int, sink: Sink) -> list[str]:
    emails = [f"bench{i}@example.com" for i in range(USERS)]
    for email in emails:
        _post(port, "/user/register", {"email": email, "password": PASSWORD})
    deadline = time.monotonic() + 30
    while len(sink.tokens) < USERS and time.monotonic() < deadline:
        time.sleep(0.05)
    for email in emails:
        _post(port, "/user/confirmEmail", {"token": sink.tokens[email]})
    return emails


def _sign_ins(port: int, emails: list[str], seconds: float, out: list[tuple[int, float]]) -> None:
    interval = 1 / SIGN_IN_RATE
    start = time.perf_counter()
    futures = []
    with ThreadPoolExecutor(max_workers=16) as pool:
        n = 0
        while (now := time.perf_counter()) < start + seconds:
            due = start + n * interval
            if now < due:
                time.sleep(due - now)
            futures.append(
                pool.submit(
                    _post,
                    port,
                    "/user/login",
                    {"email": emails[n % len(emails)], "password": PASSWORD},
                )
            )
            n += 1
    out.extend(f.result() for f in futures)


def _acks(port: int, keys: list[tuple[str, str]]) -> dict[str, float]:
    paced = gateway_bench._run_loadgen(port, keys, gateway_bench.PACED_RATE / len(keys), 8)
    latencies = [x for r in paced for x in r[2]]
    return {
        "achieved_per_s": round(len(latencies) / DURATION_S),
        "p50_ms": round(gateway_bench._pct(latencies, 0.5), 3),
        "p99_ms": round(gateway_bench._pct(latencies, 0.99), 3),
    }


def main() -> None:
    figures: dict[str, Any] = {
        "bench": "accounts",
        "cores": os.cpu_count(),
        "argon2id": {"t": ARGON2_TIME_COST, "m_kib": ARGON2_MEMORY_KIB, "p": ARGON2_PARALLELISM},
    }
    figures.update(_hash_cost())
    sink = Sink()
    smtp_port = free_port()
    smtp = Controller(sink, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    port = free_port()
    data = tempfile.mkdtemp(prefix="perpetua-bench-")
    src = Path(__file__).resolve().parents[1] / "src"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "perpetua.cli",
            "run",
            "--data-dir",
            data,
            "--port",
            str(port),
            "--operator-key",
            gateway_bench.OPERATOR,
            "--no-rate-limits",
            "--no-store",
            "--log-level",
            "error",
        ],
        env=dict(
            os.environ, PYTHONPATH=str(src), PERPETUA_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}"
        ),
    )
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/announcement").read()
                break
            except OSError:
                time.sleep(0.2)
        emails = _users(port, sink)
        keys = [gateway_bench._account(port, 100 + i) for i in range(2)]
        figures["order_acks_alone"] = _acks(port, keys)
        results: list[tuple[int, float]] = []
        signer = threading.Thread(target=_sign_ins, args=(port, emails, DURATION_S, results))
        signer.start()
        figures["order_acks_with_sign_ins"] = _acks(port, keys)
        signer.join()
        latencies = [t for status, t in results if status == 200]
        figures["sign_ins"] = {
            "rate_per_s": SIGN_IN_RATE,
            "done": len(results),
            "ok": len(latencies),
            "p50_ms": round(gateway_bench._pct(latencies, 0.5), 1) if latencies else None,
            "p99_ms": round(gateway_bench._pct(latencies, 0.99), 1) if latencies else None,
        }
        print(json.dumps(figures))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        smtp.stop()


if __name__ == "__main__":
    main()
