"""``VenueConfig``: everything the runtime needs to build a venue, as one frozen value.

Sources, in order of precedence: command-line options, then the TOML file given by
``--config``, then the embedded defaults below. ``load_config(path)`` reads a file and
answers ``ConfigError`` naming the key for anything it does not understand: an unknown key is
an error, not ignored, so a typo cannot silently fall back to a default.

The file's shape (every key optional)::

    data_dir = "data"
    database_url = ""            # empty: SQLite in the data dir; else a SQLAlchemy URL
    operator_key = ""            # empty: $PERPETUA_OPERATOR_KEY, else a random key printed
    store = true                 # the SQL read models and their projector
    catalogue = ""               # futures catalogue file; empty: the embedded catalogue.toml

    [server]
    host = "127.0.0.1"
    port = 8000
    forwarded_allow_ips = []     # proxies whose X-Forwarded-For is trusted; empty: none
    log_level = "info"
    log_format = "json"          # "json" (structlog) or "text"

    [rate_limits]
    enabled = true
    anonymous_per_minute = 30

    [wallets]                    # deposits and withdrawals on chain (docs/wallets.md)
    chain = "none"               # none (off; `perpetua demo`: local) | local (start anvil) | rpc
    rpc_url = ""                 # chain = "rpc": the node's JSON-RPC endpoint
    token_address = ""           # chain = "rpc": the USDT contract (local: deployed at start)
    eth_xpub = ""                # account-level xpub of deposit addresses (local: made once)
    hot_keystore = ""            # eth-account keystore (default <data_dir>/secrets/hot-wallet.json)
    cold_address = ""            # where the hot wallet sweeps above its threshold
    confirmations = 3
    block_time_s = 1             # chain = "local": anvil mines a block every so often
    poll_interval_s = 1.0        # the follower and the sender
    approval_usdt = 100000       # USDT withdrawals at or above wait for an operator
    blocked_addresses = []       # refused as withdrawal destinations (DefaultPolicy)
    hot_max_usdt = 5000000       # chain = "local": the hot wallet's excess goes to cold
    hot_max_eth = 500
    btc_rpc_url = ""             # the operator's Bitcoin Core: adds network "btc" (XBT)
    btc_xpub = ""                # BIP-84 account key of deposit addresses (needed with btc_rpc_url)
    btc_chain = "main"           # main | test | regtest
    btc_hot_address = ""         # the node wallet's address; empty: deposits only
    btc_confirmations = 2

    [porl]                       # proof of reserves and liabilities (docs/proof-of-reserves.md)
    venue = "perpetua"           # the venue's name in the reserve addresses' signed message
    daily = true                 # a snapshot every day (the operator can take one any time)
    rpc_url = ""                 # the reserve chain's node (empty: liabilities only)
    tokens = { USDt = "0x..." }  # token currencies' contracts on that chain

    [[porl.reserve]]             # one table per exchange-controlled address
    address = "0x..."
    kind = "cold"                # hot | cold | deposit
    currency = "Gwei"            # Gwei (ether) or a token currency named in tokens
    [compliance]                 # docs/compliance.md
    kyc_required = false         # true: KYC level 0 may not trade, deposit or withdraw
    policy_file = ""             # restricted jurisdictions (TOML); empty: BitMEX's list
    geoip_database = ""          # a MaxMind DB (GeoLite2/GeoIP2 City); empty: no IP checks
    sanctions = [{ path = "sdn.csv", format = "ofac-sdn" }]   # or format = "generic"
    name_match_threshold = 88    # rapidfuzz token_sort_ratio, 1..100
    document_validity_days = 730
    review_interval_days = 365
    sync_interval_s = 60         # restrictions sync, periodic review, list reload

    [feeds]
    seed = 1                     # the simulator's seed
    default = "simulated"        # the source of every index not named below: simulated | none

    [feeds.index.".BXBT"]       # one table per index with its own source
    source = "replay"            # simulated | replay | live | none
    path = "prices.csv"          # replay: rows of timestamp,symbol,price

    [feeds.index.".BETH"]
    source = "live"
    decimals = 2
    venues = [{ name = "Bitstamp", url = "https://...", format = "bitstamp", weight_ppm = 500000 }]

    [accounts]                   # docs/accounts.md
    hash_workers = 1             # argon2 worker processes (each ~45 sign-ins/s of one core)
    hash_idle = true             # SCHED_IDLE: they run on what trading leaves (Linux)
    hash_nice = 10               # their priority when hash_idle = false
    hash_cpus = []               # pin them to these CPUs (empty: any)

    [fees]                       # docs/trading-costs.md
    adv_usd_min = [0, 1000000, 5000000, 10000000, 25000000, 50000000, 100000000, 250000000,
                   500000000, 1000000000]   # 30-day ADV (USD) of each fee tier
    volume_check_interval_s = 60 # how often the volume job looks for a new UTC day
"""

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from perpetua.core.catalogue import FEE_TIERS
from perpetua.feeds.live import FORMATS, LiveIndexConfig, LiveVenueConfig
from perpetua.services.compliance import ComplianceConfig, ListSource
from perpetua.services.hash_pool import (
    HASH_CPU_MAX,
    HASH_IDLE_DEFAULT,
    HASH_NICE,
    HASH_NICE_MAX,
    HASH_WORKERS_DEFAULT,
    HASH_WORKERS_MAX,
)
from perpetua.services.jurisdictions import PolicyError, load_policy
from perpetua.services.sanctions import LIST_FORMATS

