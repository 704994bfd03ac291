"""The unit of public change: one table's action for one symbol, as WebSocket data rows.

Invariants
    - ``action`` is insert | update | delete; ``symbol`` is "" for symbol-less tables.
    - `PendingDeltas` keeps one command's deltas in the order their rows were added, merging a
      row into the last delta only when table, symbol and action are all the same, so a
      client applying them in order sees each row's change in event order.
"""

from typing import Any, NamedTuple

from perpetua.wire.values import JsonRow

__all__ = ["Delta", "PendingDeltas"]


class Delta(NamedTuple):
    """``action`` is insert | update | delete; ``symbol`` is "" for symbol-less tables."""

    table: str
    symbol: str
    action: str
    rows: list[JsonRow]


class PendingDeltas:
    """Deltas of one command, merged as they are appended."""

    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out: list[Delta] = []

    def add(self, table: str, symbol: str, action: str, row: dict[str, Any]) -> None:
        last = self.out[-1] if self.out else None
        if (
            last is not None
            and last.table == table
            and last.symbol == symbol
            and (last.action == action)
        ):
            last.rows.append(row)
        else:
            self.out.append(Delta(table, symbol, action, [row]))
