"""The command codec: exact round trips for every command type, the pinned on-disk schema, and
refusal of bytes this build cannot read."""

import enum
import types
import typing
from enum import IntEnum

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perpetua.core.commands import COMMAND_TYPES, AmendOrder, Batch, CancelOrders, PlaceOrder
from perpetua.core.enums import OrdType, Side, TimeInForce
from perpetua.sequencer.codec import (
    CODEC_VERSION,
    CodecError,
    command_type_index,
    decode_command,
    decode_image,
    encode_command,
    encode_image,
)
from perpetua.sequencer.recovery import default_engine
from tests.sequencer.workload import stamp, workload

INT64 = st.integers(-(2**63), 2**63 - 1)
SCALARS: dict[object, st.SearchStrategy[object]] = {
    int: INT64,
    str: st.text(max_size=40),
    bool: st.booleans(),
    type(None): st.none(),
}


def strategy_for(annotation: object) -> st.SearchStrategy[object]:
    """Values of a command field's annotation (commands nested one level)."""
    if annotation in SCALARS:
        return SCALARS[annotation]
    if isinstance(annotation, type) and issubclass(annotation, enum.IntEnum):
        return st.sampled_from(list(annotation))
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        return st.one_of([strategy_for(arg) for arg in args])
    if typing.get_origin(annotation) is tuple:
        return st.lists(strategy_for(args[0]), max_size=5).map(tuple)
    if annotation in COMMAND_TYPES:
        return command_strategy(annotation)  # type: ignore[arg-type]
    raise AssertionError(f"no strategy for {annotation!r}")


def command_strategy(cls: type) -> st.SearchStrategy[object]:
    hints = typing.get_type_hints(cls)
    fields = {name: strategy_for(hints[name]) for name in cls._fields}  # type: ignore[attr-defined]
    return st.builds(cls, **fields)


@pytest.mark.parametrize("cls", COMMAND_TYPES, ids=lambda cls: cls.__name__)
def test_every_command_type_round_trips_exactly(cls: type) -> None:
    @settings(max_examples=150, deadline=None)
    @given(command_strategy(cls))
    def round_trip(command: object) -> None:
        payload = encode_command(command)  # type: ignore[arg-type]
        assert payload[:2] == bytes((CODEC_VERSION, command_type_index(cls)))
        decoded = decode_command(payload)
        assert type(decoded) is cls
        assert decoded == command
        assert repr(decoded) == repr(command)  # IntEnum members come back as members
        for inner, original in zip(decoded, command, strict=True):  # type: ignore[call-overload]
            assert type(inner) is type(original) or (
                isinstance(original, IntEnum) and type(inner) is type(original)
            )

    round_trip()


