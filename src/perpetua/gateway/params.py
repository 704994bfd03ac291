"""Request parameters: query string, JSON body and form body merged into one mapping.

BitMEX clients send parameters as query strings (GET), JSON bodies (POST/PUT and DELETE) or
form bodies (bravado). Array- and object-typed parameters (``filter``, ``columns``, ``orderID``)
arrive either as JSON text or as real JSON values; ``json_value`` accepts both. Every parser
raises ``ApiError`` 400 on bad input, never anything else.

Bounds, checked before any conversion so no input costs the event loop more than a few
microseconds (docs/security.md):

1. numeric text is at most ``NUMBER_TEXT_CHARS_MAX`` ASCII characters of plain decimal
   notation (no ``_``, ``NaN``, ``Infinity`` or non-ASCII digits) and its decimal exponent is
   within ``NUMBER_EXPONENT_MAX``: ``int(Decimal("1e300000"))`` builds a 300,000-digit int and
   held the loop for seconds;
2. JSON text nests at most ``JSON_DEPTH_MAX`` arrays and objects and holds at most
   ``JSON_CONTAINERS_MAX`` of them: deeper documents overflowed the decoder's recursion (a 500)
   before this check. The decoder (C) stops itself at its recursion limit; the bounds are then
   checked on the decoded value, walking containers only;
3. a body is at most ``BODY_BYTES_MAX`` bytes (413), checked before its signature.
"""

import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from perpetua.gateway.errors import ApiError, bad_request
from perpetua.wire.values import JsonRow, decode_json, parse_iso_ns

__all__ = [
    "JSON_CONTAINERS_MAX",
    "JSON_DEPTH_MAX",
    "NUMBER_EXPONENT_MAX",
    "NUMBER_TEXT_CHARS_MAX",
    "Params",
    "check_json_depth",
    "decode_json_text",
    "parse_body",
    "parse_number",
    "parse_query",
]

# A bulk of 100 orders is about 30 kB (45 kB with 256-character texts). Decoding the costliest
# shapes (every value a number made Decimal, or an empty array) takes ~0.3 us a byte on this
# class of machine, so the largest body stays well under 50 ms of the event loop.
BODY_BYTES_MAX = 64 * 1024
TIME_NS_MAX = 2**63 - 1  # times are int64 ns since the epoch (until 2262)
NUMBER_TEXT_CHARS_MAX = 40  # "-123456789012345678901234567890.12345678" fits
NUMBER_EXPONENT_MAX = 30  # |decimal exponent| of a parsed number: 1e-30 .. 9.99e30
NUMBER_INT_BITS_MAX = 128  # an int arriving as a JSON number (msgspec caps these at 64)
JSON_DEPTH_MAX = 16  # a bulk of orders with a filter object nests 3 deep
JSON_CONTAINERS_MAX = 1_000  # arrays + objects in one document: a bulk of 100 orders has 101
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


def check_json_depth(value: Any) -> None:
    """400 when decoded JSON nests more than ``JSON_DEPTH_MAX`` arrays/objects or holds more
    than ``JSON_CONTAINERS_MAX`` of them: a walk over containers only, stopped at the bounds."""
    level: list[Any] = [value]
    depth = 0
    containers = 0
    while level:
        depth += 1
        containers += len(level)
        if depth > JSON_DEPTH_MAX:
            raise bad_request(f"JSON nested deeper than {JSON_DEPTH_MAX} levels")
        if containers > JSON_CONTAINERS_MAX:
            raise bad_request(f"JSON has more than {JSON_CONTAINERS_MAX} arrays and objects")
        below: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            below.extend(c for c in children if type(c) is list or type(c) is dict)
            if containers + len(below) > JSON_CONTAINERS_MAX:
                raise bad_request(f"JSON has more than {JSON_CONTAINERS_MAX} arrays and objects")
        level = below


def decode_json_text(text: bytes | str) -> Any:
    """``decode_json`` within the nesting bounds: a ``msgspec.DecodeError`` on bad JSON, a 400
    ``ApiError`` on JSON nested too deep (the decoder's own recursion limit included)."""
    try:
        value = decode_json(text)
    except RecursionError:
        raise bad_request(f"JSON nested deeper than {JSON_DEPTH_MAX} levels") from None
    if type(value) is dict or type(value) is list:
        raw = text.encode() if isinstance(text, str) else text
        if raw.count(b"[") + raw.count(b"{") > JSON_DEPTH_MAX:  # else it cannot be deeper
            check_json_depth(value)
    return value


