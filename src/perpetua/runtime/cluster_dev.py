"""A whole cluster on one machine, for development (`make cluster`), tests and benchmarks:
``nats-server`` nodes (`natsd`), and ``perpetua run --cluster`` processes by role, each with its
own ``cluster.toml`` under ``root``.

Invariants
    - Every process it starts is its own session (``kill -9`` reaches it alone) and is stopped
      by ``stop()``: SIGTERM (a clean stop: a leader releases its lease), then SIGKILL after
      ``STOP_TIMEOUT_S``.
    - Ports are free loopback ports chosen at start; the gateway processes share one port
      (SO_REUSEPORT) unless ``reuse_port`` is False.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgspec
import nats
from nats.aio.client import Client

from perpetua.runtime.natsd import NatsCluster, free_port
from perpetua.runtime.venue import order_id_key, private_directory
from perpetua.services.server_key import load_server_key
from perpetua.transport.stream import ClusterNames

__all__ = ["DevCluster", "Proc", "node_status"]

STOP_TIMEOUT_S: Final = 15.0
STATUS_TIMEOUT_S: Final = 0.5


@dataclass(slots=True)
class Proc:
    role: str
    name: str
    config: Path
    log: Path
    metrics_port: int = 0  # sequencer, projector: GET /metrics (a gateway's is on its port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass(slots=True)
class DevCluster:
    root: Path
    nats_nodes: int = 3
    prefix: str = "perpetua"
    database_url: str = ""
    gateway_port: int = 0
    reuse_port: bool = True
    rate_limits: bool = True
    smtp_url: str = ""  # the gateways' mail relay; empty: $PERPETUA_SMTP_URL, else an outbox
    snapshot_every: int | None = None  # the sequencers'; None: cluster.toml's default
    wallets: str = ""  # the [wallets] table's lines for sequencers and gateways (empty: none)
    tables: str = ""  # more tables ([porl], [fees], [compliance]) for sequencers and gateways
    nats: NatsCluster = field(init=False)
    procs: dict[str, Proc] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.nats = NatsCluster(self.root / "nats", self.nats_nodes)
        if not self.gateway_port:
            self.gateway_port = free_port()

    @property
    def names(self) -> ClusterNames:
        return ClusterNames(self.prefix)

    @property
    def replicas(self) -> int:
        return 3 if self.nats_nodes >= 3 else 1

    def start_nats(self) -> None:
        self.nats.start()
        self.nats.ready()

    def add(self, role: str, name: str, port: int | None = None) -> Proc:
        """Write ``name``'s cluster.toml (not started)."""
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        servers = ", ".join(f'"{url}"' for url in self.nats.urls)
        metrics_port = 0 if role == "gateway" else free_port()
        lines = [
            f'role = "{role}"',
            f'name = "{name}"',
            f"servers = [{servers}]",
            f'prefix = "{self.prefix}"',
            f"replicas = {self.replicas}",
            f'data_dir = "{self.root / "shared"}"',
            f'database_url = "{self.database_url}"',
            'operator_key = "dev-operator-key"',
            f"rate_limits = {'true' if self.rate_limits else 'false'}",
            f"metrics_port = {metrics_port}",
            f'smtp_url = "{self.smtp_url}"',
            *([] if self.snapshot_every is None else [f"snapshot_every = {self.snapshot_every}"]),
            "[server]",
            f"port = {port if port is not None else self.gateway_port}",
            f"reuse_port = {'true' if self.reuse_port else 'false'}",
            'log_level = "warning"',
            *(["[wallets]", self.wallets] if self.wallets and role != "projector" else []),
            *([self.tables] if self.tables and role != "projector" else []),
        ]
        config = directory / "cluster.toml"
        config.write_text("\n".join(lines) + "\n")
        proc = Proc(role, name, config, directory / "process.log", metrics_port)
        self.procs[name] = proc
        return proc

    def start(self, name: str) -> Proc:
        proc = self.procs[name]
        if proc.alive:
            return proc
        if proc.role in ("gateway", "sequencer"):  # the keys they share, made once, before any
            shared = private_directory(self.root / "shared")
            order_id_key(shared)
            load_server_key(shared)
        env = dict(os.environ)
        src = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
        with proc.log.open("ab") as log:
            proc.process = subprocess.Popen(
                [sys.executable, "-m", "perpetua.cli", "run", "--cluster", str(proc.config)],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )  # fmt: skip
        return proc

    def kill(self, name: str) -> None:
        """kill -9."""
        proc = self.procs[name]
        if proc.process is not None and proc.alive:
            proc.process.send_signal(signal.SIGKILL)
            proc.process.wait(STOP_TIMEOUT_S)

    def terminate(self, name: str) -> int | None:
        proc = self.procs[name]
        process = proc.process
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)
        return process.returncode

    def stop(self) -> dict[str, int | None]:
        """Every process (gateways, projector, sequencers), then the NATS servers."""
        order = sorted(self.procs, key=lambda n: {"gateway": 0, "projector": 1}.get(
            self.procs[n].role, 2))  # fmt: skip
        codes = {name: self.terminate(name) for name in order}
        self.nats.stop()
        return codes


async def node_status(nc: Client, names: ClusterNames, node: str) -> dict[str, Any] | None:
    """A sequencer's status (`transport.node`), None if it does not answer."""
    try:
        reply = await nc.request(names.status_subject(node), b"", timeout=STATUS_TIMEOUT_S)
    except (TimeoutError, nats.errors.Error):
        return None
    status: dict[str, Any] = msgspec.msgpack.decode(reply.data)
    return status


def main() -> int:
    """``make cluster``: three nats-server nodes, two sequencers, two gateways sharing one port
    (SO_REUSEPORT), a projector on PostgreSQL; runs until Ctrl-C, then stops everything."""
    import argparse
    import tempfile
    import time

    parser = argparse.ArgumentParser(prog="perpetua-cluster-dev", description=main.__doc__)
    parser.add_argument("--root", type=Path, default=None, help="state dir (default: temporary)")
    parser.add_argument("--database-url", default=os.environ.get("PERPETUA_DATABASE_URL", ""))
    parser.add_argument("--port", type=int, default=8000, help="the gateways' shared port")
    args = parser.parse_args()
    root = args.root or Path(tempfile.mkdtemp(prefix="perpetua-cluster-"))
    if not args.database_url:
        parser.error("--database-url (or $PERPETUA_DATABASE_URL): the read models' PostgreSQL")
    cluster = DevCluster(root, 3, database_url=args.database_url, gateway_port=args.port)
    stops: list[int] = []
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda signum, _frame: stops.append(signum))
    try:
        cluster.start_nats()
        for role, name in (
            ("sequencer", "s1"), ("sequencer", "s2"), ("projector", "p1"),
            ("gateway", "g1"), ("gateway", "g2"),
        ):  # fmt: skip
            cluster.add(role, name)
            cluster.start(name)
        sys.stderr.write(
            f"cluster under {root}: NATS {', '.join(cluster.nats.urls)}\n"
            f"gateways: http://127.0.0.1:{args.port} (operator key dev-operator-key)\n"
            + "".join(
                f"{p.role} {p.name}: http://127.0.0.1:{p.metrics_port}/metrics\n"
                for p in cluster.procs.values()
                if p.metrics_port
            )
            + "Ctrl-C stops it\n"
        )
        while not stops:
            time.sleep(0.2)
    finally:
        codes = cluster.stop()
        sys.stderr.write(f"stopped: {codes}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
