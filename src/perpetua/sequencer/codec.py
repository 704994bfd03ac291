"""Commands to bytes and back (msgspec MessagePack), for journal records and the engine server.

Wire format, version 1 (``CODEC_VERSION``)
    A record is two header bytes, ``CODEC_VERSION`` and ``type_index`` (the command type's
    position in ``core.commands.COMMAND_TYPES``), then one MessagePack array of the
    NamedTuple's fields in declaration order (``ts_ns`` first): ``[type_index, *fields]``
    with the index lifted out of the MessagePack so the decoder knows the type before it reads
    a byte of the body. A field holding commands (today only ``Batch.commands``) is an array of
    ``[type_index, [fields]]`` pairs. IntEnum values travel as ints, ``None`` as nil, tuples as
    arrays.

Why the index sits outside the MessagePack: msgspec decodes an array straight into a given
NamedTuple (checking every field's type, mapping ints back to IntEnum members and arrays back to
tuples, filling missing trailing fields from defaults) in one C call, about 0.4 us for a
PlaceOrder here, but cannot pick among several array-shaped types by a leading element. A
version-prefixed ``[type_index, *fields]`` array decoded generically and rebuilt in Python
measured 2-4 us a record (see docs/decisions.md), a large part of the replay budget.

``decode_command(encode_command(c)) == c`` with equal types and equal ``repr`` (tested for every
command type, IntEnums included). A record whose body does not fit its type is a `CodecError`.

Compatibility rules (tests/sequencer/test_codec.py pins the schema; when it fails, read this)
    - ``COMMAND_TYPES`` may only grow at its end: a type's index is its name on disk.
    - A command may gain fields only at its end and only with defaults: a shorter record from
      an older writer decodes with those defaults. Renaming a field is free; removing,
      reordering or retyping one needs ``CODEC_VERSION + 1`` and a decoder for the old version.
    - A record with more fields than its type has, an unknown type index or an unknown version
      was written by a newer build: `CodecError`, and recovery stops rather than guess.

The schema is derived once, at import, from the commands' type annotations (scalars, IntEnums,
optional scalars or IntEnums, tuples of scalars, tuples of commands one level deep); an
annotation outside that set fails at import, so a new command type cannot be silently dropped.

Snapshot payloads (`encode_image`) are ``[IMAGE_FORMAT_VERSION, image]`` in plain MessagePack;
the image is plain data (ints, strings, None, lists, dicts), tuples come back as lists.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Callable
from typing import Final, NamedTuple

import msgspec

from perpetua.core.commands import COMMAND_TYPES, Command
from perpetua.core.invariant import fail, invariant

__all__ = [
    "CODEC_VERSION",
    "IMAGE_FORMAT_VERSION",
    "CodecError",
    "command_type_index",
    "decode_command",
    "decode_image",
    "encode_command",
    "encode_image",
]

CODEC_VERSION: Final = 1
IMAGE_FORMAT_VERSION: Final = 1  # the snapshot payload wrapper: [version, engine image]
NESTING_DEPTH_MAX: Final = 1  # a Batch holds commands that hold no commands
RECORD_HEADER_BYTES: Final = 2  # version, type index
TYPE_INDEX_MAX: Final = 255  # one byte


class CodecError(Exception):
    """Stop: bytes that no decoder of this build understands (a newer writer, or damage that
    passed the journal's crc). Never retried; recovery stops and names the record."""


_SCALARS: Final = frozenset({int, str, bool, type(None)})


def _held_commands(cls: type, name: str, annotation: object) -> frozenset[type]:
    """The command types a field holds (none for a plain field); fails on an annotation the
    wire cannot carry."""
    if annotation in _SCALARS or (
        isinstance(annotation, type) and issubclass(annotation, enum.IntEnum)
    ):
        return frozenset()
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (types.UnionType, typing.Union):
        for arg in args:
            invariant(
                arg in _SCALARS or (isinstance(arg, type) and issubclass(arg, enum.IntEnum)),
                f"codec: {cls.__name__}.{name}: unsupported union {annotation!r}",
            )
        return frozenset()
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        items = typing.get_args(args[0]) or (args[0],)
        if all(item in COMMAND_TYPES for item in items):
            return frozenset(items)
        if all(item in _SCALARS for item in items):
            return frozenset()
    fail(f"codec: {cls.__name__}.{name}: unsupported annotation {annotation!r}")


class _Schema(NamedTuple):
    cls: type  # the command NamedTuple
    type_index: int  # its position in COMMAND_TYPES: the record's second byte
    decode: Callable[[bytes | memoryview], object]  # the field array -> cls (or a tuple)
    nested: tuple[tuple[int, frozenset[type]], ...]  # (position, types held) of command fields


def _build_schema(cls: type, index: int) -> _Schema:
    hints = typing.get_type_hints(cls)
    names: tuple[str, ...] = cls._fields  # type: ignore[attr-defined]
    invariant(names[:1] == ("ts_ns",), f"codec: {cls.__name__}: first field is not ts_ns")
    held = [_held_commands(cls, name, hints[name]) for name in names]
    nested = tuple((position, kinds) for position, kinds in enumerate(held) if kinds)
    if not nested:
        # msgspec decodes straight into the NamedTuple: types checked, enums and tuples
        # rebuilt, missing trailing fields taken from the defaults, extra ones refused.
        return _Schema(cls, index, msgspec.msgpack.Decoder(cls).decode, ())
    invariant(not cls._field_defaults, f"codec: {cls.__name__}: nesting with defaults")  # type: ignore[attr-defined]
    shape = [
        list[tuple[int, msgspec.Raw]] if held_types else hints[name]
        for name, held_types in zip(names, held, strict=True)
    ]
    decoder = msgspec.msgpack.Decoder(tuple[tuple(shape)])  # type: ignore[misc]
    return _Schema(cls, index, decoder.decode, nested)


_SCHEMAS: Final = tuple(_build_schema(cls, index) for index, cls in enumerate(COMMAND_TYPES))
_SCHEMA_BY_TYPE: Final = {schema.cls: schema for schema in _SCHEMAS}
_HEADERS: Final = tuple(bytes((CODEC_VERSION, schema.type_index)) for schema in _SCHEMAS)
_encode: Final[Callable[[object], bytes]] = msgspec.msgpack.Encoder().encode
_decode_plain: Final[Callable[[bytes | memoryview], object]] = msgspec.msgpack.Decoder().decode
invariant(len(_SCHEMAS) <= TYPE_INDEX_MAX + 1, "codec: more command types than a byte numbers")


def command_type_index(cls: type) -> int:
    """The on-disk number of a command type; a programmer error for anything else."""
    schema = _SCHEMA_BY_TYPE.get(cls)
    if schema is None:
        fail(f"not a command type: {cls!r}")
    return schema.type_index


def _nested_fields(command: tuple[object, ...], schema: _Schema) -> list[object]:
    """The field array with each held command as ``[type_index, [fields]]``."""
    fields = list(command)
    for position, allowed in schema.nested:
        inner = []
        for sub in command[position]:  # type: ignore[attr-defined]
            if type(sub) not in allowed:
                raise TypeError(f"a {schema.cls.__name__} cannot hold a {type(sub).__name__}")
            inner.append((_SCHEMA_BY_TYPE[type(sub)].type_index, sub))
        fields[position] = inner
    return fields


def encode_command(command: Command) -> bytes:
    """The record bytes of a command. TypeError/OverflowError for values MessagePack cannot
    hold (an int past 64 bits, a float): the caller's bug, reported before anything is stored."""
    schema = _SCHEMA_BY_TYPE.get(type(command))
    if schema is None:
        raise TypeError(f"not a command: {type(command).__name__}")
    if not schema.nested:
        return _HEADERS[schema.type_index] + _encode(command)
    return _HEADERS[schema.type_index] + _encode(_nested_fields(command, schema))


def _decode_body(index: int, body: bytes | memoryview, depth: int) -> Command:
    if index >= len(_SCHEMAS):
        raise CodecError(f"unknown command type index {index} (written by a newer build?)")
    schema = _SCHEMAS[index]
    try:
        value = schema.decode(body)
    except msgspec.DecodeError as error:  # ValidationError included
        raise CodecError(f"undecodable {schema.cls.__name__} record: {error}") from None
    if not schema.nested:
        return value  # type: ignore[return-value]
    if depth >= NESTING_DEPTH_MAX:
        raise CodecError(f"a {schema.cls.__name__} nested in a command")
    fields = list(value)  # type: ignore[call-overload]
    for position, allowed in schema.nested:
        held = tuple(_decode_body(index, raw, depth + 1) for index, raw in fields[position])
        for sub in held:
            if type(sub) not in allowed:
                raise CodecError(f"a {schema.cls.__name__} holding a {type(sub).__name__}")
        fields[position] = held
    return schema.cls(*fields)  # type: ignore[no-any-return]


def decode_command(payload: bytes) -> Command:
    """The command a record holds; CodecError if this build cannot read it."""
    if len(payload) < RECORD_HEADER_BYTES or payload[0] != CODEC_VERSION:
        found = payload[0] if payload else None
        raise CodecError(f"codec version {found!r}, this build reads {CODEC_VERSION}")
    return _decode_body(payload[1], payload[2:], 0)


def encode_image(image: dict[str, object]) -> bytes:
    """A snapshot payload: ``[IMAGE_FORMAT_VERSION, engine image]`` (plain data only)."""
    return _encode((IMAGE_FORMAT_VERSION, image))


def decode_image(payload: bytes | memoryview) -> dict[str, object]:
    """The engine image in a snapshot payload; CodecError if it is not one this build reads."""
    try:
        values = _decode_plain(payload)
    except msgspec.DecodeError as error:
        raise CodecError(f"snapshot payload is not MessagePack: {error}") from None
    if type(values) is not list or len(values) != 2 or values[0] != IMAGE_FORMAT_VERSION:
        raise CodecError("snapshot payload is not [IMAGE_FORMAT_VERSION, image]")
    image = values[1]
    if type(image) is not dict:
        raise CodecError("snapshot image is not a map")
    return image
