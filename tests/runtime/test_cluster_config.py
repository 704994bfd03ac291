"""cluster.toml: every role reads; unknown keys, wrong types and bad roles are errors."""

from pathlib import Path

import pytest

from perpetua.runtime.cluster_config import load_cluster_config
from perpetua.runtime.config import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cluster.toml"
    path.write_text(text)
    return path


def test_a_gateway_file_reads(tmp_path: Path) -> None:
    config = load_cluster_config(
        write(
            tmp_path,
            'role = "gateway"\nname = "g1"\nservers = ["nats://a:4222", "nats://b:4222"]\n'
            'replicas = 3\ndatabase_url = "postgresql+psycopg://x/y"\n[server]\nport = 9000\n',
        )
    )
    assert (config.role, config.name, config.replicas) == ("gateway", "g1", 3)
    assert config.servers == ("nats://a:4222", "nats://b:4222")
    assert config.server.port == 9000 and config.server.reuse_port
    assert config.catalogue is None  # the embedded futures catalogue


def test_a_catalogue_file_is_relative_to_the_cluster_file(tmp_path: Path) -> None:
    config = load_cluster_config(
        write(tmp_path, 'role = "gateway"\nname = "g1"\ncatalogue = "futures.toml"\n')
    )
    assert config.catalogue == tmp_path / "futures.toml"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('role = "sequencer"\nname = "s"\nreplica = 3\n', "replica: unknown key"),
        ('role = "sequencer"\nname = "s"\nreplicas = "3"\n', "replicas: wrong type"),
        ('role = "leader"\nname = "s"\n', "role: must be one of"),
        ('role = "sequencer"\n', "name: required"),
        ('role = "sequencer"\nname = "s"\nreplicas = 2\n', "replicas: 1, 3 or 5"),
        ('role = "gateway"\nname = "g"\n[server]\nports = 1\n', "server.ports: unknown key"),
        ('role = "sequencer"\nname = "s"\n[porl]\ndayly = true\n', "porl.dayly"),
        ('role = "sequencer"\nname = "s"\n[fees]\nadv_usd_min = [1]\n', "fees.adv_usd_min"),
        ('role = "gateway"\nname = "g"\n[compliance]\nsync_interval_s = 0\n', "sync_interval"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_cluster_config(write(tmp_path, text))


def test_sequencers_write_snapshots_by_default(tmp_path: Path) -> None:
    from perpetua.transport.node import NodeConfig
    from perpetua.transport.snapshots import SNAPSHOT_EVERY_COMMANDS

    config = load_cluster_config(write(tmp_path, 'role = "sequencer"\nname = "s1"\n'))
    assert config.snapshot_every == SNAPSHOT_EVERY_COMMANDS == NodeConfig("s1", ()).snapshot_every
    off = load_cluster_config(
        write(tmp_path, 'role = "sequencer"\nname = "s1"\nsnapshot_every = 0\n')
    )
    assert off.snapshot_every == 0


def test_the_leaders_services_read_the_venue_tables(tmp_path: Path) -> None:
    """[compliance], [fees] and [porl] read as in the venue config; sanctions lists relative to
    the cluster file (decisions §28)."""
    config = load_cluster_config(
        write(
            tmp_path,
            'role = "sequencer"\nname = "s1"\n'
            "[compliance]\nkyc_required = true\nsync_interval_s = 5\n"
            'sanctions = [{ path = "sdn.csv", format = "generic" }]\n'
            "[fees]\nvolume_check_interval_s = 2\n"
            '[porl]\ndaily = false\nvenue = "acme"\n',
        )
    )
    assert config.compliance.kyc_required and config.compliance.sync_interval_s == 5
    assert [s.path for s in config.compliance.sanctions_lists] == [tmp_path / "sdn.csv"]
    assert config.fees.volume_check_interval_s == 2
    assert (config.porl.daily, config.porl.venue) == (False, "acme")
    default = load_cluster_config(write(tmp_path, 'role = "gateway"\nname = "g1"\n'))
    assert default.porl.daily and not default.compliance.kyc_required
