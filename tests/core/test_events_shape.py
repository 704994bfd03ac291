"""Commands and events are NamedTuples of plain values, so the journal can encode them.

Plain means: ``int`` (IntEnum members included: they are ints and encode as ints), ``str``,
``bool``, ``None``, and tuples of plain values (a ``Batch`` holds command tuples). Checked three
ways: every field's annotation uses only that vocabulary; every command type round-trips through
``msgspec.msgpack`` from Hypothesis-built instances; and the events a real engine run produces
(every event type) hold only plain values and round-trip too.

Every command and event type is round-tripped from Hypothesis-built instances (one parametrized
case per type, so a type added later is covered without touching this file).

``Batch.commands`` is ``tuple[PlaceOrder | AmendOrder, ...]``: msgspec cannot decode a union of
two array-like types, so its sub-commands are decoded here by their field count, which differs.
The journal edge must tag them the same way (or by type).
"""

import types
import typing
from enum import IntEnum, IntFlag
from typing import Any, NamedTuple, Union

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpetua.core import commands, events
from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import (
    COMMAND_TYPES,
    AmendOrder,
    Batch,
    CancelAll,
    CancelAllAfter,
    Deposit,
    IndexPrice,
    PlaceOrder,
    SetFeeDiscount,
    SetFeeTier,
    SetInstrumentState,
    WithdrawalComplete,
    WithdrawalRequest,
)
from perpetua.core.engine import Engine
from perpetua.core.enums import ExecInst, OrdType, Side, TimeInForce

EVENT_TYPES: tuple[type, ...] = tuple(
    getattr(events, name) for name in events.__all__ if name != "Event"
)
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_LEAVES = (int, str, bool, type(None))


def _is_namedtuple(cls: object) -> bool:
    return isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, vars(commands) | vars(events))


