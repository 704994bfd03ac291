"""The replay feed: index prices read from a CSV file, played as the clock passes their times.

File format (UTF-8, one header line, comma-separated; blank lines and lines starting with ``#``
are skipped)::

    timestamp,symbol,price
    2024-11-25T00:00:00Z,.BXBT,97843.77
    2024-11-25T00:00:05.000Z,.BXBT,97845.10
    1732492810,.BETH,3401.5

- ``timestamp``: ISO-8601 (``Z`` or an offset; no offset means UTC) or Unix seconds with an
  optional fraction (``1732492810.250``);
- ``symbol``: an index symbol, starting with ``.``;
- ``price``: a plain positive decimal; it is published exactly as written.

Rows must be in time order (equal times allowed); a row out of order, a bad field or more than
``ROWS_MAX`` rows is a ``ReplayFormatError`` naming the line. ``ReplaySource`` plays each row
when ``now_ns >= timestamp + offset_ns`` (``offset_ns`` shifts a recorded day to now); when
several rows of one symbol are due at once, only the latest is published.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from perpetua.feeds.composite import IndexStatus
from perpetua.feeds.prices import parse_decimal
from perpetua.feeds.source import IndexReading
from perpetua.wire.values import parse_iso_ns

__all__ = [
    "ROWS_MAX",
    "ReplayFormatError",
    "ReplayRow",
    "ReplaySource",
    "load_replay",
    "parse_replay",
]

ROWS_MAX = 5_000_000
HEADER = ("timestamp", "symbol", "price")
NS_PER_S = 1_000_000_000


class ReplayFormatError(ValueError):
    """The file cannot be replayed: the message names the line and the problem."""


class ReplayRow(NamedTuple):
    ts_ns: int
    symbol: str
    units: int
    decimals: int


def _timestamp_ns(text: str) -> int | None:
    value = text.strip()
    if value.replace(".", "", 1).isdigit():
        whole, _, fraction = value.partition(".")
        fraction_ns = int((fraction + "000000000")[:9]) if fraction else 0
        return int(whole) * NS_PER_S + fraction_ns
    return parse_iso_ns(value)


def _row(number: int, line: str) -> ReplayRow:
    fields = [f.strip() for f in line.split(",")]
    if len(fields) != 3:
        raise ReplayFormatError(f"line {number}: expected 3 fields, got {len(fields)}")
    stamp, symbol, price = fields
    ts_ns = _timestamp_ns(stamp)
    if ts_ns is None:
        raise ReplayFormatError(f"line {number}: bad timestamp {stamp!r}")
    if not symbol.startswith(".") or len(symbol) < 2:
        raise ReplayFormatError(f"line {number}: {symbol!r} is not an index symbol")
    try:
        units, decimals = parse_decimal(price)
    except ValueError as error:
        raise ReplayFormatError(f"line {number}: {error}") from error
    return ReplayRow(ts_ns, symbol, units, decimals)


def parse_replay(lines: Iterable[str]) -> list[ReplayRow]:
    """The rows of a replay file (see the module docstring); pure."""
    rows: list[ReplayRow] = []
    header_seen = False
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not header_seen:
            if tuple(f.strip().lower() for f in line.split(",")) != HEADER:
                raise ReplayFormatError(f"line {number}: header must be {','.join(HEADER)}")
            header_seen = True
            continue
        row = _row(number, line)
        if rows and row.ts_ns < rows[-1].ts_ns:
            raise ReplayFormatError(f"line {number}: timestamp goes backwards")
        if len(rows) >= ROWS_MAX:
            raise ReplayFormatError(f"line {number}: more than {ROWS_MAX} rows")
        rows.append(row)
    if not header_seen:
        raise ReplayFormatError("empty file: no header")
    return rows


def load_replay(path: Path) -> list[ReplayRow]:
    with path.open(encoding="utf-8") as handle:
        return parse_replay(handle)


class ReplaySource:
    """An ``IndexSource`` playing ``rows`` shifted by ``offset_ns``."""

    def __init__(self, rows: list[ReplayRow], offset_ns: int = 0) -> None:
        self.rows = rows
        self.offset_ns = offset_ns
        self._position = 0

    @property
    def first_ns(self) -> int | None:
        return self.rows[0].ts_ns + self.offset_ns if self.rows else None

    @property
    def done(self) -> bool:
        return self._position >= len(self.rows)

    def symbols(self) -> tuple[str, ...]:
        return tuple(sorted({row.symbol for row in self.rows}))

    def skip_to(self, now_ns: int) -> None:
        """Drop rows before ``now_ns`` without publishing them (a resumed replay)."""
        while not self.done and self.rows[self._position].ts_ns + self.offset_ns < now_ns:
            self._position += 1

    def advance(self, now_ns: int) -> list[IndexReading]:
        latest: dict[str, IndexReading] = {}
        rows = self.rows
        while not self.done and rows[self._position].ts_ns + self.offset_ns <= now_ns:
            row = rows[self._position]
            latest[row.symbol] = IndexReading(
                row.symbol,
                row.ts_ns + self.offset_ns,
                row.units,
                row.decimals,
                IndexStatus.LIVE,
                True,
            )
            self._position += 1
        return list(latest.values())
