"""Proof of reserves and liabilities (BitMEX's ``Porl`` routes, docs/proof-of-reserves.md).

    GET  /porl/nonce            the signed-in account's own nonce (BitMEX's ``Porl`` model:
                                ``accountNonce`` for every proof, ``nonce`` the sub-nonce of the
                                latest proof of ``currency`` (default XBt), its ``balance`` in
                                it, the proof's ``total``, ``filename``, ``height``, ``created``)
    GET  /porl/snapshots        every published proof, one row per currency: height, currency,
                                time, root digest, total, download URLs
    POST /admin/porl/snapshot   the operator takes a snapshot now (optional ``height``)
    GET  /admin/porl/message    ``height``: the message reserve addresses sign for that proof,
                                and the cold addresses still waiting for an offline signature
    POST /admin/porl/signature  ``height``, ``address``, ``signature``: import a cold address's
                                offline EIP-191 signature (checked before it is kept)
    GET  /porl/<height>/<file>  the published files themselves (outside /api/v1, as BitMEX's
                                public data bucket), byte for byte

The nonce route answers only for the authenticated account: it takes no account parameter,
and one naming another account is refused (403). The calls into the proof service block
(file reads, the sequencer's snapshot), so they run in a worker thread.
"""

import asyncio
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from perpetua.core.units import CURRENCIES
from perpetua.gateway.context import Context, json_response
from perpetua.gateway.errors import (
    MSG_ACCESS_DENIED,
    MSG_NOT_FOUND,
    ApiError,
    bad_request,
    error_body,
)
from perpetua.gateway.ports import ProofsPort
from perpetua.gateway.routes.operator import require_operator
from perpetua.gateway.routes.spec import Spec
from perpetua.gateway.surface import GatewaySurface
from perpetua.sequencer import SequencerError

__all__ = ["FILE_PREFIX", "SPECS", "serve_proof_file"]

FILE_PREFIX: Final = "/porl"
MSG_NOT_PUBLISHED: Final = "Proof of reserves and liabilities is not published by this venue."
HEIGHT_MAX: Final = 2**64 - 1
_MEDIA: Final = {".csv": "text/csv; charset=us-ascii", ".json": "application/json"}


def _proofs(ctx: Context) -> ProofsPort:
    if ctx.gw.proofs is None:
        raise ApiError(404, MSG_NOT_PUBLISHED)
    return ctx.gw.proofs


def _currency(ctx: Context) -> str:
    text = ctx.params.string("currency", "XBt") or "XBt"
    for code, currency in CURRENCIES.items():
        if text.lower() in (code.lower(), currency.major.lower()):
            return code
    raise bad_request("Invalid currency")


async def get_nonce(ctx: Context) -> dict[str, Any]:
    account = ctx.account
    asked = ctx.params.integer("account")
    if asked is not None and asked != account:
        raise ApiError(403, MSG_ACCESS_DENIED)
    proofs = _proofs(ctx)
    return await asyncio.to_thread(proofs.nonce, account, _currency(ctx))


def _url(height: int, name: str | None) -> str | None:
    return None if name is None else f"{FILE_PREFIX}/{height}/{name}"


async def get_snapshots(ctx: Context) -> list[dict[str, Any]]:
    proofs = _proofs(ctx)
    manifests = await asyncio.to_thread(proofs.snapshots)
    rows = []
    for manifest in reversed(manifests):  # newest first
        height = int(manifest["height"])
        for row in manifest["liabilities"]:
            rows.append(
                {
                    "height": height,
                    "currency": row["currency"],
                    "timestamp": manifest["created"],
                    "seq": manifest["seq"],
                    "rootDigest": row["rootDigest"],
                    "total": row["total"],
                    "leafCount": row["leafCount"],
                    "negativeEquity": row["negativeEquity"],
                    "insuranceAccount": manifest["insuranceAccount"],
                    "insuranceNonce": manifest["insuranceNonce"],
                    "filename": row["filename"],
                    "downloadUrl": _url(height, row["filename"]),
                    "reservesUrl": _url(height, manifest["reserves"]),
                    "solvencyUrl": _url(height, manifest["solvency"]),
                }
            )
    return rows


async def post_snapshot(ctx: Context) -> dict[str, Any]:
    require_operator(ctx)
    height = ctx.params.integer("height")
    if height is not None and not 0 <= height <= HEIGHT_MAX:
        raise bad_request("Invalid height")
    proofs = _proofs(ctx)
    try:
        return await asyncio.to_thread(proofs.take_snapshot, height)
    except (ValueError, LookupError) as error:  # AlreadyPublished, a height the node lacks
        raise bad_request(str(error)) from None
    except (RuntimeError, TimeoutError, SequencerError) as error:  # node or sequencer: retry
        raise ApiError(503, f"Snapshot not taken: {error}") from None


def _height(ctx: Context) -> int:
    height = ctx.params.integer("height")
    if height is None or not 0 <= height <= HEIGHT_MAX:
        raise bad_request("Invalid height")
    return height


async def get_message(ctx: Context) -> dict[str, Any]:
    require_operator(ctx)
    height = _height(ctx)
    proofs = _proofs(ctx)
    try:
        return await asyncio.to_thread(proofs.reserve_message, height)
    except (ValueError, LookupError) as error:
        raise bad_request(str(error)) from None
    except RuntimeError as error:
        raise ApiError(503, f"Reserve node: {error}") from None


async def post_signature(ctx: Context) -> dict[str, Any]:
    require_operator(ctx)
    height = _height(ctx)
    address = ctx.params.required_string("address")
    signature = ctx.params.required_string("signature")
    proofs = _proofs(ctx)
    try:
        return await asyncio.to_thread(proofs.import_signature, height, address, signature)
    except (ValueError, LookupError) as error:
        raise bad_request(str(error)) from None
    except RuntimeError as error:
        raise ApiError(503, f"Reserve node: {error}") from None


async def serve_proof_file(gw: GatewaySurface, request: Request) -> Response:
    """A published file, or BitMEX's 404 (names are checked before any file is opened)."""
    proofs = gw.proofs
    height = str(request.path_params.get("height", ""))
    name = str(request.path_params.get("name", ""))
    path = None if proofs is None else await asyncio.to_thread(proofs.file, height, name)
    if path is None:
        return json_response(error_body(MSG_NOT_FOUND), 404)
    return FileResponse(path, media_type=_MEDIA.get(path.suffix, "application/octet-stream"))


SPECS = [
    Spec("/porl/nonce", "GET", get_nonce, private=True),
    Spec("/porl/snapshots", "GET", get_snapshots),
    Spec("/admin/porl/snapshot", "POST", post_snapshot),
    Spec("/admin/porl/message", "GET", get_message),
    Spec("/admin/porl/signature", "POST", post_signature),
]
