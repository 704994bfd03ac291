"""``Spec``: one REST route as data: path under /api/v1, verb, handler, pipeline options.

A route whose service the venue was built without (``served`` answers False for the gateway) is
not served at all: it answers 404 like any unknown path and the served swagger does not list it,
so a client never sees an operation that can only fail.
"""

from collections.abc import Callable
from typing import NamedTuple

from perpetua.gateway.context import Handler
from perpetua.gateway.params import BODY_BYTES_MAX, Params
from perpetua.gateway.surface import GatewaySurface

__all__ = ["Spec"]


class Spec(NamedTuple):
    """One route: path under /api/v1, verb, handler and its pipeline options."""

    path: str
    method: str
    handler: Handler
    private: bool = False
    permission: str | None = None
    order_layer: bool = False
    cost: Callable[[Params], int] | None = None
    body_bytes_max: int = BODY_BYTES_MAX  # larger only for uploads
    raw_body: bool = False  # the handler reads ctx.body itself (multipart uploads)
    served: Callable[[GatewaySurface], bool] | None = None  # None: always served
