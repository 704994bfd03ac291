"""Sign-in cost with the chosen argon2id parameters, and what it does to trading.

1. argon2id with ``services.passwords``' parameters, hashed in this process on one thread:
   CPU ms per hash and hashes per second per core.
2. The real server (``perpetua run --no-rate-limits --no-store``, journal on) with mail to an
   aiosmtpd sink in this process: ``USERS`` users sign up and confirm; then order acks are
   measured at a paced 1,000 orders/s (``bench_gateway``'s load generators) alone, and again
   while sign-ins run at a paced 20/s -> sign-in p50/p99 latency, and the order ack p99 with
   and without them (hashing runs in the hash pool's processes: the event loop must not stall).
3. The arms alternate, ``BENCH_ROUNDS`` rounds of one phase each, so all see the same
   background load on a shared machine; each phase reports its own p99 and the load average
   when it began, and each arm its pooled figures and the CPU seconds of the server process
   and of its children (the hash workers) over its phases.
4. The arms with sign-ins differ only in where the hash workers run, set by this process
   (root, or the workers' owner) before each phase: ``idle`` is the venue's default
   (``SCHED_IDLE``, ``hash_pool`` rule 2); ``nice`` is ``SCHED_OTHER`` at nice +10 (the
   previous default); ``idle_pinned`` and ``nice_pinned`` also pin the workers to the last
   CPU and every thread of the server to the others. The ``hash_only_*`` arms send no
   sign-in: a hash worker of this process (the same module and parameters) hashes at the
   sign-in rate, which separates the hashing's share of the damage from the sign-in
   requests' own work in the server: ``hash_only_idle_shared`` at ``SCHED_IDLE`` in the
   server's session (its autogroup), ``hash_only_idle_own`` and ``hash_only_nice_own`` in a
   session of its own. ``BENCH_ARMS`` names the arms besides ``alone`` (default ``idle``;
   e.g. ``idle,nice,hash_only_idle_shared,hash_only_idle_own,hash_only_nice_own``).

JSON on stdout. ``BENCH_SECONDS`` sets each phase's length (default 5), ``BENCH_ROUNDS`` the
number of rounds (default 4).
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
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "4"))
SIGN_IN_ARMS = os.environ.get("BENCH_ARMS", "idle").split(",")
NICE = 10


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


SPIN_MS = 17.4  # CPU ms per request of the spin_only arm: one argon2id hash's, measured quiet
# the spin_only arm's worker: at SCHED_IDLE, answers each line after SPIN_MS of its own CPU time
SPIN_WORKER = """
import os, sys, time
os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
spin = float(sys.argv[1]) / 1000
for line in sys.stdin:
    end = time.thread_time() + spin
    while time.thread_time() < end:
        pass
    sys.stdout.write("[]\\n")
    sys.stdout.flush()