def _plain_hint(hint: Any) -> bool:
    """True when ``hint`` admits only plain values."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return all(_plain_hint(arm) for arm in typing.get_args(hint))
    if origin is tuple:
        args = typing.get_args(hint)
        return all(_plain_hint(arm) for arm in args if arm is not Ellipsis)
    if _is_namedtuple(hint):
        return all(_plain_hint(h) for h in _hints(hint).values())
    return hint in _LEAVES or (isinstance(hint, type) and issubclass(hint, (IntEnum, IntFlag)))


def _plain_value(value: object) -> bool:
    if isinstance(value, tuple):
        return all(_plain_value(v) for v in value)
    return type(value) in _LEAVES or isinstance(value, (IntEnum, IntFlag))


def test_command_union_and_registry_agree() -> None:
    union = set(typing.get_args(commands.Command))
    assert union == set(COMMAND_TYPES)
    assert len(COMMAND_TYPES) == len(set(COMMAND_TYPES))


def test_event_union_lists_every_event_type() -> None:
    assert set(typing.get_args(events.Event)) == set(EVENT_TYPES)


def test_every_command_and_event_is_a_namedtuple_of_plain_fields() -> None:
    for cls in (*COMMAND_TYPES, *EVENT_TYPES):
        assert _is_namedtuple(cls), cls
        hints = _hints(cls)
        assert tuple(hints) == cls._fields, cls  # type: ignore[attr-defined]
        assert cls._fields[0] == "ts_ns", cls  # type: ignore[attr-defined]
        for name, hint in hints.items():
            assert _plain_hint(hint), f"{cls.__name__}.{name}: {hint}"


# Round trips ----------------------------------------------------------------------------------


def _strategy(hint: Any) -> st.SearchStrategy[Any]:
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        return st.one_of([_strategy(arm) for arm in typing.get_args(hint)])
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(_strategy(args[0]), max_size=3).map(tuple)
        return st.tuples(*(_strategy(a) for a in args))
    if _is_namedtuple(hint):
        return st.builds(hint, *(_strategy(h) for h in _hints(hint).values()))
    if hint is type(None):
        return st.none()
    if hint is bool:
        return st.booleans()
    if hint is int:
        return st.integers(INT64_MIN, INT64_MAX)
    if hint is str:
        return st.text(max_size=12)
    if isinstance(hint, type) and issubclass(hint, IntEnum):
        return st.sampled_from(list(hint))
    raise AssertionError(f"no strategy for {hint}")


def decode_command(cls: type, data: bytes) -> object:
    if cls is not Batch:
        return msgspec.msgpack.decode(data, type=cls)
    ts_ns, subs = msgspec.msgpack.decode(data, type=tuple[int, tuple[list[Any], ...]])
    by_width = {len(PlaceOrder._fields): PlaceOrder, len(AmendOrder._fields): AmendOrder}
    rebuilt = tuple(
        msgspec.msgpack.decode(msgspec.msgpack.encode(sub), type=by_width[len(sub)]) for sub in subs
    )
    return Batch(ts_ns, rebuilt)


def _roundtrip(value: tuple[Any, ...]) -> None:
    assert _plain_value(value), value
    data = msgspec.msgpack.encode(tuple(value))
    decoded = decode_command(type(value), data)
    assert type(decoded) is type(value)
    assert decoded == value


def test_batch_sub_commands_are_told_apart_by_width() -> None:
    assert len(PlaceOrder._fields) != len(AmendOrder._fields)


@pytest.mark.parametrize("cls", COMMAND_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_every_command_type_roundtrips_through_msgpack(cls: type, data: st.DataObject) -> None:
    _roundtrip(data.draw(_strategy(cls)))


@pytest.mark.parametrize("cls", EVENT_TYPES, ids=lambda c: c.__name__)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_every_event_type_roundtrips_through_msgpack(cls: type, data: st.DataObject) -> None:
    event = data.draw(_strategy(cls))
    assert _plain_value(event), event
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(tuple(event)), type=cls)
    assert type(decoded) is cls and decoded == event


def test_a_batch_with_both_sub_command_types_roundtrips() -> None:
    place = PlaceOrder(
        1,
        2,
        "XBTUSD",
        Side.BUY,
        100,
        OrdType.STOP_LIMIT,
        500_000,
        499_000,
        TimeInForce.GOOD_TILL_CANCEL,
        ExecInst.LAST_PRICE | ExecInst.REDUCE_ONLY,
        0,
        cl_ord_id="a",
    )
    _roundtrip(Batch(1, (place, AmendOrder(1, 2, 7, price=500_001, text=None), place)))


# Real events ----------------------------------------------------------------------------------


def _scenario() -> list[object]:
    """A short run that produces every event type."""
    engine = Engine(default_catalogue())
    t = 1_800_000_000_000_000_000
    stream: list[object] = [
        Deposit(t, 1, "XBt", 10**10, "d1"),
        Deposit(t, 2, "XBt", 10**10, "d2"),
        IndexPrice(t, ".BXBT", 50_000, 1),
        PlaceOrder(t, 1, "XBTUSD", Side.SELL, 200, price=500_000, display_qty=100),
        PlaceOrder(t, 2, "XBTUSD", Side.BUY, 300, price=500_000),
        PlaceOrder(t, 2, "XBTUSD", Side.SELL, 100, OrdType.STOP, stop_px=400_000),
        PlaceOrder(t, 1, "NOPE", Side.BUY, 100, price=1),
        # A resting order shrunk in place, then moved: the core's other BookLevel builders.
        PlaceOrder(t, 1, "XBTUSD", Side.BUY, 300, price=450_000, cl_ord_id="rest"),
        AmendOrder(t, 1, orig_cl_ord_id="rest", leaves_qty=200),
        AmendOrder(t, 1, orig_cl_ord_id="rest", price=451_000),
        SetFeeTier(t, 1, 3),
        SetFeeDiscount(t, 1, 100_000),
        CancelAllAfter(t, 2, 1000),
        SetInstrumentState(t, "ETHUSD", "Closed"),
        WithdrawalRequest(t, 1, "XBt", 1000, 10, "w1"),
        WithdrawalComplete(t, "w1"),
        CancelAll(t + 1, 2),
    ]
    out: list[object] = []
    for cmd in stream:
        out.extend(engine.apply(cmd))  # type: ignore[arg-type]
    return out


# The event types the scenario above must produce (newer types are covered by the builds above).
SCENARIO_EVENT_TYPES = (
    "OrderEvent",
    "Trade",
    "BookLevel",
    "Transfer",
    "PositionChanged",
    "Rejected",
    "IndexUpdated",
    "InstrumentStateChanged",
    "FeeSettingsChanged",
    "CancelAllAfterSet",
    "DepositCredited",
    "WithdrawalUpdated",
)


def test_engine_events_are_plain_and_roundtrip() -> None:
    """msgspec decodes each event against its class's annotations (types, arity): the core
    builds ``OrderEvent`` and ``PositionChanged`` with ``emit.NEW`` (``tuple.__new__``), whose
    fields mypy does not check (core/emit.py)."""
    produced = _scenario()
    assert {type(e).__name__ for e in produced} >= set(SCENARIO_EVENT_TYPES)
    for event in produced:
        assert _plain_value(event), event
        data = msgspec.msgpack.encode(tuple(event))  # type: ignore[arg-type]
        decoded = msgspec.msgpack.decode(data, type=type(event))
        assert decoded == event
        assert tuple(decoded) == tuple(event)


def test_namedtuple_is_the_base() -> None:
    """Guard the decision (docs/decisions.md #1): a type switched to a class fails loudly."""
    for cls in (*COMMAND_TYPES, *EVENT_TYPES):
        assert NamedTuple in getattr(cls, "__orig_bases__", ()), cls
