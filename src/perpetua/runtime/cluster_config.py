"""``ClusterConfig``: one process of a cluster, read from ``cluster.toml``
(``perpetua run --cluster cluster.toml``). Unknown keys are errors, as in `config`.

The file's shape::

    role = "sequencer"             # sequencer | gateway | projector
    name = "s1"                    # this process's name, unique in the cluster
    servers = ["nats://127.0.0.1:4222"]   # any NATS servers of the cluster
    prefix = "perpetua"            # stream, buckets and subjects are named after it
    replicas = 3                   # the journal stream's and buckets' replicas (1 locally)
    lease_ttl_s = 2.0              # sequencer: how long a silent leader keeps the lease
    snapshot_every = 100000        # sequencer: a standby snapshots each this many seqs (0: never)
    data_dir = "data"              # gateway: the order-id key (copy it to every gateway)
    database_url = ""              # gateway, projector: the read models (PostgreSQL)
    operator_key = ""
    rate_limits = true             # gateway: false only for benchmarks
    catalogue = ""                 # gateway: futures catalogue file; empty: the embedded one
    smtp_url = ""                  # gateway: mail relay (smtp[s]://user:pass@host:port); empty:
                                   # $PERPETUA_SMTP_URL, else an outbox under data_dir
    public_url = ""                # gateway: the venue's address in mailed links; empty: [server]
    metrics_port = 0               # sequencer, projector: GET /metrics on [server] host and this
                                   # port (0: none); a gateway serves it on its own port

    [feeds]                        # sequencer: the index feeds the leader runs (as in the
                                   # venue config; simulated by default)
    [wallets]                      # sequencer, gateway: as in the venue config, chain "none"
                                   # or "rpc" (one chain for all): gateways serve the routes
                                   # without keys, the leading sequencer runs the jobs
                                   # (`cluster_leader`); the hot keystore's password in
                                   # $PERPETUA_WALLET_PASSWORD or data_dir/secrets
    [compliance]                   # sequencer, gateway: as in the venue config (the same on
                                   # every process): gateways serve the KYC routes, the
                                   # leading sequencer runs the sync and the lists' reload
    [fees]                         # sequencer: the volume tiers (the leader measures)
    [porl]                         # sequencer, gateway: proof of reserves (the leader takes
                                   # the daily proof; gateways serve it from the database)
    [server]                       # gateway: as in the venue config; reuse_port lets several
    host = "127.0.0.1"             # gateway processes share one port (SO_REUSEPORT)
    port = 8000
    reuse_port = true
"""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from perpetua.runtime.config import (
    ConfigError,
    FeedsConfig,
    FeesConfig,
    PorlConfig,
    WalletsConfig,
    compliance_config,
    feeds_config,
    fees_config,
    porl_config,
    wallets_config,
)
from perpetua.services.compliance import ComplianceConfig

__all__ = ["ROLES", "ClusterConfig", "ClusterServerConfig", "load_cluster_config"]

ROLES: Final = ("sequencer", "gateway", "projector")


@dataclass(frozen=True, slots=True)
class ClusterServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    reuse_port: bool = True
    log_level: str = "info"


@dataclass(frozen=True, slots=True)
class ClusterConfig:
    role: str
    name: str
    servers: tuple[str, ...] = ("nats://127.0.0.1:4222",)
    prefix: str = "perpetua"
    replicas: int = 1
    lease_ttl_s: float = 2.0
    snapshot_every: int = 100_000  # = transport.snapshots.SNAPSHOT_EVERY_COMMANDS (tested)
    data_dir: Path = Path("data")
    database_url: str = ""
    operator_key: str = ""
    rate_limits: bool = True
    catalogue: Path | None = None  # the futures catalogue file (runtime.catalogue); None: embedded
    metrics_port: int = 0  # sequencer, projector: GET /metrics there (0: none)
    smtp_url: str = ""  # gateway: mail relay; empty: $PERPETUA_SMTP_URL, else an outbox
    public_url: str = ""  # gateway: the address in mailed links; empty: http://[server]
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    wallets: WalletsConfig = field(default_factory=WalletsConfig)
    compliance: ComplianceConfig = field(default_factory=ComplianceConfig)
    fees: FeesConfig = field(default_factory=FeesConfig)
    porl: PorlConfig = field(default_factory=PorlConfig)
    server: ClusterServerConfig = field(default_factory=ClusterServerConfig)


_TOP: Final = {
    "role": str, "name": str, "servers": list, "prefix": str, "replicas": int,
    "lease_ttl_s": (int, float), "snapshot_every": int, "data_dir": str, "database_url": str,
    "operator_key": str, "rate_limits": bool, "catalogue": str, "metrics_port": int,
    "smtp_url": str, "public_url": str,
    "server": dict, "feeds": dict, "wallets": dict, "compliance": dict, "fees": dict,
    "porl": dict,
}  # fmt: skip
_SERVER: Final = {"host": str, "port": int, "reuse_port": bool, "log_level": str}


def _check(table: dict[str, Any], known: dict[str, Any], where: str) -> None:
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{where}{key}: unknown key")
        expected = known[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(f"{where}{key}: wrong type {type(value).__name__}")


def load_cluster_config(path: Path | str) -> ClusterConfig:
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"{path}: {error}") from None
    _check(raw, _TOP, "")
    server_raw = raw.pop("server", {})
    _check(server_raw, _SERVER, "server.")
    role = raw.get("role", "")
    if role not in ROLES:
        raise ConfigError(f"role: must be one of {', '.join(ROLES)}, not {role!r}")
    if not raw.get("name"):
        raise ConfigError("name: required (unique per process of the cluster)")
    servers = tuple(raw.pop("servers", ["nats://127.0.0.1:4222"]))
    if not servers or not all(isinstance(s, str) and s for s in servers):
        raise ConfigError("servers: a non-empty list of NATS URLs")
    if raw.get("replicas", 1) not in (1, 3, 5):
        raise ConfigError("replicas: 1, 3 or 5")
    if raw.get("snapshot_every", 0) < 0:
        raise ConfigError("snapshot_every: 0 (no snapshots) or more")
    if not 0 <= raw.get("metrics_port", 0) <= 65535:
        raise ConfigError("metrics_port: 0 (none) or a TCP port")
    if "data_dir" in raw:
        raw["data_dir"] = Path(raw["data_dir"])
    catalogue = raw.pop("catalogue", "")
    if catalogue:
        raw["catalogue"] = Path(path).parent / catalogue
    feeds = feeds_config(raw.pop("feeds", {}), Path(path).parent)
    wallets = wallets_config(raw.pop("wallets", {}))
    compliance = compliance_config(raw.pop("compliance", {}), Path(path).parent)
    fees = fees_config(raw.pop("fees", {}))
    porl = porl_config(raw.pop("porl", {}))
    if wallets.chain == "local":
        raise ConfigError(
            'wallets.chain: "local" starts a chain per process; in a cluster run one node and'
            ' use chain = "rpc"'
        )
    if wallets.chain != "none" and not raw.get("database_url"):
        raise ConfigError("database_url: the wallets need the shared database")
    return ClusterConfig(
        servers=servers, server=ClusterServerConfig(**server_raw), feeds=feeds,
        wallets=wallets, compliance=compliance, fees=fees, porl=porl, **raw,
    )  # fmt: skip
