"""The served API document: BitMEX's swagger with our ``host``, the 2019 bulk order routes and
Perpetua's own routes (tags ``Admin``, ``Accounts``, ``Perpetua``), plus a minimal explorer page.

The document lists exactly the operations the gateway serves (``served_swagger``): a BitMEX
operation the venue does not serve is left out, and a route of ours without written docs still
appears, under the tag ``Perpetua``, so a client generated from the document finds nothing that
answers 404 and misses nothing that answers.
"""

import copy
import json
from collections.abc import Collection, Mapping
from functools import lru_cache
from importlib import resources
from typing import Any

__all__ = [
    "ADMIN_PATHS",
    "API_BASE_PATH",
    "EXPLORER_HTML",
    "base_swagger",
    "served_swagger",
    "swagger_document",
]

API_BASE_PATH = "/api/v1"
OUR_TAG = "Perpetua"
COSTS_TAG = "Trading costs"

_FORM = ["application/json", "application/x-www-form-urlencoded"]


def _operation(summary: str, params: list[dict[str, Any]], tag: str) -> dict[str, Any]:
    return {
        "tags": [tag],
        "summary": summary,
        "consumes": _FORM,
        "produces": ["application/json"],
        "parameters": params,
        "security": [],
        "responses": {
            "200": {"description": "OK", "schema": {"type": "object"}},
            "400": {"description": "Parameter Error", "schema": {"$ref": "#/definitions/Error"}},
            "401": {"description": "Unauthorized", "schema": {"$ref": "#/definitions/Error"}},
        },
    }


_OPERATOR_KEY: dict[str, Any] = {
    "name": "x-operator-key",
    "in": "header",
    "type": "string",
    "required": True,
}

ADMIN_PATHS: dict[str, Any] = {
    "/admin/faucet": {
        "post": _operation(
            "Testnet faucet: credit test funds to an account (operator key in x-operator-key).",
            [
                {"name": "x-operator-key", "in": "header", "type": "string", "required": True},
                {"name": "account", "in": "formData", "type": "integer", "required": True},
                {"name": "currency", "in": "formData", "type": "string", "required": True},
                {"name": "amount", "in": "formData", "type": "integer", "required": True},
            ],
            "Admin",
        )
    },
    "/admin/apiKey": {
        "post": _operation(
            "Create an API key for an account (operator key in x-operator-key).",
            [
                {"name": "x-operator-key", "in": "header", "type": "string", "required": True},
                {"name": "userId", "in": "formData", "type": "integer", "required": True},
                {"name": "permissions", "in": "formData", "type": "string", "required": False},
                {"name": "name", "in": "formData", "type": "string", "required": False},
            ],
            "Admin",
        )
    },
}


_OPERATOR_HEADER = {"name": "x-operator-key", "in": "header", "type": "string", "required": True}
_OPERATOR_KEY_PARAM: dict[str, Any] = {
    "name": "x-operator-key",
    "in": "header",
    "type": "string",
    "required": True,
}
ADMIN_PATHS["/admin/porl/snapshot"] = {
    "post": _operation(
        "Publish a proof of reserves and liabilities now (docs/proof-of-reserves.md); height: "
        "a reserve chain block at or below its tip (default: the tip, or the seq without one).",
        [
            _OPERATOR_KEY_PARAM,
            {"name": "height", "in": "formData", "type": "integer", "required": False},
        ],
        "Admin",
    )
}
ADMIN_PATHS["/admin/porl/message"] = {
    "get": _operation(
        "The message reserve addresses sign (EIP-191) for the proof at a height, and the cold "
        "addresses still waiting for an offline signature.",
        [
            _OPERATOR_KEY_PARAM,
            {"name": "height", "in": "query", "type": "integer", "required": True},
        ],
        "Admin",
    )
}
ADMIN_PATHS["/admin/porl/signature"] = {
    "post": _operation(
        "Import a cold reserve address's offline signature of the message for a height.",
        [_OPERATOR_KEY_PARAM,
         {"name": "height", "in": "formData", "type": "integer", "required": True},
         {"name": "address", "in": "formData", "type": "string", "required": True},
         {"name": "signature", "in": "formData", "type": "string", "required": True}],
        "Admin",
    )
}  # fmt: skip
ADMIN_PATHS["/admin/announcement"] = {
    "post": _operation(
        "Publish a site announcement (GET /announcement; urgent ones also /announcement/urgent); "
        "its id is the publishing command's seq.",
        [
            _OPERATOR_HEADER,
            {"name": "title", "in": "formData", "type": "string", "required": True},
            {"name": "content", "in": "formData", "type": "string", "required": False},
            {"name": "link", "in": "formData", "type": "string", "required": False},
            {"name": "urgent", "in": "formData", "type": "boolean", "required": False},
        ],
        "Admin",
    ),
    "delete": _operation(
        "Take an announcement down.",
        [_OPERATOR_HEADER, {"name": "id", "in": "formData", "type": "integer", "required": True}],
        "Admin",
    ),
}


def _hourly_quote_value_rows(document: dict[str, Any]) -> None:
    """BitMEX's document names one ``QuoteValueRatio`` for ``/user/quoteValueRatio``; the
    statistic is hourly over three days, and the venue answers the rows (docs/fidelity.md)."""
    operation = document["paths"].get("/user/quoteValueRatio", {}).get("get")
    if operation is not None:
        operation["responses"]["200"]["schema"] = {
            "type": "array",
            "items": {"$ref": "#/definitions/QuoteValueRatio"},
        }


