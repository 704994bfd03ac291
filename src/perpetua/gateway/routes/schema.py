"""/schema (models and their field types, from the served swagger) and /schema/websocketHelp."""

from typing import Any

from perpetua.gateway.context import Context
from perpetua.gateway.explorer import base_swagger
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.ws.topics import PRIVATE_TABLES, PUBLIC_TABLES, TABLE_KEYS

__all__ = ["SPECS", "websocket_help"]

_TYPES = {
    "string": "symbol",
    "number": "float",
    "integer": "long",
    "boolean": "boolean",
    "array": "any",
    "object": "any",
}


def websocket_help() -> dict[str, Any]:
    return {
        "info": "See https://www.bitmex.com/app/wsAPI and https://www.bitmex.com/explorer "
        "for more documentation.",
        "usage": 'Send a message in the format: {"op": string, "args": Array<string>}',
        "ops": ["authKey", "authKeyExpires", "cancelAllAfter", "subscribe", "unsubscribe"],
        "subscribe": 'To subscribe, send: {"op": "subscribe", "args": [subscriptionTopic, ...]}.',
        "subscriptionSubjects": {
            "authenticationRequired": sorted(PRIVATE_TABLES),
            "public": sorted(PUBLIC_TABLES - PRIVATE_TABLES),
        },
    }


def _model(definition: dict[str, Any], name: str) -> dict[str, Any]:
    types = {}
    for field, prop in definition.get("properties", {}).items():
        kind = prop.get("type", "any")
        types[field] = "timestamp" if prop.get("format") == "date-time" else _TYPES.get(kind, "any")
    table = name[0].lower() + name[1:]
    return {"keys": TABLE_KEYS.get(table, definition.get("required", [])), "types": types}


async def get_schema(ctx: Context) -> dict[str, Any]:
    definitions = base_swagger()["definitions"]
    model = ctx.params.string("model")
    names = [model] if model else list(definitions)
    return {name: _model(definitions[name], name) for name in names if name in definitions}


async def get_websocket_help(ctx: Context) -> dict[str, Any]:
    return websocket_help()


SPECS = [
    Spec("/schema", "GET", get_schema),
    Spec("/schema/websocketHelp", "GET", get_websocket_help),
]
