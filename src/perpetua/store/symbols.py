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
stream (the gateway's views, the projector) learn it from the stream, as the engine made it.
"""

from collections.abc import Sequence

from perpetua.core.catalogue import (
    QUARTER_MONTH_CODES,
    default_catalogue,
    listing_time_ns,
    quarterly_future,
)
from perpetua.core.commands import ListFuture
from perpetua.core.events import InstrumentStateChanged
from perpetua.core.instruments import InstrumentKind, InstrumentSpec

__all__ = ["TIMEFRAMES", "listed_spec", "resolve_symbols"]

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
    ts_ns: int, command: object, events: Sequence[object], index: int
) -> InstrumentSpec | None:
    """The spec of the future a durable ``ListFuture`` record listed, or None (another command,
    or a listing the engine refused). It is the engine's: listed at the command's time (or its
    scheduled listing time, if earlier), ``index`` being the number of instruments the engine
    held before (the reader's catalogue plus the futures listed since)."""
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
    )
    return spec if spec.symbol == listed.symbol else None