def _account_docs() -> list[tuple[str, str, str, list[tuple[str, str, bool]]]]:
    from perpetua.gateway.routes.accounts import ACCOUNT_DOCS
    from perpetua.gateway.routes.keys import KEY_DOCS
    from perpetua.gateway.routes.kyc import KYC_DOCS
    from perpetua.gateway.routes.restrictions import RESTRICTION_DOCS

    return ACCOUNT_DOCS + KEY_DOCS + RESTRICTION_DOCS + KYC_DOCS


def _cost_docs() -> list[tuple[str, str, str, list[tuple[str, str, bool]]]]:
    from perpetua.gateway.routes.convert import CONVERT_DOCS
    from perpetua.gateway.routes.onramp import ONRAMP_DOCS
    from perpetua.gateway.routes.staking import STAKING_DOCS

    return STAKING_DOCS + CONVERT_DOCS + ONRAMP_DOCS


def _own_docs() -> list[tuple[str, str, list[tuple[str, str, str, list[tuple[str, str, bool]]]]]]:
    """Perpetua's own route groups beyond accounts: (tag, description, docs)."""
    from perpetua.gateway.routes.bots import BOT_DOCS
    from perpetua.gateway.routes.copy import COPY_DOCS

    return [
        (
            "Bots",
            "Perpetua's trading bots (spot grid, futures grid, DCA) and their backtests.",
            BOT_DOCS,
        ),
        (
            "Copy trading",
            "Perpetua's copy trading: lead traders' profiles and track records, copy"
            " relationships (BitMEX's /leaderboard is under Leaderboard).",
            COPY_DOCS,
        ),
    ]


@lru_cache(maxsize=1)
def base_swagger() -> dict[str, Any]:
    package = resources.files("perpetua.gateway") / "swagger"
    document: dict[str, Any] = json.loads((package / "bitmex-swagger.json").read_text("utf-8"))
    bulk = json.loads((package / "bulk-2019.json").read_text("utf-8"))
    document["paths"].update(bulk["paths"])
    document["paths"].update(ADMIN_PATHS)
    _hourly_quote_value_rows(document)
    for path, verb, summary, rows in _account_docs():
        params = [
            {"name": name, "in": "formData", "type": kind, "required": required}
            for name, kind, required in rows
        ]
        tag = "Admin" if path.startswith("/admin/") else "Accounts"
        if path.startswith("/admin/"):
            params.insert(0, dict(_OPERATOR_KEY))
        document["paths"].setdefault(path, {})[verb] = _operation(summary, params, tag)
    for path, verb, summary, rows in _cost_docs():
        params = [
            {"name": name, "in": "formData", "type": kind, "required": required}
            for name, kind, required in rows
        ]
        document["paths"].setdefault(path, {})[verb] = _operation(summary, params, COSTS_TAG)
    for tag, _, docs in _own_docs():
        for path, verb, summary, rows in docs:
            params = [
                {"name": name, "in": "formData", "type": kind, "required": required}
                for name, kind, required in rows
            ]
            document["paths"].setdefault(path, {})[verb] = _operation(summary, params, tag)
    document.setdefault("tags", []).append(
        {"name": "Admin", "description": "The operator's routes (x-operator-key)."}
    )
    document["tags"].append(
        {
            "name": COSTS_TAG,
            "description": "Perpetua's own trading-cost routes: staking, convert, buy crypto "
            "(docs/trading-costs.md).",
        }
    )
    document["tags"].append(
        {
            "name": "Accounts",
            "description": "Perpetua's own account routes: sign-up, sign-in, "
            "sessions, password and email, TOTP, audit trail.",
        }
    )
    for tag, description, _ in _own_docs():
        document["tags"].append({"name": tag, "description": description})
    document["info"]["title"] = "Perpetua (BitMEX-compatible API)"
    return document


def served_swagger(served: Mapping[str, Collection[str]]) -> dict[str, Any]:
    """The base document cut to ``served`` (full path -> verbs, as the gateway dispatches)."""
    base = base_swagger()
    paths: dict[str, dict[str, Any]] = {}
    for full_path, verbs in sorted(served.items()):
        if not full_path.startswith(API_BASE_PATH):
            continue
        path = full_path[len(API_BASE_PATH) :]
        documented = base["paths"].get(path, {})
        for verb in sorted(v.lower() for v in verbs):
            operation = documented.get(verb) or _operation(f"{verb.upper()} {path}", [], OUR_TAG)
            paths.setdefault(path, {})[verb] = operation
    document = copy.copy(base)
    document["paths"] = paths
    used = {tag for ops in paths.values() for op in ops.values() for tag in op.get("tags", ())}
    tags = [t for t in base.get("tags", []) if t["name"] in used]
    if OUR_TAG in used:
        tags.append({"name": OUR_TAG, "description": "Perpetua's own routes."})
    document["tags"] = tags
    return document


def swagger_document(host: str, served: Mapping[str, Collection[str]]) -> dict[str, Any]:
    document = copy.copy(served_swagger(served))
    document["host"] = host
    document["schemes"] = ["http", "https"]
    return document


EXPLORER_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>Perpetua API explorer</title>
<style>body{font-family:sans-serif;margin:2em;max-width:70em}code{background:#eee}
li{margin:.2em 0}</style></head>
<body><h1>Perpetua API explorer</h1>
<p>BitMEX-compatible REST API under <code>/api/v1</code>; WebSocket at <code>/realtime</code>.
The machine-readable document is <a href="/api/explorer/swagger.json">swagger.json</a>.</p>
<ul id="ops"></ul>
<script>
fetch('/api/explorer/swagger.json').then(r => r.json()).then(doc => {
  const ul = document.getElementById('ops');
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [verb, op] of Object.entries(ops)) {
      const li = document.createElement('li');
      li.innerHTML = '<code>' + verb.toUpperCase() + ' ' + doc.basePath + path + '</code> ' +
        (op.summary || '');
      ul.appendChild(li);
    }
  }
});
</script></body></html>
"""
