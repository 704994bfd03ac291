"""The unit of public change: one table's action for one symbol, as WebSocket data rows."""

from typing import Any, NamedTuple

__all__ = ["Delta"]


class Delta(NamedTuple):
    """``action`` is insert | update | delete; ``symbol`` is "" for symbol-less tables."""

    table: str
    symbol: str
    action: str
    rows: list[dict[str, Any]]