def parse_query(query: str) -> JsonRow:
    return dict(parse_qsl(query, keep_blank_values=True))


def parse_body(body: bytes, content_type: str) -> JsonRow:
    """Decode a JSON or form body into a dict; an empty body is ``{}``."""
    if not body:
        return {}
    if len(body) > BODY_BYTES_MAX:
        raise ApiError(413, "Request body too large")
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        try:
            return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError as exc:
            raise bad_request("Invalid form body") from exc
    try:
        value = decode_json_text(body)
    except msgspec.DecodeError:
        if kind not in ("", "application/json") and b"=" in body:
            try:
                return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            except UnicodeDecodeError:
                pass
        raise bad_request("Invalid JSON body") from None
    if not isinstance(value, dict):
        raise bad_request("JSON body must be an object")
    return value


class Params:
    """Typed access to merged parameters; missing or empty means ``None``."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def raw(self, name: str) -> Any:
        value = self.values.get(name)
        return None if value == "" else value

    # The readers below inline ``raw`` (one dict lookup, no second call): an order reads
    # about fifteen names, most of them absent.

    def has(self, name: str) -> bool:
        value = self.values.get(name)
        return value is not None and value != ""

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
            raise bad_request(f"Invalid {name}")
        return str(value)

    def required_string(self, name: str) -> str:
        value = self.string(name)
        if value is None:
            raise bad_request(f"'{name}' is a required arg.")
        return value

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            return default
        parsed = parse_number(value, name)
        if parsed != parsed.to_integral_value():
            raise bad_request(f"Invalid {name}")
        return int(parsed)  # at most NUMBER_EXPONENT_MAX digits

    def decimal(self, name: str) -> Decimal | None:
        value = self.values.get(name)
        return None if value is None or value == "" else parse_number(value, name)

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        raise bad_request(f"Invalid {name}")

    def json_value(self, name: str) -> Any:
        value = self.raw(name)
        if isinstance(value, str):
            text = value.strip()
            if text[:1] in ("{", "["):
                try:
                    return decode_json_text(text)
                except msgspec.DecodeError as exc:
                    raise bad_request(f"Invalid {name}: not JSON") from exc
        return value

    def string_list(self, name: str) -> list[str] | None:
        """A string or list of strings (JSON text or a comma-free scalar)."""
        value = self.json_value(name)
        if value is None:
            return None
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str | int) and not isinstance(item, bool) for item in items):
            raise bad_request(f"Invalid {name}")
        return [str(item) for item in items]

    def time_ns(self, name: str) -> int | None:
        value = self.string(name)
        if value is None:
            return None
        parsed = parse_iso_ns(value)
        if parsed is None or not 0 <= parsed <= TIME_NS_MAX:
            raise bad_request(f"Invalid {name}")
        return parsed


def parse_number(value: Any, name: str) -> Decimal:
    """A finite ``Decimal`` from a JSON number or numeric text within the module's bounds;
    ``ApiError`` 400 otherwise, decided before any unbounded conversion."""
    if isinstance(value, bool):
        raise bad_request(f"Invalid {name}")
    if isinstance(value, int):
        if value.bit_length() > NUMBER_INT_BITS_MAX:
            raise bad_request(f"Invalid {name}")
        value = str(value)
    elif isinstance(value, float):
        value = repr(value)  # at most 24 characters
    elif isinstance(value, Decimal):
        value = (
            str(value)
            if value.is_finite() and abs(value.adjusted()) <= (NUMBER_EXPONENT_MAX)
            else "x"
        )
    if not isinstance(value, str):
        raise bad_request(f"Invalid {name}")
    text = value.strip()
    if len(text) > NUMBER_TEXT_CHARS_MAX or _NUMBER.fullmatch(text) is None:
        raise bad_request(f"Invalid {name}")
    try:
        parsed = Decimal(text)
    except InvalidOperation as exc:
        raise bad_request(f"Invalid {name}") from exc
    if parsed and abs(parsed.adjusted()) > NUMBER_EXPONENT_MAX:  # zero is cheap at any exponent
        raise bad_request(f"Invalid {name}")
    return parsed
