"""``Spec``: one REST route as data: path under /api/v1, verb, handler, pipeline options."""

from collections.abc import Callable
from typing import NamedTuple

from perpetua.gateway.context import Handler
from perpetua.gateway.params import Params

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
