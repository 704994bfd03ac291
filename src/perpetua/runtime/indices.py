"""The venue's index sources, built from ``FeedsConfig`` for the indices its markets reference.

Each referenced index gets exactly one source: the one its ``[feeds.index."<symbol>"]`` table
names, else ``feeds.default``. Replay files are read once per path, each serving only the
indices configured to it; simulated indices share one seeded ``IndexSimulator``; live indices
share one ``LiveSource`` over HTTP. An index configured ``none`` is not published (its mark then
holds at whatever the journal last had). ``ConfigError`` when a configured source cannot serve
its index (a replay file without that symbol, an index the simulator does not know).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from perpetua.core.instruments import InstrumentSpec
from perpetua.feeds import (
    IndexBoard,
    IndexSimulator,
    IndexSource,
    ReplayFormatError,
    ReplaySource,
    default_config,
    load_replay,
)
from perpetua.feeds.live import HttpTransport, LiveSource, Transport
from perpetua.runtime.config import ConfigError, FeedsConfig

__all__ = ["IndexFeeds", "build_index_feeds", "referenced_indices"]


@dataclass(frozen=True, slots=True)
class IndexFeeds:
    """The sources to publish and the board readers see; ``simulator`` is kept so its prices
    can be saved and resumed (the demo does)."""

    sources: tuple[IndexSource, ...]
    board: IndexBoard
    simulator: IndexSimulator | None


def referenced_indices(markets: Sequence[InstrumentSpec]) -> set[str]:
    return {s.reference_symbol for s in markets if s.reference_symbol}


def _board() -> IndexBoard:
    twaps = {i.symbol: i.twap_symbol for i in default_config().indices if i.twap_symbol}
    return IndexBoard(twaps)


def build_index_feeds(
    feeds: FeedsConfig,
    markets: Sequence[InstrumentSpec],
    start_ns: int,
    saved_prices: Mapping[str, int] | None = None,
    transport: Transport | None = None,
) -> IndexFeeds:
    wanted = sorted(referenced_indices(markets))
    by_source: dict[str, list[str]] = {}
    for symbol in wanted:
        by_source.setdefault(feeds.source_of(symbol).source, []).append(symbol)
    sources: list[IndexSource] = []
    sources.extend(_replays(feeds, by_source.get("replay", []), start_ns))
    live = [feeds.source_of(s).live for s in by_source.get("live", [])]
    if live:
        sources.append(
            LiveSource(tuple(c for c in live if c is not None), transport or HttpTransport())
        )
    simulator = _simulator(feeds, by_source.get("simulated", []), start_ns, saved_prices)
    if simulator is not None:
        sources.append(simulator)
    return IndexFeeds(tuple(sources), _board(), simulator)


def _replays(feeds: FeedsConfig, symbols: list[str], start_ns: int) -> list[ReplaySource]:
    by_path: dict[Path, list[str]] = {}
    for symbol in symbols:
        path = feeds.source_of(symbol).path
        if path is None:
            raise ConfigError(f"feeds.index.{symbol}: a replay source needs a path")
        by_path.setdefault(path, []).append(symbol)
    sources = []
    for path, served in by_path.items():
        try:
            rows = load_replay(path)
        except (OSError, ReplayFormatError) as error:
            raise ConfigError(f"feeds: replay file {path}: {error}") from None
        missing = sorted(set(served) - {r.symbol for r in rows})
        if missing:
            raise ConfigError(f"feeds: replay file {path} has no rows for {', '.join(missing)}")
        source = ReplaySource([r for r in rows if r.symbol in served])
        source.skip_to(start_ns)
        sources.append(source)
    return sources


def _simulator(
    feeds: FeedsConfig, symbols: list[str], start_ns: int, saved_prices: Mapping[str, int] | None
) -> IndexSimulator | None:
    if not symbols:
        return None
    catalogue = default_config()
    unknown = sorted(set(symbols) - {i.symbol for i in catalogue.indices})
    if unknown:
        raise ConfigError(
            f"feeds: the simulator has no model for {', '.join(unknown)};"
            " give those indices a replay or live source"
        )
    return IndexSimulator(
        catalogue.only(set(symbols)), feeds.seed, start_ns, dict(saved_prices or {})
    )