__all__ = [
    "INDEX_SOURCES",
    "AccountsConfig",
    "ConfigError",
    "FeedsConfig",
    "IndexSourceConfig",
    "PorlConfig",
    "PorlReserveConfig",
    "ServerConfig",
    "VenueConfig",
    "WalletsConfig",
    "compliance_config",
    "feeds_config",
    "fees_config",
    "load_config",
    "porl_config",
    "wallets_config",
]

INDEX_SOURCES: Final = ("simulated", "replay", "live", "none")
LOG_FORMATS: Final = ("json", "text")
LOG_LEVELS: Final = ("debug", "info", "warning", "error")
PORT_MAX: Final = 65_535
VENUE_NAME_MAX: Final = 64
_EVM_ADDRESS: Final = re.compile(r"0x[0-9a-fA-F]{40}")


class ConfigError(ValueError):
    """The configuration cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    forwarded_allow_ips: tuple[str, ...] = ()
    log_level: str = "info"
    log_format: str = "json"


@dataclass(frozen=True, slots=True)
class IndexSourceConfig:
    """Where one index's prices come from."""

    source: str = "simulated"
    path: Path | None = None  # replay
    live: LiveIndexConfig | None = None  # live


@dataclass(frozen=True, slots=True)
class FeedsConfig:
    seed: int = 1
    default: str = "simulated"
    indices: Mapping[str, IndexSourceConfig] = field(default_factory=dict)

    def source_of(self, symbol: str) -> IndexSourceConfig:
        return self.indices.get(symbol) or IndexSourceConfig(source=self.default)


@dataclass(frozen=True, slots=True)
class PorlReserveConfig:
    address: str
    kind: str
    currency: str


@dataclass(frozen=True, slots=True)
class PorlConfig:
    venue: str = "perpetua"
    daily: bool = True
    rpc_url: str = ""
    tokens: Mapping[str, str] = field(default_factory=dict)
    reserves: tuple[PorlReserveConfig, ...] = ()


@dataclass(frozen=True, slots=True)
class FeesConfig:
    """``[fees]``: the volume tiers' ADV thresholds in whole USD, one per row of the core's
    ``FEE_TIERS`` (whose rates they select; default BitMEX's), and how often the volume job
    looks for a new UTC day."""

    adv_usd_min: tuple[int, ...] = tuple(row.adv_usd_min for row in FEE_TIERS)
    volume_check_interval_s: float = 60.0


@dataclass(frozen=True, slots=True)
class AccountsConfig:
    """``[accounts]``: the password hash pool (``services.hash_pool``): how many worker
    processes hash (each about 45 argon2 hashes a second of one core), whether at
    ``SCHED_IDLE`` (default) or at a nice value (0..19; higher yields more to trading), and
    the CPUs they are pinned to (empty: any)."""

    hash_workers: int = HASH_WORKERS_DEFAULT
    hash_nice: int = HASH_NICE
    hash_idle: bool = HASH_IDLE_DEFAULT
    hash_cpus: tuple[int, ...] = ()


WALLET_CHAINS: Final = ("none", "local", "rpc")


