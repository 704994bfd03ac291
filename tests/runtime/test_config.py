"""``VenueConfig`` from TOML: every key read, unknown keys and bad values named, paths taken
from the file's folder, and the command line over the file."""

from pathlib import Path

import pytest

from perpetua.cli import build_parser, run_config
from perpetua.runtime import ConfigError, FeedsConfig, VenueConfig, load_config, parse_config

FULL = """
data_dir = "venue-data"
database_url = "postgresql+psycopg://127.0.0.1/test"
operator_key = "op"
store = false

[server]
host = "0.0.0.0"
port = 9000
forwarded_allow_ips = ["10.1.2.3"]
log_level = "warning"
log_format = "text"

[rate_limits]
enabled = false
anonymous_per_minute = 60

[accounts]
hash_workers = 2
hash_nice = 15
hash_idle = false
hash_cpus = [1, 1, 0]

[feeds]
seed = 7
default = "none"

[feeds.index.".BXBT"]
source = "replay"
path = "prices.csv"

[feeds.index.".BETH"]
source = "live"
decimals = 2
[[feeds.index.".BETH".venues]]
name = "Bitstamp"
url = "https://example.invalid/t"
format = "bitstamp"
weight_ppm = 1000000
"""


def test_every_key_is_read(tmp_path: Path) -> None:
    path = tmp_path / "perpetua.toml"
    path.write_text(FULL)
    config = load_config(path)
    assert config.data_dir == tmp_path / "venue-data"
    assert config.database_url.startswith("postgresql")
    assert (config.operator_key, config.store) == ("op", False)
    assert (config.server.host, config.server.port) == ("0.0.0.0", 9000)
    assert config.server.forwarded_allow_ips == ("10.1.2.3",)
    assert (config.server.log_level, config.server.log_format) == ("warning", "text")
    assert (config.rate_limits_enabled, config.anonymous_per_minute) == (False, 60)
    assert (config.feeds.seed, config.feeds.default) == (7, "none")
    assert config.feeds.source_of(".BXBT").path == tmp_path / "prices.csv"
    live = config.feeds.source_of(".BETH").live
    assert live is not None and live.venues[0].name == "Bitstamp"
    assert config.feeds.source_of(".BSOL").source == "none"  # the default
    assert (config.accounts.hash_workers, config.accounts.hash_nice) == (2, 15)
    assert (config.accounts.hash_idle, config.accounts.hash_cpus) == (False, (1, 0))


def test_an_empty_file_is_the_embedded_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.toml"
    path.write_text("")
    loaded = load_config(path)
    assert loaded.server == VenueConfig().server
    assert loaded.feeds == FeedsConfig()


@pytest.mark.parametrize(
    ("document", "named"),
    [
        ({"data_dri": "x"}, "data_dri"),
        ({"server": {"port": "8000"}}, "server.port"),
        ({"server": {"port": 70000}}, "server.port"),
        ({"server": {"log_level": "loud"}}, "server.log_level"),
        ({"server": {"forwarded_allow_ips": "127.0.0.1"}}, "server.forwarded_allow_ips"),
        ({"rate_limits": {"anonymous_per_minute": 0}}, "rate_limits.anonymous_per_minute"),
        ({"store": "yes"}, "store"),
        ({"feeds": {"default": "replay"}}, "feeds.default"),
        ({"feeds": {"index": {"BXBT": {}}}}, "feeds.index.BXBT"),
        ({"feeds": {"index": {".BXBT": {"source": "replay"}}}}, "feeds.index..BXBT.path"),
        ({"feeds": {"index": {".BXBT": {"source": "live"}}}}, "feeds.index..BXBT.venues"),
        (
            {
                "feeds": {
                    "index": {
                        ".BXBT": {
                            "source": "live",
                            "venues": [
                                {
                                    "name": "X",
                                    "url": "ftp://x",
                                    "format": "bitstamp",
                                    "weight_ppm": 1,
                                }
                            ],
                        }
                    }
                }
            },
            "venues[0]",
        ),
        ({"feeds": {"index": {".BXBT": {"sauce": "x"}}}}, "sauce"),
        ({"accounts": {"hash_workers": 0}}, "accounts.hash_workers"),
        ({"accounts": {"hash_nice": 20}}, "accounts.hash_nice"),
        ({"accounts": {"hash_pool": 1}}, "hash_pool"),
        ({"accounts": {"hash_idle": 1}}, "accounts.hash_idle"),
        ({"accounts": {"hash_cpus": [-1]}}, "accounts.hash_cpus"),
        ({"accounts": {"hash_cpus": "0"}}, "accounts.hash_cpus"),
    ],
)
def test_bad_values_are_named(document: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named.replace(".", r"\.").replace("[", r"\[")):
        parse_config(document)


def test_not_toml_and_missing_files_are_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("data_dir = \n")
    with pytest.raises(ConfigError, match="not TOML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="missing.toml"):
        load_config(tmp_path / "missing.toml")


def test_options_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "perpetua.toml"
    path.write_text(FULL)
    args = build_parser().parse_args(
        [
            "run",
            "--config",
            str(path),
            "--port",
            "9100",
            "--data-dir",
            str(tmp_path / "d"),
            "--forwarded-allow-ips",
            "10.0.0.1, 10.0.0.2",
            "--no-feeds",
            "--no-rate-limits",
        ]
    )
    config = run_config(args)
    assert config.server.port == 9100 and config.server.host == "0.0.0.0"
    assert config.server.forwarded_allow_ips == ("10.0.0.1", "10.0.0.2")
    assert config.data_dir == tmp_path / "d"
    assert config.feeds.default == "none" and not config.feeds.indices
    assert config.rate_limits_enabled is False
