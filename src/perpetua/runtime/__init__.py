"""The composition root: builds the whole venue from one ``VenueConfig``.

``open_venue`` (``venue``) wires the sequencer, the read models and their projector, the
accounts service, the index feeds and the gateway; ``server`` serves it (logging, uvicorn,
``/metrics``) for ``perpetua run``; ``perpetua demo`` is the same venue plus bots and a faucet.
Nothing below this package knows how the pieces are put together, and nothing here reaches
into a piece's internals: each is built through its public constructor and handed its ports.

The names below are imported on first use (PEP 562), so a light submodule such as
``operator_client`` (``perpetua operator``: one HTTP request per command) starts without
importing the whole venue: 0.9 s instead of 4.7 s per operator command on the CI machine.
"""

import importlib
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
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
    from perpetua.runtime.venue import Venue, open_venue, tune_interpreter

_HOMES: Final = {
    "perpetua.runtime.config": (
        "ConfigError",
        "FeedsConfig",
        "IndexSourceConfig",
        "ServerConfig",
        "VenueConfig",
        "load_config",
        "parse_config",
    ),
    "perpetua.runtime.indices": ("IndexFeeds", "build_index_feeds", "referenced_indices"),
    "perpetua.runtime.server": (
        "configure_logging",
        "operator_key",
        "run",
        "server_config",
        "with_metrics",
    ),
    "perpetua.runtime.venue": ("Venue", "open_venue", "tune_interpreter"),
}
_HOME_OF: Final = {name: module for module, names in _HOMES.items() for name in names}

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
    "tune_interpreter",
    "with_metrics",
]


def __getattr__(name: str) -> Any:
    home = _HOME_OF.get(name)
    if home is None:
        raise AttributeError(f"module 'perpetua.runtime' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