@dataclass(frozen=True, slots=True)
class WalletsConfig:
    chain: str = "none"
    rpc_url: str = ""
    token_address: str = ""
    eth_xpub: str = ""
    hot_keystore: str = ""
    cold_address: str = ""
    confirmations: int = 3
    block_time_s: int = 1
    poll_interval_s: float = 1.0
    approval_usdt: int = 100_000
    blocked_addresses: tuple[str, ...] = ()
    hot_max_usdt: int = 5_000_000  # local chain: above, the hot wallet sweeps to cold
    hot_max_eth: int = 500
    btc_rpc_url: str = ""  # the operator's Bitcoin Core (http://user:password@host:port)
    btc_xpub: str = ""  # account-level BIP-84 key (zpub/vpub/xpub) of deposit addresses
    btc_chain: str = "main"  # main | test | regtest
    btc_hot_address: str = ""  # the node wallet's change address (its hot wallet)
    btc_confirmations: int = 2


@dataclass(frozen=True, slots=True)
class VenueConfig:
    data_dir: Path = Path("data")
    database_url: str = ""
    operator_key: str = field(default="", repr=False)
    store: bool = True
    server: ServerConfig = field(default_factory=ServerConfig)
    rate_limits_enabled: bool = True
    anonymous_per_minute: int = 30
    feeds: FeedsConfig = field(default_factory=FeedsConfig)
    porl: PorlConfig = field(default_factory=PorlConfig)
    fees: FeesConfig = field(default_factory=FeesConfig)
    compliance: ComplianceConfig = field(default_factory=ComplianceConfig)
    wallets: WalletsConfig = field(default_factory=WalletsConfig)
    accounts: AccountsConfig = field(default_factory=AccountsConfig)
    # the futures catalogue file (runtime.catalogue); None: the embedded catalogue.toml
    catalogue: Path | None = None

    def with_server(self, **changes: Any) -> "VenueConfig":
        return replace(self, server=replace(self.server, **changes))


# --- reading a file ---------------------------------------------------------------------------


