"""Live index sources: the adapter interface for real constituent exchanges.

No live source is reachable from here, so this module is the interface, its parsing and its
fake transport; the shape is the one every adapter has (style rule 23):

- **config**: ``LiveVenueConfig`` (one venue's ticker URL, payload format, weight) grouped into
  ``LiveIndexConfig`` (one composite index, its decimals and protection window);
- **client behind a small protocol**: ``Transport.get(url, timeout_s) -> bytes``.
  ``HttpTransport`` is the real one (``urllib``, no extra dependency); ``FakeTransport`` serves
  scripted payloads and errors to tests and records what was asked;
- **pure parsing**: ``parse_ticker(format, payload, decimals)`` turns a venue's ticker JSON into
  an exact price (and the venue's own timestamp when it gives one). Formats: ``bitstamp``
  (``{"last": "97843.77", "timestamp": "1732492800"}``), ``coinbase``
  (``{"price": "97843.77", "time": "2024-11-25T00:00:00.123Z"}``), ``kraken``
  (``{"error": [], "result": {"XXBTZUSD": {"c": ["97843.70000", "0.01"]}}}``) and ``generic``
  (``{"price": "97843.77"}``, optional ``"timestamp"`` in ISO-8601 or Unix seconds);
- **errors grouped by what the caller does** (rule 17): ``FeedRetryable`` (timeouts, connection
  errors, HTTP 429 and 5xx: try again next interval; the venue goes stale by itself after the
  protection window), ``FeedRejected`` (a payload that does not parse: skip this print), and
  ``FeedStopped`` (HTTP 4xx other than 429, a bad URL: the venue is switched off until restart).

``LiveSource`` polls every venue once per ``advance`` (the publisher calls it every 5 s), keeps
each venue's last good print and composes the index with ``composite.compose``, so the index
protections (drop a venue silent for 15 minutes, flag a stale index) apply exactly as they do
to the simulator. Polls are sequential and bounded by each venue's ``timeout_s``.
"""

import json
import logging
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple, Protocol

from perpetua.feeds.composite import IndexStatus, VenuePrint, compose
from perpetua.feeds.config import PROTECTION_WINDOW_NS
from perpetua.feeds.prices import parse_decimal, rescale
from perpetua.feeds.source import IndexReading
from perpetua.wire.values import parse_iso_ns

__all__ = [
    "FORMATS",
    "FakeTransport",
    "FeedError",
    "FeedRejected",
    "FeedRetryable",
    "FeedStopped",
    "HttpTransport",
    "LiveIndexConfig",
    "LiveSource",
    "LiveVenueConfig",
    "Ticker",
    "Transport",
    "parse_ticker",
]

log = logging.getLogger("perpetua.feeds.live")
FORMATS = ("bitstamp", "coinbase", "kraken", "generic")
PAYLOAD_BYTES_MAX = 1_000_000
NS_PER_S = 1_000_000_000


class FeedError(Exception):
    """Base of the adapter errors; catch a subclass for what to do."""


class FeedRetryable(FeedError):
    """Transient: try again at the next interval."""


class FeedRejected(FeedError):
    """This payload is unusable: skip it."""


class FeedStopped(FeedError):
    """The venue cannot work as configured: switch it off until an operator fixes it."""


@dataclass(frozen=True, slots=True)
class LiveVenueConfig:
    name: str  # "Bitstamp"
    url: str  # "https://www.bitstamp.net/api/v2/ticker/btcusd/"
    format: str  # one of FORMATS
    weight_ppm: int
    timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"{self.name}: format must be one of {', '.join(FORMATS)}")
        if self.weight_ppm <= 0 or not self.url.startswith(("http://", "https://")):
            raise ValueError(f"{self.name}: bad weight or URL")


@dataclass(frozen=True, slots=True)
class LiveIndexConfig:
    symbol: str  # ".BXBT"
    decimals: int
    venues: tuple[LiveVenueConfig, ...]
    protection_window_ns: int = PROTECTION_WINDOW_NS


class Ticker(NamedTuple):
    units: int  # at the index's decimals, floored
    ts_ns: int | None  # the venue's own time, when the payload carries one


class Transport(Protocol):
    def get(self, url: str, timeout_s: float) -> bytes:
        """The response body; raises FeedRetryable, FeedRejected or FeedStopped."""
        ...


class HttpTransport:
    """``Transport`` over ``urllib``: maps failures to the three error groups."""

    def __init__(self, user_agent: str = "perpetua-index-feed") -> None:
        self.user_agent = user_agent

    def get(self, url: str, timeout_s: float) -> bytes:
        request = urllib.request.Request(url, headers={"User-Agent": self.user_agent})
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                body: bytes = response.read(PAYLOAD_BYTES_MAX + 1)
        except urllib.error.HTTPError as error:
            if error.code == 429 or error.code >= 500:
                raise FeedRetryable(f"{url}: HTTP {error.code}") from error
            raise FeedStopped(f"{url}: HTTP {error.code}") from error
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise FeedRetryable(f"{url}: {error}") from error
        except ValueError as error:  # a malformed URL
            raise FeedStopped(f"{url}: {error}") from error
        if len(body) > PAYLOAD_BYTES_MAX:
            raise FeedRejected(f"{url}: payload over {PAYLOAD_BYTES_MAX} bytes")
        return body


