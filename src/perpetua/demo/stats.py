"""``DemoStats``: counts what the durable event stream shows (trades per market, funding times,
liquidations, by account too, index prints), for the demo's status line and its summary at
exit: the exchange's own record, never what a bot believes happened to it.

Subscribed to the sequencer (``subscribe``), so it runs on the committer thread: it only
increments counters. Readers take a consistent copy with ``snapshot()``.
"""

import threading
from collections.abc import Callable, Sequence
from typing import Any

from perpetua.core.commands import Command
from perpetua.core.events import Event, Funding, IndexUpdated, PositionLiquidated, Trade

__all__ = ["DemoStats"]


class DemoStats:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seq = 0
        self.ts_ns = 0
        self.trades: dict[str, int] = {}
        self.funding_events = 0
        self.liquidations = 0
        self.liquidated: dict[int, int] = {}  # account -> positions the engine took over
        self.index_prints = 0
        self.last_index: dict[str, tuple[int, int]] = {}

    def on_command(self, seq: int, ts_ns: int, command: Command, events: Sequence[Event]) -> None:
        with self._lock:
            self.seq = seq
            self.ts_ns = max(self.ts_ns, ts_ns)
            for event in events:
                count = _COUNTS.get(type(event))
                if count is not None:
                    count(self, event)

    def _trade(self, event: Trade) -> None:
        self.trades[event.symbol] = self.trades.get(event.symbol, 0) + 1

    def _funding(self, event: Funding) -> None:
        self.funding_events += 1

    def _liquidated(self, event: PositionLiquidated) -> None:
        self.liquidations += 1
        self.liquidated[event.account] = self.liquidated.get(event.account, 0) + 1

    def _index(self, event: IndexUpdated) -> None:
        self.index_prints += 1
        self.last_index[event.symbol] = (event.price_num, event.price_den)

    def liquidations_of(self, accounts: Sequence[int]) -> int:
        """How many positions of ``accounts`` the liquidation engine took over."""
        with self._lock:
            return sum(self.liquidated.get(account, 0) for account in accounts)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "seq": self.seq,
                "ts_ns": self.ts_ns,
                "trades": dict(sorted(self.trades.items())),
                "trades_total": sum(self.trades.values()),
                "funding_events": self.funding_events,
                "liquidations": self.liquidations,
                "index_prints": self.index_prints,
            }


# One entry per event kind the statistics count (the others count nothing).
_COUNTS: dict[type, Callable[[DemoStats, Any], None]] = {
    Trade: DemoStats._trade,
    Funding: DemoStats._funding,
    PositionLiquidated: DemoStats._liquidated,
    IndexUpdated: DemoStats._index,
}
