"""The feed interface: an ``IndexSource`` turns outside prices into ``IndexReading`` values,
and ``to_command`` turns a reading into the ``IndexPrice`` command the sequencer journals.

Every source (the simulator, the CSV replay, a live adapter) has the same small surface:

- ``symbols()``: the index symbols it produces, fixed for its lifetime;
- ``advance(now_ns)``: bring the source up to ``now_ns`` and return one reading per index that
  has something to say (the latest value; intermediate values are not queued). Called by the
  ``IndexPublisher`` every publish interval; it must not block for long (a live adapter bounds
  its network calls with timeouts).

A reading with ``publish`` true becomes an ``IndexPrice``; others (stale or closed indices)
only update the board that serves ``instrument/compositeIndex``.
"""

from typing import NamedTuple, Protocol

from perpetua.core.commands import IndexPrice
from perpetua.feeds.composite import ConstituentRow, IndexStatus

__all__ = ["IndexReading", "IndexSource", "to_command"]


class IndexReading(NamedTuple):
    symbol: str  # ".BXBT"
    ts_ns: int  # the time the value was computed (source time)
    units: int  # value in 10**-decimals
    decimals: int
    status: IndexStatus
    publish: bool  # submit as IndexPrice
    constituents: tuple[ConstituentRow, ...] = ()


class IndexSource(Protocol):
    def symbols(self) -> tuple[str, ...]: ...

    def advance(self, now_ns: int) -> list[IndexReading]: ...


def to_command(reading: IndexReading) -> IndexPrice:
    """The ``IndexPrice`` of a reading (``ts_ns`` 0: the sequencer stamps it)."""
    if reading.units <= 0:
        raise ValueError(f"{reading.symbol}: an index price must be positive")
    return IndexPrice(0, reading.symbol, reading.units, 10**reading.decimals)
