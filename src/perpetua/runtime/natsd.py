"""Local ``nats-server`` processes with JetStream: one server, or a cluster of three on loopback,
for development (`make cluster`) and tests.

Invariants
    - Every server binds loopback only, on ports chosen free at start (never fixed), and keeps
      its JetStream store in its own directory under ``root``: servers of one cluster, and
      clusters of concurrent test runs, never share a port or a store.
    - ``kill(i)`` is ``kill -9``; ``start(i)`` brings the same server back on the same ports and
      store (a crashed machine restarting). ``stop()`` terminates every process it started and
      waits for it.
    - `wait_ready` returns once the server answers its monitoring ``/healthz`` (JetStream
      included); a cluster is usable once its JetStream meta leader is elected, which
      ``ready()`` waits for as well.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

__all__ = ["NATS_SERVER_ENV", "NatsCluster", "free_port", "nats_server_binary"]

NATS_SERVER_ENV: Final = "PERPETUA_NATS_SERVER"
DEFAULT_BINARIES: Final = ("/usr/sbin/nats-server", "/usr/local/bin/nats-server")
READY_TIMEOUT_S: Final = 20.0
STOP_TIMEOUT_S: Final = 10.0
CLUSTER_NAME: Final = "perpetua"


def nats_server_binary() -> str | None:
    """``$PERPETUA_NATS_SERVER``, else nats-server on the PATH or in the usual places."""
    named = os.environ.get(NATS_SERVER_ENV)
    if named:
        return named
    found = shutil.which("nats-server")
    if found:
        return found
    return next((path for path in DEFAULT_BINARIES if os.access(path, os.X_OK)), None)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(slots=True)
class _Node:
    name: str
    client_port: int
    cluster_port: int
    monitor_port: int
    store: Path
    config: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None


@dataclass(slots=True)
class NatsCluster:
    """``size`` nats-server processes under ``root`` (1: a single JetStream server)."""

    root: Path
    size: int = 3
    binary: str = field(default_factory=lambda: nats_server_binary() or "nats-server")
    nodes: list[_Node] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        for index in range(self.size):
            name = f"n{index + 1}"
            self.nodes.append(
                _Node(
                    name,
                    free_port(),
                    free_port(),
                    free_port(),
                    self.root / name / "store",
                    self.root / name / "nats.conf",
                    self.root / name / "nats.log",
                )  # fmt: skip
            )
        for node in self.nodes:
            node.store.mkdir(parents=True, exist_ok=True)
            node.config.write_text(self._config_text(node))

    def _config_text(self, node: _Node) -> str:
        lines = [
            f"server_name: {node.name}",
            "host: 127.0.0.1",
            f"port: {node.client_port}",
            f"http: 127.0.0.1:{node.monitor_port}",
            f'jetstream {{ store_dir: "{node.store}" }}',
        ]
        if self.size > 1:
            routes = ", ".join(f"nats-route://127.0.0.1:{n.cluster_port}" for n in self.nodes)
            lines.append(
                f"cluster {{ name: {CLUSTER_NAME}, listen: 127.0.0.1:{node.cluster_port},"
                f" routes: [{routes}] }}"
            )
        return "\n".join(lines) + "\n"

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(f"nats://127.0.0.1:{node.client_port}" for node in self.nodes)

    def start(self, index: int | None = None) -> None:
        """Start every node (or one); does not wait (see `ready`)."""
        for i, node in enumerate(self.nodes):
            if index is not None and i != index:
                continue
            if node.process is not None and node.process.poll() is None:
                continue
            with node.log.open("ab") as log:
                node.process = subprocess.Popen(
                    [self.binary, "-c", str(node.config)],
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip

    def ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Wait until every running node is healthy, JetStream meta leader included."""
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            if node.process is None or node.process.poll() is not None:
                continue
            while not _healthy(node.monitor_port):  # bounded by the deadline
                if node.process.poll() is not None:
                    raise RuntimeError(f"nats-server {node.name} exited: see {node.log}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"nats-server {node.name} not ready: see {node.log}")
                time.sleep(0.1)

    def kill(self, index: int) -> None:
        """kill -9 one node."""
        process = self.nodes[index].process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(STOP_TIMEOUT_S)

    def stop(self) -> None:
        for node in self.nodes:
            process = node.process
            if process is None or process.poll() is not None:
                continue
            process.terminate()
        for node in self.nodes:
            process = node.process
            if process is None:
                continue
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)


def _healthy(monitor_port: int) -> bool:
    url = f"http://127.0.0.1:{monitor_port}/healthz"
    with (
        contextlib.suppress(OSError, urllib.error.URLError, ValueError),
        urllib.request.urlopen(url, timeout=1) as response,  # noqa: S310 - loopback
    ):
        body = json.loads(response.read() or b"{}")
        return bool(response.status == 200 and body.get("status") == "ok")
    return False