def load_config(path: Path) -> VenueConfig:
    """The file at ``path`` over the embedded defaults; ``ConfigError`` names what is wrong."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not TOML: {error}") from None
    return parse_config(document, base=path.parent)


def parse_config(document: Mapping[str, Any], base: Path = Path(".")) -> VenueConfig:
    """A parsed TOML document as a ``VenueConfig``; relative paths are taken from ``base``."""
    _known(
        document,
        "",
        (
            "data_dir", "database_url", "operator_key", "store", "server", "rate_limits", "feeds",
            "porl", "fees", "compliance", "wallets", "catalogue", "accounts",
        ),
    )  # fmt: skip
    default = VenueConfig()
    limits = _table(document, "rate_limits")
    _known(limits, "rate_limits.", ("enabled", "anonymous_per_minute"))
    anonymous = _int(limits, "rate_limits.anonymous_per_minute", default.anonymous_per_minute)
    if anonymous <= 0:
        raise ConfigError("rate_limits.anonymous_per_minute must be positive")
    catalogue = _str(document, "catalogue", "")
    return VenueConfig(
        data_dir=_path(base, _str(document, "data_dir", str(default.data_dir))),
        database_url=_str(document, "database_url", ""),
        operator_key=_str(document, "operator_key", ""),
        store=_bool(document, "store", True),
        server=_server(_table(document, "server")),
        rate_limits_enabled=_bool(limits, "rate_limits.enabled", True),
        anonymous_per_minute=anonymous,
        feeds=_feeds(_table(document, "feeds"), base),
        porl=_porl(_table(document, "porl")),
        catalogue=_path(base, catalogue) if catalogue else None,
        fees=_fees(_table(document, "fees")),
        compliance=_compliance(_table(document, "compliance"), base),
        wallets=_wallets(_table(document, "wallets")),
        accounts=_accounts(_table(document, "accounts")),
    )


def _accounts(table: Mapping[str, Any]) -> AccountsConfig:
    _known(table, "accounts.", ("hash_workers", "hash_nice", "hash_idle", "hash_cpus"))
    workers = _int(table, "accounts.hash_workers", HASH_WORKERS_DEFAULT)
    if not 1 <= workers <= HASH_WORKERS_MAX:
        raise ConfigError(f"accounts.hash_workers must be in 1..{HASH_WORKERS_MAX}")
    nice = _int(table, "accounts.hash_nice", HASH_NICE)
    if not 0 <= nice <= HASH_NICE_MAX:
        raise ConfigError(f"accounts.hash_nice must be in 0..{HASH_NICE_MAX}")
    idle = _bool(table, "accounts.hash_idle", HASH_IDLE_DEFAULT)
    cpus = table.get("hash_cpus", [])
    if not isinstance(cpus, list) or not all(
        isinstance(c, int) and not isinstance(c, bool) and 0 <= c < HASH_CPU_MAX for c in cpus
    ):
        raise ConfigError(
            f"accounts.hash_cpus must be a list of CPU numbers (0..{HASH_CPU_MAX - 1})"
        )
    return AccountsConfig(workers, nice, idle, tuple(dict.fromkeys(cpus)))


def _compliance(table: Mapping[str, Any], base: Path) -> ComplianceConfig:
    keys = (
        "kyc_required",
        "policy_file",
        "geoip_database",
        "sanctions",
        "name_match_threshold",
        "document_validity_days",
        "review_interval_days",
        "sync_interval_s",
    )
    _known(table, "compliance.", keys)
    default = ComplianceConfig()
    policy_file = _str(table, "compliance.policy_file", "")
    try:
        policy = load_policy(_path(base, policy_file) if policy_file else None)
    except PolicyError as error:
        raise ConfigError(f"compliance.policy_file: {error}") from None
    geoip = _str(table, "compliance.geoip_database", "")
    lists = table.get("sanctions", [])
    if not isinstance(lists, list):
        raise ConfigError("compliance.sanctions must be a list of { path, format }")
    sources = []
    for entry in lists:
        if not isinstance(entry, dict):
            raise ConfigError("compliance.sanctions: each a table { path, format }")
        _known(entry, "compliance.sanctions.", ("path", "format"))
        sources.append(
            ListSource(
                _path(base, _str(entry, "compliance.sanctions.path", "")),
                _choice(entry, "compliance.sanctions.format", "ofac-sdn", LIST_FORMATS),
            )
        )
    threshold = _int(table, "compliance.name_match_threshold", default.name_match_threshold)
    if not 1 <= threshold <= 100:
        raise ConfigError("compliance.name_match_threshold must be in 1..100")
    interval = table.get("sync_interval_s", default.sync_interval_s)
    if not isinstance(interval, int | float) or isinstance(interval, bool) or interval < 1:
        raise ConfigError("compliance.sync_interval_s must be a number >= 1")
    validity = _int(table, "compliance.document_validity_days", default.document_validity_days)
    review = _int(table, "compliance.review_interval_days", default.review_interval_days)
    if validity <= 0 or review <= 0:
        raise ConfigError("compliance: document_validity_days and review_interval_days > 0")
    return ComplianceConfig(
        kyc_required=_bool(table, "compliance.kyc_required", False),
        policy=policy,
        geoip_database=_path(base, geoip) if geoip else None,
        sanctions_lists=tuple(sources),
        name_match_threshold=threshold,
        document_validity_days=validity,
        review_interval_days=review,
        sync_interval_s=float(interval),
    )


def compliance_config(table: Mapping[str, Any], base: Path) -> ComplianceConfig:
    """``[compliance]`` (also a cluster.toml's table)."""
    return _compliance(table, base)


def porl_config(table: Mapping[str, Any]) -> PorlConfig:
    """``[porl]`` (also a cluster.toml's table)."""
    return _porl(table)


def fees_config(table: Mapping[str, Any]) -> FeesConfig:
    """``[fees]`` (also a cluster.toml's table)."""
    return _fees(table)


def wallets_config(table: Mapping[str, Any]) -> WalletsConfig:
    """``[wallets]`` (the venue's and a cluster process's), checked."""
    return _wallets(table)


def _wallets(table: Mapping[str, Any]) -> WalletsConfig:
    keys = tuple(WalletsConfig.__dataclass_fields__)
    _known(table, "wallets.", keys)
    chain = _choice(table, "wallets.chain", "none", WALLET_CHAINS)
    rpc_url = _str(table, "wallets.rpc_url", "")
    if chain == "rpc" and not rpc_url.startswith(("http://", "https://")):
        raise ConfigError('wallets.rpc_url: an http(s) URL is required when chain = "rpc"')
    confirmations = _int(table, "wallets.confirmations", 3)
    if not 1 <= confirmations <= 1000:
        raise ConfigError("wallets.confirmations must be in 1..1000")
    block_time = _int(table, "wallets.block_time_s", 1)
    if not 1 <= block_time <= 60:
        raise ConfigError("wallets.block_time_s must be in 1..60")
    poll = table.get("poll_interval_s", 1.0)
    if not isinstance(poll, int | float) or isinstance(poll, bool) or not 0.05 <= poll <= 60:
        raise ConfigError("wallets.poll_interval_s must be a number in 0.05..60")
    blocked = table.get("blocked_addresses", [])
    if not isinstance(blocked, list) or not all(isinstance(a, str) for a in blocked):
        raise ConfigError("wallets.blocked_addresses must be a list of addresses")
    return WalletsConfig(
        chain=chain,
        rpc_url=rpc_url,
        token_address=_str(table, "wallets.token_address", ""),
        eth_xpub=_str(table, "wallets.eth_xpub", ""),
        hot_keystore=_str(table, "wallets.hot_keystore", ""),
        cold_address=_str(table, "wallets.cold_address", ""),
        confirmations=confirmations,
        block_time_s=block_time,
        poll_interval_s=float(poll),
        approval_usdt=_int(table, "wallets.approval_usdt", 100_000),
        blocked_addresses=tuple(blocked),
        hot_max_usdt=_int(table, "wallets.hot_max_usdt", 5_000_000),
        hot_max_eth=_int(table, "wallets.hot_max_eth", 500),
        btc_rpc_url=_str(table, "wallets.btc_rpc_url", ""),
        btc_xpub=_str(table, "wallets.btc_xpub", ""),
        btc_chain=_choice(table, "wallets.btc_chain", "main", ("main", "test", "regtest")),
        btc_hot_address=_str(table, "wallets.btc_hot_address", ""),
        btc_confirmations=_int(table, "wallets.btc_confirmations", 2),
    )


def _porl(table: Mapping[str, Any]) -> PorlConfig:
    _known(table, "porl.", ("venue", "daily", "rpc_url", "tokens", "reserve"))
    venue = _str(table, "porl.venue", "perpetua")
    if not venue or len(venue) > VENUE_NAME_MAX or not venue.isprintable():
        raise ConfigError(f"porl.venue must be 1..{VENUE_NAME_MAX} printable characters")
    tokens = dict(_table(table, "tokens"))
    for currency, token in tokens.items():
        if not isinstance(token, str) or _EVM_ADDRESS.fullmatch(token) is None:
            raise ConfigError(f"porl.tokens.{currency} must be a 0x address")
    entries = table.get("reserve", [])
    if not isinstance(entries, list):
        raise ConfigError("porl.reserve must be an array of tables ([[porl.reserve]])")
    reserves = []
    for number, entry in enumerate(entries):
        here = f"porl.reserve[{number}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{here}: a table with address, kind, currency")
        _known(entry, here + ".", ("address", "kind", "currency"))
        address = _str(entry, here + ".address", "")
        if _EVM_ADDRESS.fullmatch(address) is None:
            raise ConfigError(f"{here}.address must be a 0x address")
        kind = _choice(entry, here + ".kind", "cold", ("hot", "cold", "deposit"))
        currency = _str(entry, here + ".currency", "Gwei")
        if currency != "Gwei" and currency not in tokens:
            raise ConfigError(f"{here}.currency {currency!r}: Gwei or a currency in porl.tokens")
        reserves.append(PorlReserveConfig(address, kind, currency))
    rpc_url = _str(table, "porl.rpc_url", "")
    if reserves and not rpc_url:
        raise ConfigError("porl.reserve needs porl.rpc_url (the node to read balances from)")
    return PorlConfig(
        venue=venue,
        daily=_bool(table, "porl.daily", True),
        rpc_url=rpc_url,
        tokens=tokens,
        reserves=tuple(reserves),
    )