class FakeTransport:
    """Scripted responses for tests: per URL, a queue of bodies or errors to raise (the last
    one repeats). ``requests`` records every URL asked, in order."""

    def __init__(self, script: Mapping[str, Iterable[bytes | FeedError]]) -> None:
        self.script = {url: deque(items) for url, items in script.items()}
        self.requests: list[str] = []

    def get(self, url: str, timeout_s: float) -> bytes:
        self.requests.append(url)
        queue = self.script.get(url)
        if not queue:
            raise FeedStopped(f"{url}: not scripted")
        item = queue.popleft() if len(queue) > 1 else queue[0]
        if isinstance(item, FeedError):
            raise item
        return item


def _price_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return format(value, "f")
    raise FeedRejected(f"price is not a string or number: {value!r}")


def _timestamp(value: Any) -> int | None:
    if value is None:
        return None
    text = format(value, "f") if isinstance(value, Decimal | int) else str(value)
    if text.replace(".", "", 1).isdigit():
        whole, _, fraction = text.partition(".")
        return int(whole) * NS_PER_S + (int((fraction + "0" * 9)[:9]) if fraction else 0)
    stamp = parse_iso_ns(text)
    if stamp is None:
        raise FeedRejected(f"bad timestamp {value!r}")
    return stamp


def _fields(fmt: str, data: Any) -> tuple[Any, Any]:
    """(price, timestamp) of a decoded payload in one of ``FORMATS``."""
    if not isinstance(data, dict):
        raise FeedRejected("payload is not a JSON object")
    if fmt == "bitstamp":
        return data.get("last"), data.get("timestamp")
    if fmt == "coinbase":
        return data.get("price"), data.get("time")
    if fmt == "kraken":
        if data.get("error"):
            raise FeedRejected(f"kraken error: {data['error']}")
        result = data.get("result")
        if not isinstance(result, dict) or len(result) != 1:
            raise FeedRejected("kraken: expected one pair in result")
        pair = next(iter(result.values()))
        last = pair.get("c") if isinstance(pair, dict) else None
        return (last[0] if isinstance(last, list) and last else None), None
    return data.get("price"), data.get("timestamp")


def parse_ticker(fmt: str, payload: bytes, decimals: int) -> Ticker:
    """An exact price at ``decimals`` (floored) from a ticker payload; pure.

    Raises FeedRejected for anything malformed (never returns a guess)."""
    if fmt not in FORMATS:
        raise FeedStopped(f"unknown format {fmt!r}")
    try:
        data = json.loads(payload, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, InvalidOperation) as error:
        raise FeedRejected(f"payload is not JSON: {error}") from error
    price, stamp = _fields(fmt, data)
    if price is None:
        raise FeedRejected(f"{fmt}: no price field")
    try:
        units, given = parse_decimal(_price_text(price))
    except ValueError as error:
        raise FeedRejected(str(error)) from error
    return Ticker(rescale(units, given, decimals), _timestamp(stamp))


class _Venue:
    __slots__ = ("config", "failures", "last", "stopped")

    def __init__(self, config: LiveVenueConfig) -> None:
        self.config = config
        self.last = VenuePrint(config.name, config.weight_ppm, 0, 0)
        self.failures = 0
        self.stopped = False


class LiveSource:
    """An ``IndexSource`` polling real venues through a ``Transport``."""

    def __init__(self, configs: tuple[LiveIndexConfig, ...], transport: Transport) -> None:
        self.configs = configs
        self.transport = transport
        self.venues = {c.symbol: [_Venue(v) for v in c.venues] for c in configs}
        self._last_units: dict[str, int] = {}

    def symbols(self) -> tuple[str, ...]:
        return tuple(c.symbol for c in self.configs)

    def _poll(self, venue: _Venue, decimals: int, now_ns: int) -> None:
        cfg = venue.config
        try:
            ticker = parse_ticker(cfg.format, self.transport.get(cfg.url, cfg.timeout_s), decimals)
        except FeedRetryable as error:
            venue.failures += 1
            log.warning("index venue %s: %s (will retry)", cfg.name, error)
            return
        except FeedRejected as error:
            log.warning("index venue %s: print skipped: %s", cfg.name, error)
            return
        except FeedStopped as error:
            venue.stopped = True
            log.error("index venue %s switched off: %s", cfg.name, error)
            return
        if ticker.units <= 0:
            return
        # A venue clock ahead of ours never makes a print look fresher than now.
        logged = min(now_ns, ticker.ts_ns) if ticker.ts_ns is not None else now_ns
        venue.failures = 0
        venue.last = VenuePrint(cfg.name, cfg.weight_ppm, ticker.units, logged)

    def advance(self, now_ns: int) -> list[IndexReading]:
        readings = []
        for config in self.configs:
            venues = self.venues[config.symbol]
            for venue in venues:
                if not venue.stopped:
                    self._poll(venue, config.decimals, now_ns)
            value = compose([v.last for v in venues], now_ns, config.protection_window_ns)
            if value.status == IndexStatus.LIVE:
                self._last_units[config.symbol] = value.units
                readings.append(
                    IndexReading(
                        config.symbol,
                        now_ns,
                        value.units,
                        config.decimals,
                        value.status,
                        True,
                        value.constituents,
                    )
                )
            else:
                held = self._last_units.get(config.symbol, 0)
                readings.append(
                    IndexReading(
                        config.symbol,
                        now_ns,
                        held,
                        config.decimals,
                        value.status,
                        False,
                        value.constituents,
                    )
                )
        return readings
