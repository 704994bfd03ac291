"""The per-request pipeline every REST route shares, as one wrapper around a handler.

read body -> authenticate (if signed; required for private routes) -> rate limit -> merge
parameters -> check permission -> run the handler -> JSON with BitMEX's headers. Any
``ApiError`` becomes BitMEX's error body; ``Overloaded`` becomes 503 (handlers only let it
through for orders and amends), and so does ``SequencerStopped`` (a cluster with no leader for a
moment, or one that died with the request in flight: the message says which). Anything else is
a bug: it is logged and answered 500.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope

from perpetua.gateway.auth import PERMISSION_WITHDRAW, Principal, check_permission, verify
from perpetua.gateway.errors import MSG_INVALID_KEY, MSG_OVERLOADED, ApiError, error_body
from perpetua.gateway.params import BODY_BYTES_MAX, Params, parse_body, parse_query
from perpetua.gateway.ports import Overloaded
from perpetua.gateway.ratelimit import address_key
from perpetua.gateway.sessions import session_principal
from perpetua.gateway.surface import GatewaySurface
from perpetua.sequencer import SequencerStopped
from perpetua.services.compliance import AccessGate, ComplianceError
from perpetua.wire.values import encode_json

__all__ = ["Context", "Endpoint", "Handler", "check_access", "json_response", "route_endpoint"]

log = logging.getLogger("perpetua.gateway")


class Context:
    __slots__ = ("scope", "params", "principal", "headers", "gw", "body")

    def __init__(
        self,
        scope: Scope,
        params: Params,
        principal: Principal | None,
        headers: dict[str, str],
        gw: GatewaySurface,
        body: bytes,
    ) -> None:
        self.scope = scope
        self.params = params
        self.principal = principal
        self.headers = headers
        self.gw = gw
        self.body = body

    @property
    def request(self) -> Request:
        """The Starlette request (built on demand: most routes never need it)."""
        return Request(self.scope)

    @property
    def account(self) -> int:
        if self.principal is None:
            raise ApiError(401, MSG_INVALID_KEY)
        return self.principal.account


Handler = Callable[[Context], Awaitable[Any]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encode_json(data), status, headers, media_type="application/json")


def _raw_target(scope: Scope) -> str:
    raw = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string") or b""
    target: str = raw.decode("latin-1")
    if query:
        target += "?" + query.decode("latin-1")
    return target


def client_ip(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "0.0.0.0"


async def read_body(receive: Receive, limit: int = BODY_BYTES_MAX) -> bytes:
    """The request body from the ASGI ``receive`` (``limit`` is checked by the caller)."""
    message = await receive()
    body: bytes = message.get("body", b"")
    if not message.get("more_body"):
        return body
    chunks = [body]
    size = len(body)
    while message.get("more_body") and size <= limit:
        message = await receive()
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


_AUTH_HEADERS = frozenset(
    {b"api-key", b"api-expires", b"api-nonce", b"api-signature", b"content-type"}
)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    """The few request headers the pipeline reads, in one pass over the raw list."""
    return {name: value for name, value in scope["headers"] if name in _AUTH_HEADERS}


async def authenticate(
    gw: GatewaySurface, scope: Scope, body: bytes, headers: dict[bytes, bytes] | None = None
) -> Principal | None:
    raw = headers if headers is not None else _headers(scope)
    key_id = raw.get(b"api-key")
    if not key_id:  # a browser session, if the request has its cookie (gateway.sessions)
        return await session_principal(gw.identity, scope)
    ip = client_ip(scope)
    gw.auth_failures.check(ip)  # 429 once this address failed too often: no HMAC work
    expires = raw.get(b"api-expires")
    nonce = raw.get(b"api-nonce") if not expires else None
    signature = raw.get(b"api-signature")
    if not (expires or nonce) or not signature:
        gw.auth_failures.record(ip)
        raise ApiError(401, "Missing api-expires or api-signature header")
    message = (scope["method"], _raw_target(scope), body)
    try:
        return await verify(
            gw.keys,
            key_id.decode("latin-1"),
            (expires or nonce or b"").decode("latin-1"),
            signature.decode("latin-1"),
            message,
            ip,
            gw.nonces if nonce else None,
        )
    except ApiError:
        gw.auth_failures.record(ip)
        raise


class Endpoint:
    """One route's pipeline around its handler. ``answer(request)`` gives (status, JSON body,
    headers) for the gateway's direct dispatch; calling it gives a Starlette ``Response``."""

    __slots__ = (
        "gw",
        "handler",
        "private",
        "permission",
        "order_layer",
        "cost",
        "body_bytes_max",
        "raw_body",
    )

    def __init__(
        self,
        gw: GatewaySurface,
        handler: Handler,
        private: bool,
        permission: str | None,
        order_layer: bool,
        cost: Callable[[Params], int] | None,
        body_bytes_max: int = BODY_BYTES_MAX,
        raw_body: bool = False,
    ) -> None:
        self.gw = gw
        self.body_bytes_max = body_bytes_max
        self.raw_body = raw_body
        self.handler = handler
        self.private = private
        self.permission = permission
        self.order_layer = order_layer
        self.cost = cost

    async def __call__(self, request: Request) -> Response:
        status, body, headers = await self.answer(request.scope, request.receive)
        return Response(body, status, headers, media_type="application/json")

    async def answer(self, scope: Scope, receive: Receive) -> tuple[int, bytes, dict[str, str]]:
        gw = self.gw
        headers: dict[str, str] = {}
        try:
            body = await read_body(receive, self.body_bytes_max)
            if len(body) > self.body_bytes_max:  # before any signature work on it
                raise ApiError(413, "Request body too large")
            raw = _headers(scope)
            principal = await authenticate(gw, scope, body, raw)
            if self.private and principal is None:
                raise ApiError(401, MSG_INVALID_KEY)
            query = scope.get("query_string")
            values = parse_query(query.decode("latin-1")) if query else {}
            if body and not self.raw_body:
                content_type = raw.get(b"content-type", b"").decode("latin-1")
                values.update(parse_body(body, content_type))
            params = Params(values)
            if gw.limits.config.enabled:
                key = (
                    f"a:{principal.account}" if principal else f"ip:{address_key(client_ip(scope))}"
                )
                gw.limits.charge(
                    key,
                    principal is not None,
                    self.cost(params) if self.cost else 1,
                    self.order_layer and principal is not None,
                    headers,
                )
            if self.permission is not None and principal is not None:
                check_permission(principal, self.permission)
            withdrawal = self.permission == PERMISSION_WITHDRAW
            gate = gw.compliance
            if (
                (withdrawal or (self.order_layer and _adds_exposure(scope)))
                and principal is not None
                and gate is not None
            ):
                action = "withdrawal" if withdrawal else "order"
                await check_access(gate, client_ip(scope), principal.account, action)
            result = await self.handler(Context(scope, params, principal, headers, gw, body))
        except ApiError as exc:
            headers.update(exc.headers)
            return exc.status, encode_json(error_body(exc.message, exc.name)), headers
        except Overloaded:
            return 503, encode_json(error_body(MSG_OVERLOADED)), headers
        except SequencerStopped as exc:  # cluster: no leader now, or it died mid-request
            return 503, encode_json(error_body(str(exc))), headers
        except Exception:  # a bug: never the client's fault, never silent
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            return 500, encode_json(error_body("Server Error")), headers
        return 200, encode_json(result), headers


# Order-layer requests that only reduce risk: never refused for the caller's location.
_RISK_REDUCING_PATHS = frozenset({"/api/v1/order/closePosition", "/api/v1/order/cancelAllAfter"})


def _adds_exposure(scope: Scope) -> bool:
    return scope["method"] != "DELETE" and scope["path"] not in _RISK_REDUCING_PATHS


async def check_access(gate: AccessGate, ip: str, account: int | None, action: str) -> None:
    """403 in BitMEX's shape for a request from a restricted location (services.compliance)."""
    try:
        await gate.check_access(ip, account, action)
    except ComplianceError as error:
        raise ApiError(error.status, error.message) from None


def route_endpoint(
    gw: GatewaySurface,
    handler: Handler,
    *,
    private: bool,
    permission: str | None = None,
    order_layer: bool = False,
    cost: Callable[[Params], int] | None = None,
    body_bytes_max: int = BODY_BYTES_MAX,
    raw_body: bool = False,
) -> Endpoint:
    return Endpoint(gw, handler, private, permission, order_layer, cost, body_bytes_max, raw_body)
