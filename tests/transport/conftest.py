"""Real nats-server processes for the transport tests: one JetStream server, or three in a
JetStream cluster, each on free loopback ports with its own store under the test's tmp_path."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from perpetua.runtime.natsd import NatsCluster, nats_server_binary


def _cluster(root: Path, size: int) -> Iterator[NatsCluster]:
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed")
    cluster = NatsCluster(root, size)
    cluster.start()
    try:
        cluster.ready()
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def nats_single(tmp_path: Path) -> Iterator[NatsCluster]:
    yield from _cluster(tmp_path / "nats", 1)


@pytest.fixture
def nats_trio(tmp_path: Path) -> Iterator[NatsCluster]:
    yield from _cluster(tmp_path / "nats", 3)
