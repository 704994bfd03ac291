"""The per-request pipeline every REST route shares, as one wrapper around a handler.

read body -> authenticate (if signed; required for private routes) -> rate limit -> merge
parameters -> check permission -> run the handler -> JSON with BitMEX's headers. Any
``ApiError`` becomes BitMEX's error body; ``Overloaded`` becomes 503 (handlers only let it
through for orders and amends). Anything else is a bug: it is logged and answered 500.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from perpetua.gateway.auth import Principal, check_permission, verify
from perpetua.gateway.errors import MSG_INVALID_KEY, MSG_OVERLOADED, ApiError, error_body
from perpetua.gateway.params import Params, parse_body, parse_query
from perpetua.gateway.ports import Overloaded
from perpetua.marketdata.wire import encode_json

if TYPE_CHECKING:
    from perpetua.gateway.state import Gateway

__all__ = ["Context", "Handler", "json_response", "route_endpoint"]

log = logging.getLogger("perpetua.gateway")


class Context:
    __slots__ = ("request", "params", "principal", "headers", "gw", "body")

    def __init__(self, request: Request, params: Params, principal: Principal | None,
                 headers: dict[str, str], gw: "Gateway", body: bytes) -> None:
        self.request = request
        self.params = params
        self.principal = principal
        self.headers = headers
        self.gw = gw
        self.body = body

    @property
    def account(self) -> int:
        if self.principal is None:
            raise ApiError(401, MSG_INVALID_KEY)
        return self.principal.account


Handler = Callable[[Context], Awaitable[Any]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None
                  ) -> Response:
    return Response(encode_json(data), status, headers, media_type="application/json")


def _raw_target(request: Request) -> str:
    scope = request.scope
    raw = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    target = raw.decode("latin-1")
    if query:
        target += "?" + query.decode("latin-1")
    return target


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "0.0.0.0"


async def authenticate(gw: "Gateway", request: Request, body: bytes) -> Principal | None:
    headers = request.headers
    key_id = headers.get("api-key")
    if not key_id:
        return None
    expires = headers.get("api-expires") or headers.get("api-nonce")
    signature = headers.get("api-signature")
    if not expires or not signature:
        raise ApiError(401, "Missing api-expires or api-signature header")
    message = (request.method, _raw_target(request), body)
    return await verify(gw.keys, key_id, expires, signature, message, client_ip(request))


def route_endpoint(gw: "Gateway", handler: Handler, *, private: bool,
                   permission: str | None = None, order_layer: bool = False,
                   cost: Callable[[Params], int] | None = None
                   ) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        headers: dict[str, str] = {}
        try:
            body = await request.body()
            principal = await authenticate(gw, request, body)
            if private and principal is None:
                raise ApiError(401, MSG_INVALID_KEY)
            values = parse_query(request.url.query)
            values.update(parse_body(body, request.headers.get("content-type", "")))
            params = Params(values)
            key = f"a:{principal.account}" if principal else f"ip:{client_ip(request)}"
            gw.limits.charge(key, principal is not None, cost(params) if cost else 1,
                             order_layer and principal is not None, headers)
            if permission is not None and principal is not None:
                check_permission(principal, permission)
            result = await handler(Context(request, params, principal, headers, gw, body))
        except ApiError as exc:
            headers.update(exc.headers)
            return json_response(error_body(exc.message, exc.name), exc.status, headers)
        except Overloaded:
            return json_response(error_body(MSG_OVERLOADED), 503, headers)
        except Exception:  # a bug: never the client's fault, never silent
            log.exception("unhandled error on %s %s", request.method, request.url.path)
            return json_response(error_body("Server Error"), 500, headers)
        if isinstance(result, Response):
            result.headers.update(headers)
            return result
        return json_response(result, 200, headers)

    return endpoint
