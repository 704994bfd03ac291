"""What the venue tells traders on its own: notices derived from the event stream, margin calls
from a periodic check, and the ``connected`` counts (reference §6.4).

Invariants:
1. Event notices (``EventNotices.fold``, called for each command before the views fold it, so
   an instrument's previous state is still known):
   - ``PositionLiquidated`` -> the account, ``error``; ``Deleveraged`` -> the account, ``error``;
   - ``WithdrawalUpdated`` -> the account: Pending ``info``, Completed ``success``, Canceled
     ``info``;
   - a future listed (``ListFuture``) -> everyone, ``success``; a market going to Closed from
     another state (a halt, or its trading hours ending) -> everyone, ``info``; Closed back to
     Open -> everyone, ``info``; ``Settled`` -> everyone, ``info``, with the price.
2. Margin calls (``MarginCalls.check``, a ``PeriodicJob`` every ``MARGIN_CALL_INTERVAL_S``): a
   position's *margin level* is its maintenance margin over the equity that backs it: an
   isolated position ``posMaint / (posMargin + unrealisedPnl)``; cross positions together, per
   settlement currency, ``sum(posMaint) / (marginBalance - the isolated positions' equity)``.
   Liquidation comes at 100%. A call goes out when the level reaches
   ``MARGIN_CALL_LEVEL_PCT`` and not again until it has fallen below
   ``MARGIN_CALL_REARM_PCT`` (or the position closed): one call per approach, not one a second.
3. ``connected_counts``: ``bots`` are the distinct accounts with a WebSocket signed in by API
   key; ``users`` are the distinct accounts signed in by a browser session plus the anonymous
   sockets (each a viewer).
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

from perpetua.core.commands import Command, ListFuture
from perpetua.core.events import (
    Deleveraged,
    Event,
    InstrumentStateChanged,
    PositionLiquidated,
    Settled,
    WithdrawalUpdated,
)
from perpetua.core.units import CURRENCIES, PRICE_FINE_PER_TICK
from perpetua.gateway.ws.fanout import Session
from perpetua.marketdata.hub import MarketData
from perpetua.services.notifications import Kind, NotificationSink
from perpetua.wire.values import price, rational

__all__ = [
    "MARGIN_CALL_INTERVAL_S",
    "MARGIN_CALL_LEVEL_PCT",
    "MARGIN_CALL_REARM_PCT",
    "EventNotices",
    "MarginCalls",
    "connected_counts",
]

MARGIN_CALL_INTERVAL_S: Final = 1.0
MARGIN_CALL_LEVEL_PCT: Final = 80  # maintenance margin at 80% of the backing equity
MARGIN_CALL_REARM_PCT: Final = 70
_SESSION_KEY_ID: Final = "session"  # gateway.sessions: a browser session's principal
_WITHDRAWAL_KINDS: Final[dict[str, Kind]] = {
    "Pending": "info",
    "Completed": "success",
    "Canceled": "info",
}


def _major(amount: int, currency: str) -> str:
    found = CURRENCIES.get(currency)
    if found is None:
        return f"{amount} {currency}"
    whole = f"{amount / found.minor_per_major:.{found.scale}f}".rstrip("0").rstrip(".")
    return f"{whole} {found.major}"


class EventNotices:
    def __init__(self, market: MarketData, sink: NotificationSink) -> None:
        self.market = market
        self.sink = sink

    def _price(self, symbol: str, ticks: int) -> str:
        spec = self.market.specs.get(symbol)
        return str(price(spec, ticks)) if spec is not None else str(ticks)

    def fold(self, command: Command, events: Sequence[Event]) -> None:
        """Each event through its entry in ``_NOTICES`` (kinds without one notify nobody)."""
        listing = type(command) is ListFuture
        notices = _NOTICES
        for event in events:
            notice = notices.get(type(event))
            if notice is not None:
                notice(self, event, listing)

    def _liquidated(self, event: PositionLiquidated, _listing: bool) -> None:
        self.sink.notify(
            event.account,
            f"{event.symbol} position liquidated",
            f"Your {event.symbol} position of {abs(event.qty)} was taken over by the "
            f"liquidation engine at {self._price(event.symbol, event.price)}.",
            "error",
            event.ts_ns,
        )

    def _deleveraged(self, event: Deleveraged, _listing: bool) -> None:
        self.sink.notify(
            event.account,
            f"{event.symbol} position auto-deleveraged",
            f"{abs(event.qty)} of your {event.symbol} position was closed by "
            f"auto-deleveraging at {self._price(event.symbol, event.price)}; "
            "your open orders on it were canceled.",
            "error",
            event.ts_ns,
        )

    def _withdrawal(self, event: WithdrawalUpdated, _listing: bool) -> None:
        self.sink.notify(
            event.account,
            f"Withdrawal {event.status.lower()}",
            f"Your withdrawal {event.withdrawal_id} of "
            f"{_major(event.amount, event.currency)} is {event.status}.",
            _WITHDRAWAL_KINDS.get(event.status, "info"),
            event.ts_ns,
        )

    def _settled(self, event: Settled, _listing: bool) -> None:
        spec = self.market.specs.get(event.symbol)
        settled = (
            rational(event.price_fine * spec.tick_num, spec.tick_den * PRICE_FINE_PER_TICK)
            if spec is not None
            else None
        )
        self.sink.broadcast(
            f"{event.symbol} settled", f"{event.symbol} settled at {settled}.", "info", event.ts_ns
        )

    def _state(self, event: InstrumentStateChanged, listing: bool) -> None:
        symbol, state = event.symbol, event.state
        stats = self.market.stats.get(symbol)
        before = stats.state if stats is not None else None
        if listing:
            self.sink.broadcast(
                f"New listing: {symbol}",
                f"{symbol} is listed ({state}).",
                "success",
                event.ts_ns,
            )
        elif state == "Closed" and before != "Closed":
            self.sink.broadcast(
                f"{symbol} halted", f"Trading in {symbol} is halted (Closed).", "info", event.ts_ns
            )
        elif state == "Open" and before == "Closed":
            self.sink.broadcast(
                f"{symbol} open", f"Trading in {symbol} is open again.", "info", event.ts_ns
            )


# One entry per event kind that notifies someone (invariant 1); (notices, event, listing).
_NOTICES: Final[dict[type, Callable[[EventNotices, Any, bool], None]]] = {
    PositionLiquidated: EventNotices._liquidated,
    Deleveraged: EventNotices._deleveraged,
    WithdrawalUpdated: EventNotices._withdrawal,
    InstrumentStateChanged: EventNotices._state,
    Settled: EventNotices._settled,
}


class MarginCalls:
    """Contract: the module docstring, 2."""

    def __init__(self, views: Any, sink: NotificationSink) -> None:
        self.views = views  # gateway.private.PrivateViews (its rows read as numbers here)
        self.sink = sink
        self.called: set[tuple[int, str]] = set()  # (account, symbol or "cross:" + currency)

    def levels(self, account: int) -> dict[str, tuple[int, int]]:
        """Margin level inputs ``{symbol or "cross:" + currency: (maintenance, equity)}``."""
        views = self.views
        out: dict[str, tuple[int, int]] = {}
        cross: dict[str, list[int]] = {}
        for symbol, event in views.positions.get(account, {}).items():
            spec = views.specs.get(symbol)
            if spec is None or not event.current_qty or not spec.is_derivative:
                continue
            row = views.position_row(account, symbol)
            currency = spec.settl_currency
            totals = cross.setdefault(currency, [0, 0])  # cross maint, isolated equity
            if row["crossMargin"]:
                totals[0] += row["posMaint"]
            else:
                out[symbol] = (row["posMaint"], row["maintMargin"])
                totals[1] += row["maintMargin"]
        for currency, (maint, isolated_equity) in cross.items():
            if maint:
                balance = views.margin_row(account, currency)["marginBalance"]
                out["cross:" + currency] = (maint, balance - isolated_equity)
        return out

    async def check(self) -> None:
        still: set[tuple[int, str]] = set()
        for account in sorted(self.views.positions):
            if account <= 0:
                continue
            for name, (maint, equity) in self.levels(account).items():
                key = (account, name)
                reached = maint * 100 >= MARGIN_CALL_LEVEL_PCT * equity
                rearmed = maint * 100 < MARGIN_CALL_REARM_PCT * equity
                if key in self.called and not rearmed:
                    still.add(key)
                elif key not in self.called and reached:
                    still.add(key)
                    self._call(account, name, maint, equity)
        self.called = still

    def _call(self, account: int, name: str, maint: int, equity: int) -> None:
        level = maint * 100 // equity if equity > 0 else 100
        what = (
            f"your cross-margined positions in {name[len('cross:') :]}"
            if name.startswith("cross:")
            else f"your {name} position"
        )
        self.sink.notify(
            account,
            "Margin call",
            f"The maintenance margin of {what} is {level}% of the margin backing it; at 100% "
            "it is liquidated. Add margin or reduce the position.",
            "error",
        )


def connected_counts(sessions: Iterable[Session]) -> dict[str, int]:
    """BitMEX ``ConnectedUsers`` over the gateway's WebSocket sessions (the docstring, 3)."""
    bots: set[int] = set()
    users: set[int] = set()
    anonymous = 0
    for session in sessions:
        principal = session.principal
        if principal is None:
            anonymous += 1
        elif principal.key.key_id == _SESSION_KEY_ID:
            users.add(principal.account)
        else:
            bots.add(principal.account)
    return {"users": len(users) + anonymous, "bots": len(bots)}