"""


def _hashes(seconds: float, arm: str) -> None:
    """Rule 4's hash-only arms: one worker (``services.hash_pool``'s own module) hashing at
    the sign-in rate for ``seconds``, at ``SCHED_IDLE`` (``idle`` in the arm's name) or nice,
    in its own session (``own``: its own autogroup) or in this process's (``shared``: the
    server's autogroup, as the server's own workers at ``SCHED_IDLE``). A suffix
    ``@t<time_cost>m<memory_kib>`` hashes with those argon2id parameters instead."""
    time_cost, memory_kib = ARGON2_TIME_COST, ARGON2_MEMORY_KIB
    if "@" in arm:  # e.g. hash_only_idle_shared@t5m7168: other argon2id parameters, same rate
        spec = arm.split("@", 1)[1]
        time_cost, memory_kib = (int(x) for x in spec[1:].split("m"))
    params = [time_cost, memory_kib, ARGON2_PARALLELISM, NICE, int("idle" in arm)]
    command = [sys.executable, "-m", "perpetua.services.hash_pool", *(str(p) for p in params), "-"]
    if arm.startswith("spin_only"):  # the same CPU per request, no argon2: any load of that size
        command = [sys.executable, "-c", SPIN_WORKER, str(SPIN_MS)]
    worker = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        start_new_session=arm.endswith("own"),
    )
    assert worker.stdin is not None and worker.stdout is not None
    interval = 1 / SIGN_IN_RATE
    start = time.perf_counter()
    n = 0
    try:
        while (now := time.perf_counter()) < start + seconds:
            due = start + n * interval
            if now < due:
                time.sleep(due - now)
            worker.stdin.write(json.dumps(["hash", f"{PASSWORD} {n}"]).encode() + b"\n")
            worker.stdin.flush()
            worker.stdout.readline()
            n += 1
    finally:
        worker.stdin.close()
        worker.wait(10)


def _acks(port: int, keys: list[tuple[str, str]]) -> list[float]:
    paced = gateway_bench._run_loadgen(port, keys, gateway_bench.PACED_RATE / len(keys), 8)
    return [x for r in paced for x in r[2]]


def _children(pid: int) -> list[int]:
    return [
        int(child)
        for task in Path(f"/proc/{pid}/task").iterdir()
        for child in (task / "children").read_text().split()
    ]


def _cpu_s(pid: int) -> tuple[float, float]:
    """CPU seconds of the server process and of its live children (the hash workers)."""
    own = gateway_bench._cpu_s(pid)
    return own, sum(gateway_bench._cpu_s(child) for child in _children(pid))


def _place(pid: int, arm: str) -> None:
    """Rule 4: the hash workers' policy and CPUs, and the server's CPUs, for ``arm``."""
    everything = sorted(os.sched_getaffinity(0) | set(range(os.cpu_count() or 1)))
    pinned = arm.endswith("_pinned") and len(everything) > 1
    for worker in _children(pid):
        if arm.startswith("idle"):
            os.sched_setscheduler(worker, os.SCHED_IDLE, os.sched_param(0))
        else:
            os.sched_setscheduler(worker, os.SCHED_OTHER, os.sched_param(0))
            os.setpriority(os.PRIO_PROCESS, worker, NICE)
        os.sched_setaffinity(worker, everything[-1:] if pinned else everything)
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), everything[:-1] if pinned else everything)


def _summary(latencies: list[float]) -> dict[str, float]:
    return {
        "achieved_per_s": round(len(latencies) / (DURATION_S * ROUNDS)),
        "p50_ms": round(gateway_bench._pct(latencies, 0.5), 3),
        "p99_ms": round(gateway_bench._pct(latencies, 0.99), 3),
    }


def _rounds(port: int, pid: int, keys: list[tuple[str, str]], emails: list[str]) -> dict[str, Any]:
    """Rule 3: alone and with sign-ins (one arm per placement, rule 4), alternating; pooled
    and per-phase figures."""
    arms: dict[str, dict[str, Any]] = {
        arm: {"latencies": [], "phases": [], "server_cpu_s": 0.0, "hash_workers_cpu_s": 0.0}
        for arm in ["alone", *SIGN_IN_ARMS]
    }
    sign_ins: dict[str, list[tuple[int, float]]] = {arm: [] for arm in arms}
    for _round in range(ROUNDS):
        for arm, figures in arms.items():
            _place(pid, arm if arm.startswith(("idle", "nice")) else "idle")
            load = os.getloadavg()[0]
            own0, children0 = _cpu_s(pid)
            signer = None
            if arm.startswith(("hash_only", "spin_only")):
                signer = threading.Thread(target=_hashes, args=(DURATION_S, arm))
                signer.start()
            elif arm != "alone":
                signer = threading.Thread(
                    target=_sign_ins, args=(port, emails, DURATION_S, sign_ins[arm])
                )
                signer.start()
            latencies = _acks(port, keys)
            if signer is not None:
                signer.join()
            own1, children1 = _cpu_s(pid)
            figures["server_cpu_s"] += own1 - own0
            figures["hash_workers_cpu_s"] += max(0.0, children1 - children0)
            figures["latencies"].extend(latencies)
            figures["phases"].append(
                {"load_1m": round(load, 2), "p99_ms": round(gateway_bench._pct(latencies, 0.99), 1)}
            )
    out: dict[str, Any] = {}
    for arm, figures in arms.items():
        row = {
            **_summary(figures["latencies"]),
            "server_cpu_s": round(figures["server_cpu_s"], 2),
            "hash_workers_cpu_s": round(figures["hash_workers_cpu_s"], 2),
            "phases": figures["phases"],
        }
        if sign_ins[arm]:
            latencies = [t for status, t in sign_ins[arm] if status == 200]
            row["sign_ins"] = {
                "rate_per_s": SIGN_IN_RATE,
                "done": len(sign_ins[arm]),
                "ok": len(latencies),
                "p50_ms": round(gateway_bench._pct(latencies, 0.5), 1) if latencies else None,
                "p99_ms": round(gateway_bench._pct(latencies, 0.99), 1) if latencies else None,
            }
        out[
            f"order_acks_{arm}"
            if arm in ("alone",) or arm.startswith(("hash_only", "spin_only"))
            else f"order_acks_with_sign_ins_{arm}"
        ] = row
    return out


def main() -> None:
    figures: dict[str, Any] = {
        "bench": "accounts",
        "cores": os.cpu_count(),
        "argon2id": {"t": ARGON2_TIME_COST, "m_kib": ARGON2_MEMORY_KIB, "p": ARGON2_PARALLELISM},
        "load_1m_at_start": round(os.getloadavg()[0], 2),
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
        figures["rounds"] = ROUNDS
        figures["phase_s"] = DURATION_S
        figures.update(_rounds(port, server.pid, keys, emails))
        print(json.dumps(figures))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
        smtp.stop()


if __name__ == "__main__":
    main()