# If this fails, you changed COMMAND_TYPES or a command's fields. Appending a type, or a field
# with a default at the end of a command, is compatible: extend this table. Anything else
# breaks every journal on disk: bump CODEC_VERSION and keep a decoder for the old version.
PINNED_SCHEMA = [
    (
        "PlaceOrder",
        (
            "ts_ns",
            "account",
            "symbol",
            "side",
            "order_qty",
            "ord_type",
            "price",
            "stop_px",
            "time_in_force",
            "exec_inst",
            "display_qty",
            "peg_price_type",
            "peg_offset",
            "cl_ord_id",
            "cl_ord_link_id",
            "contingency_type",
            "text",
        ),
    ),
    (
        "AmendOrder",
        (
            "ts_ns",
            "account",
            "order_id",
            "orig_cl_ord_id",
            "cl_ord_id",
            "order_qty",
            "leaves_qty",
            "price",
            "stop_px",
            "peg_offset",
            "text",
        ),
    ),
    ("CancelOrders", ("ts_ns", "account", "order_ids", "cl_ord_ids", "text")),
    ("CancelAll", ("ts_ns", "account", "symbol", "side", "text")),
    ("CancelAllAfter", ("ts_ns", "account", "timeout_ms")),
    ("Batch", ("ts_ns", "commands")),
    ("Tick", ("ts_ns",)),
    ("IndexPrice", ("ts_ns", "symbol", "price_num", "price_den")),
    ("SetInstrumentState", ("ts_ns", "symbol", "state")),
    ("SetFeeTier", ("ts_ns", "account", "tier")),
    ("SetFeeDiscount", ("ts_ns", "account", "discount_ppm")),
    ("Deposit", ("ts_ns", "account", "currency", "amount", "transfer_id")),
    ("WithdrawalRequest", ("ts_ns", "account", "currency", "amount", "fee", "withdrawal_id")),
    ("WithdrawalCancel", ("ts_ns", "withdrawal_id")),
    ("WithdrawalComplete", ("ts_ns", "withdrawal_id")),
    ("SetLeverage", ("ts_ns", "account", "symbol", "leverage_e2")),
    ("SetRiskLimit", ("ts_ns", "account", "symbol", "risk_limit")),
    ("TransferMargin", ("ts_ns", "account", "symbol", "amount")),
    ("ListFuture", ("ts_ns", "root", "year", "quarter")),
    ("SetInterestRate", ("ts_ns", "symbol", "interest_ppb")),
    ("WalletTransfer", ("ts_ns", "account", "to_account", "currency", "amount", "transfer_id")),
    ("PublishAnnouncement", ("ts_ns", "title", "content", "link", "urgent")),
    ("WithdrawAnnouncement", ("ts_ns", "announcement_id")),
    (
        "SetAccountRestriction",
        (
            "ts_ns",
            "account",
            "trading",
            "products_denied",
            "deposits",
            "withdrawals",
            "cause",
            "text",
        ),
    ),
    ("LiquidateAccount", ("ts_ns", "account", "band_ppm", "text")),
    ("DepositReverse", ("ts_ns", "transfer_id", "account", "currency", "amount")),
    ("Stake", ("ts_ns", "account", "currency", "amount")),
    ("UnstakeRequest", ("ts_ns", "account", "currency", "amount", "request_id")),
    ("UnstakeCancel", ("ts_ns", "account", "request_id")),
    ("FundStakingRewards", ("ts_ns", "currency", "amount", "transfer_id")),
    (
        "Convert",
        (
            "ts_ns",
            "account",
            "from_currency",
            "to_currency",
            "from_amount",
            "to_amount",
            "quote_id",
            "expires_ns",
        ),
    ),
    ("FundConvertDesk", ("ts_ns", "currency", "amount", "transfer_id")),
    (
        "SetTradingCalendar",
        ("ts_ns", "symbol", "holiday_days", "early_close_days", "early_close_minutes"),
    ),
    (
        "DefineFutureSeries",
        (
            "ts_ns",
            "key",
            "payout",
            "root",
            "quote",
            "settl",
            "position_currency",
            "reference",
            "settlement_index",
            "tick_num",
            "tick_den",
            "lot_size",
            "max_order_qty",
            "max_price",
            "multiplier",
            "u2p",
            "u2s",
            "q2s",
            "init_margin_ppm",
            "maint_margin_ppm",
            "risk_limit",
            "risk_step",
            "impact_notional",
        ),
    ),
]


def test_on_disk_schema_is_pinned() -> None:
    actual = [(cls.__name__, cls._fields) for cls in COMMAND_TYPES]  # type: ignore[attr-defined]
    common = len(PINNED_SCHEMA)
    assert actual[:common] == PINNED_SCHEMA, "command types or fields changed: see the comment"
    for name, fields in actual[common:]:
        pytest.fail(f"new command type {name} {fields}: add it to PINNED_SCHEMA")


