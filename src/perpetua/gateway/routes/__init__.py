"""REST routes, one module per BitMEX table family. ``api_routes`` lists them all."""

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from perpetua.gateway.context import Endpoint, route_endpoint
from perpetua.gateway.routes import (
    account,
    accounts,
    bots,
    convert,
    copy,
    execution,
    instrument,
    keys,
    kyc,
    market,
    onramp,
    operator,
    order,
    porl,
    position,
    public,
    restrictions,
    schema,
    staking,
    user,
    wallet,
)
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.surface import GatewaySurface

__all__ = ["API_PREFIX", "Spec", "api_endpoints", "api_routes"]

API_PREFIX = "/api/v1"


def api_endpoints(gw: GatewaySurface) -> dict[str, dict[str, Endpoint]]:
    """Full path -> verb -> endpoint, for the gateway's direct dispatch (``app``)."""
    table: dict[str, dict[str, Endpoint]] = {}
    for spec in _specs(gw):
        table.setdefault(API_PREFIX + spec.path, {})[spec.method] = route_endpoint(
            gw,
            spec.handler,
            private=spec.private,
            permission=spec.permission,
            order_layer=spec.order_layer,
            cost=spec.cost,
            body_bytes_max=spec.body_bytes_max,
            raw_body=spec.raw_body,
        )
    return table


def _specs(gw: GatewaySurface) -> list[Spec]:
    """Every route this gateway serves (those whose service it was built with)."""
    specs: list[Spec] = []
    for module in (
        instrument,
        market,
        public,
        schema,
        order,
        execution,
        position,
        user,
        staking,
        convert,
        onramp,
        account,
        accounts,
        keys,
        operator,
        restrictions,
        porl,
        bots,
        kyc,
        wallet,
        copy,
    ):
        specs.extend(spec for spec in module.SPECS if spec.served is None or spec.served(gw))
    return specs


def api_routes(gw: GatewaySurface) -> list[Route]:
    by_path: dict[str, dict[str, Spec]] = {}
    for spec in _specs(gw):
        by_path.setdefault(spec.path, {})[spec.method] = spec
    routes = []
    for path, methods in by_path.items():
        routes.append(Route(API_PREFIX + path, _dispatch(gw, methods), methods=list(methods)))
    return routes


def _dispatch(
    gw: GatewaySurface, methods: dict[str, Spec]
) -> Callable[[Request], Awaitable[Response]]:
    endpoints = {
        method: route_endpoint(
            gw,
            s.handler,
            private=s.private,
            permission=s.permission,
            order_layer=s.order_layer,
            cost=s.cost,
            body_bytes_max=s.body_bytes_max,
            raw_body=s.raw_body,
        )
        for method, s in methods.items()
    }

    async def endpoint(request: Request) -> Response:
        return await endpoints[request.method](request)

    return endpoint
