"""``create_app(config, sequencer, history, accounts)``: the Starlette ASGI application.

Routes: BitMEX REST under ``/api/v1`` (see ``routes``), the explorer (``/api/explorer`` and
``/api/explorer/swagger.json``), WebSockets at ``/realtime``, ``/realtimePlatform`` and
``/realtimemd``. Unknown routes and wrong verbs answer in BitMEX's error shape.
"""

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from perpetua.gateway.config import GatewayConfig
from perpetua.gateway.context import Endpoint, json_response
from perpetua.gateway.errors import MSG_NOT_FOUND, error_body
from perpetua.gateway.explorer import EXPLORER_HTML, swagger_document
from perpetua.gateway.history import History
from perpetua.gateway.ports import (
    AccountsPort,
    BotsPort,
    CommandPort,
    CopyPort,
    CostPorts,
    IndexBoardPort,
    ProofsPort,
)
from perpetua.gateway.routes import api_endpoints, api_routes
from perpetua.gateway.routes.porl import serve_proof_file
from perpetua.gateway.state import Gateway
from perpetua.gateway.ws.endpoint import ConnectionLimiter, serve_realtime
from perpetua.gateway.ws.multiplex import serve_multiplexed
from perpetua.sequencer.seed import EngineSeed
from perpetua.services.compliance import CompliancePort
from perpetua.services.identity import IdentityPort
from perpetua.services.jobs import Background, BackgroundService
from perpetua.services.notifications import Notifications
from perpetua.services.wallets import Wallets
from perpetua.web import web_routes

__all__ = ["create_app"]

log = logging.getLogger("perpetua.gateway")


def create_app(
    config: GatewayConfig,
    sequencer: CommandPort,
    history: History,
    accounts: AccountsPort | None = None,
    seed: EngineSeed | None = None,
    indices: IndexBoardPort | None = None,
    identity: IdentityPort | None = None,
    background: Sequence[BackgroundService] = (),
    proofs: ProofsPort | None = None,
    notifications: Notifications | None = None,
    costs: CostPorts | None = None,
    bots: BotsPort | None = None,
    compliance: CompliancePort | None = None,
    wallets: Wallets | None = None,
    copy: CopyPort | None = None,
) -> "DirectRoutes":
    """``history``: the read models (``gateway.history.History``: every history route reads
    them); ``seed``: the recovered engine's image (``sequencer.seed.engine_seed``), read before the
    sequencer started, or None for a new exchange; ``indices``: the index feeds' board (the
    constituents of ``instrument/compositeIndex``), none by default; ``identity``: sign-in,
    sessions and 2FA (``services.identity``), none: API keys only; ``background``: the venue's
    long-running services (``services.jobs``), started after the gateway and stopped before it,
    beside the gateway's own (margin calls, connected counts); ``proofs``: the published proofs
    of reserves and liabilities (``/porl/...``), or none; ``notifications``: where services
    tell traders things (``services.notifications``), the gateway's own by default;
    ``costs``: volume tiers, convert and on-ramp services (``ports.CostPorts``);
    ``bots``: users' trading bots (``services.bots``), none: the bot routes are not served;
    ``compliance``: KYC, jurisdiction and sanctions checks (``services.compliance``), none: off;
    ``wallets``: deposits and withdrawals on chain (``services.wallets``), or none;
    ``copy``: copy trading (``services.copytrading``), none: its routes are not served."""
    gw = Gateway(
        config,
        sequencer,
        history,
        accounts,
        indices,
        identity,
        proofs,
        notifications,
        costs,
        bots,
        compliance,
        wallets=wallets,
        copy=copy,
    )
    if seed is not None:
        gw.bootstrap(seed)
    limiter = ConnectionLimiter(config.ws_connections_per_hour)

    endpoints = api_endpoints(gw)

    async def swagger(request: Request) -> Response:
        host = config.public_host or request.headers.get("host", "127.0.0.1")
        return json_response(swagger_document(host, endpoints))

    async def explorer(request: Request) -> Response:
        return HTMLResponse(EXPLORER_HTML)

    async def porl_file(request: Request) -> Response:
        return await serve_proof_file(gw, request)

    async def realtime(websocket: WebSocket) -> None:
        await serve_realtime(gw, websocket, limiter)

    async def realtime_platform(websocket: WebSocket) -> None:
        await serve_realtime(gw, websocket, limiter, platform=True)

    async def realtime_md(websocket: WebSocket) -> None:
        await serve_multiplexed(gw, websocket, limiter)

    async def not_found(request: Request, exc: Exception) -> Response:
        status, detail = (
            (exc.status_code, exc.detail) if isinstance(exc, HTTPException) else (404, "")
        )
        message = (
            MSG_NOT_FOUND
            if status == 404
            else ("Method Not Allowed" if status == 405 else str(detail or "Error"))
        )
        return json_response(error_body(message), status)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return json_response(error_body("Server Error"), 500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gw.start()
        services = Background([*gw.jobs(), *background])
        services.start()
        try:
            yield
        finally:
            await services.stop()
            await gw.stop()

    routes: list[Route | WebSocketRoute] = [
        *api_routes(gw),
        Route("/api/explorer/swagger.json", swagger, methods=["GET"]),
        Route("/api/explorer", explorer, methods=["GET"]),
        Route("/api/explorer/", explorer, methods=["GET"]),
        Route("/porl/{height}/{name}", porl_file, methods=["GET"]),
        WebSocketRoute("/realtime", realtime),
        WebSocketRoute("/realtimePlatform", realtime_platform),
        WebSocketRoute("/realtimemd", realtime_md),
        *web_routes(),  # the web terminal at / (perpetua.web.static)
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: not_found,
            404: not_found,
            405: not_found,
            500: server_error,
        },
    )
    app.state.gateway = gw
    sockets = {
        "/realtime": realtime,
        "/realtimePlatform": realtime_platform,
        "/realtimemd": realtime_md,
    }
    return DirectRoutes(app, endpoints, sockets)


class DirectRoutes:
    """The API's exact paths and the WebSocket endpoints dispatched by one dict lookup,
    straight to their endpoint; every other request (the explorer, unknown paths and verbs,
    lifespan) goes through the Starlette app. Starlette's middleware stack and its
    route-by-route regex matching cost a third of the event loop's time per order (py-spy,
    docs/decisions.md §9), and its wrapped ``send`` would hide the WebSocket transport from
    the fan-out; the endpoints answer every error themselves, so nothing is lost."""

    def __init__(
        self,
        app: Starlette,
        endpoints: dict[str, dict[str, Endpoint]],
        sockets: Mapping[str, Callable[[WebSocket], Awaitable[None]]],
    ) -> None:
        self.app = app
        self.endpoints = endpoints
        self.sockets = sockets
        self.state = app.state
        self.router = app.router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            socket = self.sockets.get(scope["path"])
            if socket is not None:  # uvicorn's own send: sessions can reach the transport
                await socket(WebSocket(scope, receive, send))
                return
        elif scope["type"] == "http":
            methods = self.endpoints.get(scope["path"])
            if methods is not None:
                endpoint = methods.get(scope["method"])
                if endpoint is not None:
                    status, body, headers = await endpoint.answer(scope, receive)
                    raw = [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ]
                    raw.extend((k.encode(), v.encode()) for k, v in headers.items())
                    await send({"type": "http.response.start", "status": status, "headers": raw})
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)
