"""A small BitMEX REST client for the demo's bots: HMAC-signed requests over one keep-alive
HTTP connection, exactly what an outside client sends (reference §5.1).

Standard library only (``http.client``), one connection per client, used from one thread.
Bodies are JSON; prices and quantities go as strings so nothing passes through ``float``.
Answers are decoded with ``Decimal`` for every non-integer number.

Errors, grouped by what the bot does (style rule 17):
- ``ApiRejected``: a 4xx answer (invalid order, insufficient margin, market closed): the bot
  changes what it asks for;
- ``ApiBusy``: 429 or 503 (rate limit, overload): wait ``retry_after_s`` and carry on;
- ``ApiUnavailable``: the connection failed or the server answered 5xx: retry later; the bot
  runner stops the bots when the exchange is shutting down.
"""

import http.client
import json
import time
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from perpetua.services.signing import signature

__all__ = ["ApiBusy", "ApiError", "ApiRejected", "ApiUnavailable", "RestClient"]

API_PREFIX = "/api/v1"
EXPIRES_S = 60
TIMEOUT_S = 10.0


class ApiError(Exception):
    def __init__(self, status: int, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.retry_after_s = retry_after_s


class ApiRejected(ApiError):
    """4xx: the request was understood and refused."""


class ApiBusy(ApiError):
    """429 or 503: back off for ``retry_after_s``."""


class ApiUnavailable(ApiError):
    """No answer, or a 5xx: retry later."""


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    return value


class RestClient:
    def __init__(
        self, host: str, port: int, key_id: str = "", secret: str = "", operator_key: str = ""
    ) -> None:
        self.host = host
        self.port = port
        self.key_id = key_id
        self.secret = secret
        self.operator_key = operator_key
        self._connection: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def get(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, query=query)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.request("POST", path, body=body)

    def delete(self, path: str, query: dict[str, Any] | None = None) -> Any:
        return self.request("DELETE", path, query=query)

    def request(
        self,
        verb: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        admin: bool = False,
    ) -> Any:
        target = API_PREFIX + path
        if query:
            target += "?" + urlencode(_encode(query))
        payload = json.dumps(_encode(body), separators=(",", ":")) if body is not None else ""
        headers = {"content-type": "application/json", "accept": "application/json"}
        if admin:
            headers["x-operator-key"] = self.operator_key
        elif self.key_id:
            expires = str(int(time.time()) + EXPIRES_S)
            headers["api-key"] = self.key_id
            headers["api-expires"] = expires
            headers["api-signature"] = signature(self.secret, verb, target, expires, payload)
        return self._send(verb, target, payload, headers)

    def _send(self, verb: str, target: str, payload: str, headers: dict[str, str]) -> Any:
        try:
            if self._connection is None:
                self._connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=TIMEOUT_S
                )
            self._connection.request(verb, target, body=payload.encode() or None, headers=headers)
            response = self._connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as error:
            self.close()
            raise ApiUnavailable(0, str(error)) from error
        status = response.status
        if status < 400:
            return json.loads(data, parse_float=Decimal) if data else None
        message = _error_message(data)
        retry = float(response.getheader("retry-after") or 1)
        if status in (429, 503):
            raise ApiBusy(status, message, retry)
        if status >= 500:
            raise ApiUnavailable(status, message)
        raise ApiRejected(status, message)


def _error_message(data: bytes) -> str:
    try:
        error = json.loads(data).get("error", {})
        return str(error.get("message", data[:200]))
    except (ValueError, AttributeError):
        return data[:200].decode("utf-8", "replace")