def _fees(table: Mapping[str, Any]) -> FeesConfig:
    _known(table, "fees.", ("adv_usd_min", "volume_check_interval_s"))
    default = FeesConfig()
    rows = table.get("adv_usd_min", list(default.adv_usd_min))
    if not isinstance(rows, list) or not all(type(r) is int and r >= 0 for r in rows):
        raise ConfigError("fees.adv_usd_min must be a list of whole USD amounts")
    if len(rows) != len(FEE_TIERS) or rows[0] != 0 or rows != sorted(set(rows)):
        raise ConfigError(
            f"fees.adv_usd_min: {len(FEE_TIERS)} amounts rising strictly from 0 (one per tier)"
        )
    interval = table.get("volume_check_interval_s", default.volume_check_interval_s)
    if not isinstance(interval, int | float) or not 1 <= interval <= 3600:
        raise ConfigError("fees.volume_check_interval_s must be in 1..3600")
    return FeesConfig(tuple(rows), float(interval))


def _server(table: Mapping[str, Any]) -> ServerConfig:
    _known(table, "server.", ("host", "port", "forwarded_allow_ips", "log_level", "log_format"))
    port = _int(table, "server.port", 8000)
    if not 0 <= port <= PORT_MAX:
        raise ConfigError(f"server.port must be in 0..{PORT_MAX}")
    allowed = table.get("forwarded_allow_ips", [])
    if not isinstance(allowed, list) or not all(isinstance(a, str) for a in allowed):
        raise ConfigError("server.forwarded_allow_ips must be a list of addresses")
    level = _choice(table, "server.log_level", "info", LOG_LEVELS)
    return ServerConfig(
        host=_str(table, "server.host", "127.0.0.1"),
        port=port,
        forwarded_allow_ips=tuple(allowed),
        log_level=level,
        log_format=_choice(table, "server.log_format", "json", LOG_FORMATS),
    )


