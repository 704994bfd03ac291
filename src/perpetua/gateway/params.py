"""Request parameters: query string, JSON body and form body merged into one mapping.

BitMEX clients send parameters as query strings (GET), JSON bodies (POST/PUT and DELETE) or
form bodies (bravado). Array- and object-typed parameters (``filter``, ``columns``, ``orderID``)
arrive either as JSON text or as real JSON values; ``json_value`` accepts both. Every parser
raises ``ApiError`` 400 on bad input, never anything else.
"""

from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

import msgspec

from perpetua.gateway.errors import ApiError, bad_request
from perpetua.marketdata.wire import decode_json, parse_iso_ns

__all__ = [
    "Params",
    "parse_body",
    "parse_query",
]

BODY_BYTES_MAX = 1_000_000  # a bulk of 100 orders is about 30 kB
TIME_NS_MAX = 2**63 - 1  # times are int64 ns since the epoch (until 2262)


def parse_query(query: str) -> dict[str, Any]:
    return dict(parse_qsl(query, keep_blank_values=True))


def parse_body(body: bytes, content_type: str) -> dict[str, Any]:
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
        value = decode_json(body)
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

    def has(self, name: str) -> bool:
        return self.raw(name) is not None

    def string(self, name: str, default: str | None = None) -> str | None:
        value = self.raw(name)
        if value is None:
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
        value = self.raw(name)
        if value is None:
            return default
        parsed = _as_decimal(value, name)
        if parsed != parsed.to_integral_value():
            raise bad_request(f"Invalid {name}")
        return int(parsed)

    def decimal(self, name: str) -> Decimal | None:
        value = self.raw(name)
        return None if value is None else _as_decimal(value, name)

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
                    return decode_json(text)
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


def _as_decimal(value: Any, name: str) -> Decimal:
    if isinstance(value, bool):
        raise bad_request(f"Invalid {name}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        value = repr(value)
    if not isinstance(value, str | Decimal):
        raise bad_request(f"Invalid {name}")
    try:
        parsed = Decimal(value)
    except InvalidOperation as exc:
        raise bad_request(f"Invalid {name}") from exc
    if not parsed.is_finite():
        raise bad_request(f"Invalid {name}")
    return parsed
