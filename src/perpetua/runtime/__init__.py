"""The composition root: builds the whole venue from one ``VenueConfig``.

``open_venue`` (``venue``) wires the sequencer, the read models and their projector, the
accounts service, the index feeds and the gateway; ``server`` serves it (logging, uvicorn,
``/metrics``) for ``perpetua run``; ``perpetua demo`` is the same venue plus bots and a faucet.
Nothing below this package knows how the pieces are put together, and nothing here reaches
into a piece's internals: each is built through its public constructor and handed its ports.
"""

from perpetua.runtime.config import (
    ConfigError,
    FeedsConfig,
    IndexSourceConfig,
    ServerConfig,
    VenueConfig,
    load_config,
    parse_config,
)
from perpetua.runtime.indices import IndexFeeds, build_index_feeds, referenced_indices
from perpetua.runtime.server import (
    configure_logging,
    operator_key,
    run,
    server_config,
    with_metrics,
)
from perpetua.runtime.venue import Venue, open_venue, tune_gc

__all__ = [
    "ConfigError",
    "FeedsConfig",
    "IndexFeeds",
    "IndexSourceConfig",
    "ServerConfig",
    "Venue",
    "VenueConfig",
    "build_index_feeds",
    "configure_logging",
    "load_config",
    "open_venue",
    "operator_key",
    "parse_config",
    "referenced_indices",
    "run",
    "server_config",
    "tune_gc",
    "with_metrics",
]