def feeds_config(table: Mapping[str, Any], base: Path) -> FeedsConfig:
    """A ``[feeds]`` table: the venue config's, or cluster.toml's (`cluster_config`)."""
    return _feeds(table, base)


def _feeds(table: Mapping[str, Any], base: Path) -> FeedsConfig:
    _known(table, "feeds.", ("seed", "default", "index"))
    default = _choice(table, "feeds.default", "simulated", ("simulated", "none"))
    indices: dict[str, IndexSourceConfig] = {}
    for symbol, entry in _table(table, "index").items():
        if not symbol.startswith(".") or not isinstance(entry, dict):
            raise ConfigError(f"feeds.index.{symbol}: an index symbol (.BXBT) with a table")
        indices[symbol] = _index_source(symbol, entry, base)
    return FeedsConfig(seed=_int(table, "feeds.seed", 1), default=default, indices=indices)


def _index_source(symbol: str, entry: Mapping[str, Any], base: Path) -> IndexSourceConfig:
    where = f"feeds.index.{symbol}"
    _known(entry, where + ".", ("source", "path", "decimals", "venues"))
    source = _choice(entry, where + ".source", "simulated", INDEX_SOURCES)
    if source == "replay":
        if "path" not in entry:
            raise ConfigError(f"{where}.path is required for a replay source")
        return IndexSourceConfig(source, path=_path(base, _str(entry, where + ".path", "")))
    if source == "live":
        return IndexSourceConfig(source, live=_live(symbol, entry, where))
    return IndexSourceConfig(source)


def _live(symbol: str, entry: Mapping[str, Any], where: str) -> LiveIndexConfig:
    venues = entry.get("venues")
    if not isinstance(venues, list) or not venues:
        raise ConfigError(f"{where}.venues: a live source needs at least one venue")
    parsed = []
    for number, venue in enumerate(venues):
        here = f"{where}.venues[{number}]"
        if not isinstance(venue, dict):
            raise ConfigError(f"{here}: a table with name, url, format, weight_ppm")
        _known(venue, here + ".", ("name", "url", "format", "weight_ppm", "timeout_s"))
        try:
            parsed.append(LiveVenueConfig(
                name=_str(venue, here + ".name", ""), url=_str(venue, here + ".url", ""),
                format=_choice(venue, here + ".format", "", FORMATS),
                weight_ppm=_int(venue, here + ".weight_ppm", 0),
                timeout_s=float(_int(venue, here + ".timeout_s", 2)),
            ))  # fmt: skip
        except ValueError as error:
            raise ConfigError(f"{here}: {error}") from None
    decimals = _int(entry, where + ".decimals", 2)
    return LiveIndexConfig(symbol, decimals, tuple(parsed))


# --- typed reads ------------------------------------------------------------------------------


def _known(table: Mapping[str, Any], prefix: str, keys: tuple[str, ...]) -> None:
    unknown = sorted(set(table) - set(keys))
    if unknown:
        raise ConfigError(f"unknown key {prefix}{unknown[0]} (known: {', '.join(keys)})")


def _table(table: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = table.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table")
    return value


def _name(key: str) -> str:
    return key.rpartition(".")[2]


def _str(table: Mapping[str, Any], key: str, default: str) -> str:
    value = table.get(_name(key), default)
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string")
    return value


def _int(table: Mapping[str, Any], key: str, default: int) -> int:
    value = table.get(_name(key), default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{key} must be an integer")
    return value


def _bool(table: Mapping[str, Any], key: str, default: bool) -> bool:
    value = table.get(_name(key), default)
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false")
    return value


def _choice(table: Mapping[str, Any], key: str, default: str, choices: tuple[str, ...]) -> str:
    value = _str(table, key, default)
    if value not in choices:
        raise ConfigError(f"{key} must be one of {', '.join(choices)} (got {value!r})")
    return value


def _path(base: Path, text: str) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path
