"""The hot events' builders: typed, and cheap from the compiled core.

The events a fill or an order change publishes (``OrderEvent``, ``BookLevel``, ``Transfer``,
``Trade``, ``PositionChanged``, ``OrderMarginChanged``) and the ``PositionMargin`` figures are
NamedTuples. Built as ``Cls(...)`` each paid the interpreted ``__new__`` that
``collections.namedtuple`` generates (decisions §18); built as ``tuple.__new__(Cls, values)``
in C. This module is the one place that does that:

1. ``NEW`` and the classes are ``Final`` names, which the compiled core keeps in C statics: a
   builder looks up neither ``tuple.__new__`` (a method lookup on ``tuple``) nor the class (a
   lookup by name in the module's globals), which each site did per event before (decisions §32).
2. The short events have typed builders (``book_level``, ``transfer``, ``trade``,
   ``order_margin``), so mypy checks their fields, which it does not for ``NEW(Cls, values)``;
   ``Order.to_event`` (34 fields), ``liquidation``'s ``PositionChanged`` (20) and
   ``risk.position_margin`` build theirs with ``NEW`` next to the state they read, and
   tests/core/test_events_shape.py checks every event of a real run against its annotations.
3. A builder is called only where ``state.publish`` (or ``ledger.publish``) is set: recovery
   builds none of these (decisions §18).
"""

from typing import Final

from perpetua.core.events import (
    BookLevel,
    OrderEvent,
    OrderMarginChanged,
    PositionChanged,
    Trade,
    Transfer,
)

__all__ = [
    "NEW",
    "ORDER_EVENT",
    "POSITION_CHANGED",
    "book_level",
    "order_margin",
    "trade",
    "transfer",
]

NEW: Final = tuple.__new__
ORDER_EVENT: Final = OrderEvent
POSITION_CHANGED: Final = PositionChanged
_BOOK_LEVEL: Final = BookLevel
_TRANSFER: Final = Transfer
_TRADE: Final = Trade
_ORDER_MARGIN_CHANGED: Final = OrderMarginChanged


def book_level(ts_ns: int, symbol: str, side: int, price: int, size: int) -> BookLevel:
    """The visible ``size`` at ``price`` after a change (0 removes the level)."""
    return NEW(_BOOK_LEVEL, (ts_ns, symbol, side, price, size))


def transfer(
    ts_ns: int, debit: int, credit: int, currency: str, amount: int, code: int, ref: int
) -> Transfer:
    return NEW(_TRANSFER, (ts_ns, debit, credit, currency, amount, code, ref))


def trade(
    ts_ns: int,
    symbol: str,
    match_id: int,
    side: int,
    qty: int,
    price: int,
    gross_value: int,
    maker_account: int,
    taker_account: int,
    maker_order_id: int,
    taker_order_id: int,
) -> Trade:
    return NEW(
        _TRADE,
        (
            ts_ns, symbol, match_id, side, qty, price, gross_value, maker_account,
            taker_account, maker_order_id, taker_order_id,
        ),
    )  # fmt: skip


def order_margin(ts_ns: int, account: int, symbol: str, required: int) -> OrderMarginChanged:
    return NEW(_ORDER_MARGIN_CHANGED, (ts_ns, account, symbol, required))
