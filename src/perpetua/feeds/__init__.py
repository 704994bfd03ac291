"""Index price feeds: outside prices in, ``IndexPrice`` commands out (architecture §1).

Sources (all ``source.IndexSource``): ``simulator.IndexSimulator`` (seeded jumpy walks and
simulated constituent venues), ``replay.ReplaySource`` (a CSV of timestamped prices) and
``live.LiveSource`` (real venues through a ``live.Transport``; ``live.FakeTransport`` for
tests). ``composite.compose`` applies the index protections; ``publisher.IndexPublisher``
submits to the sequencer every 5 s of its clock; ``board.IndexBoard`` serves the latest values,
constituents (``instrument/compositeIndex``) and 30-minute TWAPs to readers.
"""

from perpetua.feeds.board import IndexBoard
from perpetua.feeds.composite import (
    CompositeValue,
    ConstituentRow,
    ConstituentStatus,
    IndexStatus,
    VenuePrint,
    compose,
)
from perpetua.feeds.config import (
    PROTECTION_WINDOW_NS,
    PUBLISH_INTERVAL_NS,
    TWAP_WINDOW_NS,
    AssetConfig,
    IndexConfig,
    SimulatorConfig,
    VenueConfig,
    default_config,
)
from perpetua.feeds.publisher import IndexPublisher
from perpetua.feeds.replay import ReplayFormatError, ReplaySource, load_replay, parse_replay
from perpetua.feeds.simulator import IndexSimulator
from perpetua.feeds.source import IndexReading, IndexSource, to_command

__all__ = [
    "PROTECTION_WINDOW_NS",
    "PUBLISH_INTERVAL_NS",
    "TWAP_WINDOW_NS",
    "AssetConfig",
    "CompositeValue",
    "ConstituentRow",
    "ConstituentStatus",
    "IndexBoard",
    "IndexConfig",
    "IndexPublisher",
    "IndexReading",
    "IndexSimulator",
    "IndexSource",
    "IndexStatus",
    "ReplayFormatError",
    "ReplaySource",
    "SimulatorConfig",
    "VenueConfig",
    "VenuePrint",
    "compose",
    "default_config",
    "load_replay",
    "parse_replay",
    "to_command",
]
