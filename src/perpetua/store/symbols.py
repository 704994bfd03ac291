"""Symbol parameters of table queries: exact symbols, series roots and ``ROOT:timeframe``.

* an exact symbol, any letter case (``xbtusd`` is ``XBTUSD``);
* a series root (the catalogue's ``root_symbol``, e.g. ``XBT``): every instrument of that root
  (XBTUSD, XBTUSDT, XBTH27, XBTM27, XBT_USDT and the XBT indices);
* ``ROOT:perpetual`` (the root's perpetuals), ``ROOT:quarterly`` / ``ROOT:biquarterly`` (its
  first / second quarterly future not expired at ``now_ns``), ``ROOT:nearest`` (the nearest
  future); other BitMEX timeframes (daily, weekly, monthly) match nothing here.

An unknown symbol matches nothing: the query returns no rows, as BitMEX's tables do.
A caller with its own resolution (the gateway's ``SymbolIndex``) passes a list of exact symbols
instead of a string; the list is used as it is.

``listed_spec`` is the instrument a ``ListFuture`` record lists at runtime: readers of the event
stream (the gateway's views, the projector) learn it from the stream, as the engine made it;
``defined_series`` the futures series a ``DefineFutureSeries`` record defines (from the
runtime's catalogue file), which later listings of that series need.
"""

from collections.abc import Mapping, Sequence

from perpetua.core.catalogue import (
    QUARTER_MONTH_CODES,
    FutureSeries,
    default_catalogue,
    listing_time_ns,
    quarterly_future,
)
from perpetua.core.commands import Command, DefineFutureSeries, ListFuture
from perpetua.core.events import Event, FutureSeriesDefined, InstrumentStateChanged
from perpetua.core.instruments import InstrumentKind, InstrumentSpec, Payout

__all__ = ["TIMEFRAMES", "defined_series", "listed_spec", "resolve_symbols"]

TIMEFRAMES = ("nearest", "daily", "weekly", "monthly", "quarterly", "biquarterly", "perpetual")


def _futures(
    specs: Sequence[InstrumentSpec], root: str, now_ns: int | None
) -> list[InstrumentSpec]:
    live = [
        s
        for s in specs
        if s.root_symbol.upper() == root
        and s.kind == InstrumentKind.FUTURE
        and (now_ns is None or s.expiry_ns > now_ns)
    ]
    return sorted(live, key=lambda s: (s.expiry_ns, s.symbol))


def _timeframe(
    specs: Sequence[InstrumentSpec], root: str, timeframe: str, now_ns: int | None
) -> tuple[str, ...]:
    if timeframe == "perpetual":
        return tuple(
            s.symbol
            for s in specs
            if s.root_symbol.upper() == root and s.kind == InstrumentKind.PERPETUAL
        )
    futures = _futures(specs, root, now_ns)
    if timeframe == "nearest":
        return tuple(s.symbol for s in futures[:1])
    if timeframe in ("quarterly", "biquarterly"):
        quarterly = [
            s for s in futures if len(s.symbol) >= 3 and s.symbol[-3] in QUARTER_MONTH_CODES
        ]
        position = 0 if timeframe == "quarterly" else 1
        return (quarterly[position].symbol,) if len(quarterly) > position else ()
    return ()


def resolve_symbols(
    symbol: str | Sequence[str] | None,
    catalogue: Sequence[InstrumentSpec] | None = None,
    now_ns: int | None = None,
) -> tuple[str, ...] | None:
    """The exact symbols ``symbol`` names; ``None`` when no symbol was given (no condition)."""
    if symbol is None or symbol == "":
        return None
    if not isinstance(symbol, str):
        return tuple(symbol)
    specs = catalogue if catalogue is not None else default_catalogue()
    upper = symbol.strip().upper()
    for spec in specs:
        if spec.symbol.upper() == upper:
            return (spec.symbol,)
    if ":" in upper:
        root, _, timeframe = upper.partition(":")
        return _timeframe(specs, root, timeframe.lower(), now_ns)
    return tuple(s.symbol for s in specs if s.root_symbol.upper() == upper)


def listed_spec(
    ts_ns: int,
    command: Command,
    events: Sequence[Event],
    index: int,
    series: Mapping[str, FutureSeries] | None = None,
) -> InstrumentSpec | None:
    """The spec of the future a durable ``ListFuture`` record listed, or None (another command,
    or a listing the engine refused). It is the engine's: listed at the command's time (or its
    scheduled listing time, if earlier), ``index`` being the number of instruments the engine
    held before (the reader's catalogue plus the futures listed since); ``series``: the series
    the engine defined (``DefineFutureSeries``: the reader follows them with
    ``defined_series``) beside the built-in ones."""
    if type(command) is not ListFuture:
        return None
    listed = next((e for e in events if type(e) is InstrumentStateChanged), None)
    if listed is None:
        return None
    spec = quarterly_future(
        command.root,
        command.year,
        command.quarter,
        listing_ns=listing_time_ns(command.year, command.quarter, ts_ns),
        index=index,
        series=series,
    )
    return spec if spec.symbol == listed.symbol else None


def defined_series(command: Command, events: Sequence[Event]) -> FutureSeries | None:
    """The series a durable ``DefineFutureSeries`` record defined, or None (another command,
    or one the engine refused)."""
    if type(command) is not DefineFutureSeries:
        return None
    if not any(type(e) is FutureSeriesDefined for e in events):
        return None
    found = FutureSeries._make(command[1:])
    return found._replace(payout=Payout(found.payout))