def test_a_shorter_record_from_an_older_writer_takes_the_defaults() -> None:
    full = PlaceOrder(5, 1, "XBTUSD", Side.BUY, 100, OrdType.LIMIT, price=10, text="x")
    older = bytes((CODEC_VERSION, 0)) + msgspec.msgpack.encode(tuple(full)[:7])
    assert decode_command(older) == full._replace(text="")


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "codec version None"),
        (bytes((CODEC_VERSION + 1, 0)) + msgspec.msgpack.encode([1]), "codec version 2"),
        (
            bytes((CODEC_VERSION, len(COMMAND_TYPES))) + msgspec.msgpack.encode([1]),
            "unknown command type index",
        ),
        (bytes((CODEC_VERSION, 6)) + msgspec.msgpack.encode([1, 2]), "undecodable Tick"),
        (bytes((CODEC_VERSION, 6)) + msgspec.msgpack.encode(["1"]), "undecodable Tick"),
        (
            bytes((CODEC_VERSION, 0)) + msgspec.msgpack.encode([1, 1, "X", 7, 1]),
            "undecodable PlaceOrder",
        ),  # 7 is no Side
        (encode_command(PlaceOrder(1, 1, "XBTUSD", Side.BUY, 1))[:-3], "undecodable"),
    ],
)
def test_unreadable_records_raise_codec_error(payload: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        decode_command(payload)


def test_values_messagepack_cannot_hold_are_refused_before_storage() -> None:
    with pytest.raises(OverflowError):
        encode_command(PlaceOrder(1, 1, "XBTUSD", Side.BUY, 2**70))
    with pytest.raises(TypeError):
        encode_command(("not", "a", "command"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_command(Batch(1, (CancelOrders(1, 1),)))  # type: ignore[arg-type]


def test_batch_nests_its_commands_with_their_types() -> None:
    batch = Batch(
        9, (PlaceOrder(0, 1, "XBTUSD", Side.SELL, 100, price=5), AmendOrder(0, 1, 3, price=6))
    )
    decoded = decode_command(encode_command(batch))
    assert repr(decoded) == repr(batch)
    assert [type(c) for c in decoded.commands] == [PlaceOrder, AmendOrder]  # type: ignore[attr-defined]


def plain(command: object) -> object:
    """The command with every IntEnum replaced by its int (nested commands too)."""
    values = []
    for value in command:  # type: ignore[attr-defined]
        if isinstance(value, IntEnum):
            value = int(value)
        elif isinstance(value, tuple) and value and type(value[0]) in COMMAND_TYPES:
            value = tuple(plain(sub) for sub in value)
        values.append(value)
    return type(command)(*values)


def test_intenum_fields_as_plain_ints_change_neither_events_nor_state_hash() -> None:
    """Whatever a decoder gives back (members or ints), the engine behaves the same."""
    commands = stamp(workload(11, 600), 1_709_330_400_000_000_000)
    with_enums, with_ints = default_engine(), default_engine()
    converted = 0
    for index, command in enumerate(commands):
        as_ints = plain(command)
        converted += repr(as_ints) != repr(command)
        events_enum = with_enums.apply(command)
        events_int = with_ints.apply(as_ints)  # type: ignore[arg-type]
        assert events_int == events_enum, f"command {index}: {command!r}"
        if index % 50 == 0:
            assert with_ints.state_hash() == with_enums.state_hash()
    assert converted > 100
    assert with_ints.state_hash() == with_enums.state_hash()


def test_images_round_trip_through_snapshot_payloads() -> None:
    engine = default_engine()
    for command in stamp(workload(5, 300), 1_709_330_400_000_000_000):
        engine.apply(command)
    image = engine.snapshot()
    restored = default_engine()
    restored.restore(decode_image(encode_image(image)))
    assert restored.state_hash() == engine.state_hash()
    with pytest.raises(CodecError):
        decode_image(msgspec.msgpack.encode([99, image]))


def test_enum_member_types_survive() -> None:
    command = PlaceOrder(
        1, 1, "XBTUSD", Side.BUY, 100, OrdType.STOP, stop_px=4, time_in_force=TimeInForce.DAY
    )
    decoded = decode_command(encode_command(command))
    assert type(decoded.side) is Side  # type: ignore[attr-defined]
    assert type(decoded.time_in_force) is TimeInForce  # type: ignore[attr-defined]


def test_a_batch_holding_other_commands_is_refused_on_decode() -> None:
    body = msgspec.msgpack.encode([1, [[command_type_index(CancelOrders), [1, 1, [], [], ""]]]])
    with pytest.raises(CodecError, match="Batch holding a CancelOrders"):
        decode_command(bytes((CODEC_VERSION, command_type_index(Batch))) + body)
