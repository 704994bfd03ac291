"""``Bot``: one trading bot's working state, a fold of its account's order events, and the
commands that bring its orders to what its strategy wants.

The same class runs live (``services.bots`` feeds it durable batches and submits what it asks
through the sequencer) and in a backtest (``services.backtest`` feeds it a scratch engine's
events), so a backtest and a live run over the same market place the same orders.

1. The bot owns its account (a sub-account made for it): every order on it is the bot's, and
   it learns of them only from events (``observe``), never from what it meant to do. Its
   history is the latest event of each clOrdID; a role's latest order is the one with the
   highest generation (``strategies`` rule 2).
2. ``commands(now)`` reconciles: an order the strategy wants and the account never had is
   placed (once: ids in flight are remembered until their result or event arrives); an open
   order it no longer wants is cancelled. A wanted order that ended Canceled, Rejected or
   Expired by someone else's hand pauses the bot with the reason; so does a rejected placement.
2a. Its owner resumes a paused bot (``resume``): each resume has a number (``resumes``, kept
   with the bot's row), and a wanted order whose last attempt ended by someone else's hand
   before that resume is placed again, for what it did not fill, as attempt
   ``b<bot>.<role>.<generation>.<resumes>`` (a new clOrdID: the core refuses a recent one
   twice). The strategy sees a job's attempts as one order (``history``: the latest attempt's
   status and price, the fills of all); a retry that fails again pauses the bot again.
3. Exit rules (stop prices, a take-profit on the bot's PnL, an end time) stop the bot: its
   orders are cancelled and its position closed by one market order (role ``x``).
4. Accounting is per fill, in settlement minor units: the position's cost is the sum of the
   fills' contract values; a reducing fill realises its share of the cost; unrealised PnL is
   the position's value at the last price minus its cost; fees are the sum of ``execComm``
   (rebates negative); funding is what the position paid (``FundingPaid``; received is negative).
"""

from collections.abc import Iterable
from typing import Any, Final, NamedTuple

from perpetua.core.commands import CancelAll, CancelOrders, Command, PlaceOrder
from perpetua.core.enums import ExecType, OrdStatus, OrdType, Side, TimeInForce
from perpetua.core.events import FundingPaid, OrderEvent, Rejected, Trade
from perpetua.core.instruments import InstrumentSpec, contract_value
from perpetua.core.reasons import MESSAGES, Reason
from perpetua.services.strategies import (
    DcaPlan,
    GridPlan,
    Market,
    Order,
    Want,
    desired,
)

__all__ = ["Bot", "BotState", "Exits", "Fill"]

OPEN_STATUSES: Final = frozenset({OrdStatus.NEW, OrdStatus.PARTIALLY_FILLED})
ENDED_BY_OTHERS: Final = frozenset({OrdStatus.CANCELED, OrdStatus.REJECTED, OrdStatus.EXPIRED})
FILLS_KEPT_MAX: Final = 1_000  # recent fills kept for the status page (totals cover all)
EXIT_ROLE: Final = "x"
CLOSE_ATTEMPTS_MAX: Final = 20  # market orders sent to close a stopped bot's position


class BotState:
    RUNNING: Final = "running"
    PAUSED: Final = "paused"
    STOPPED: Final = "stopped"


class Exits(NamedTuple):
    """Exit rules (rule 3); None: not set."""

    stop_low_px: int | None = None  # ticks: stop when the last price is at or below
    stop_high_px: int | None = None  # ticks: stop when the last price is at or above
    take_profit: int | None = None  # settlement minor units of total PnL (realised + unrealised)
    end_ns: int | None = None


class Fill(NamedTuple):
    ts_ns: int
    cl_ord_id: str
    side: int
    qty: int
    price: int
    fee: int


def _order_of(event: OrderEvent) -> Order:
    return Order(
        event.cl_ord_id,
        event.side,
        event.price,
        event.order_qty,
        event.cum_qty,
        event.cum_px_qty,
        event.ord_status,
        event.ts_ns,
        event.text,
    )


class Bot:
    def __init__(
        self,
        bot_id: int,
        account: int,
        spec: InstrumentSpec,
        plan: GridPlan | DcaPlan,
        exits: Exits,
        state: str = BotState.RUNNING,
        reason: str = "",
        resumes: int = 0,
    ) -> None:
        self.bot_id = bot_id
        self.account = account
        self.spec = spec
        self.plan = plan
        self.exits = exits
        self.state = state
        self.reason = reason
        self.resumes = resumes
        self.prefix = f"b{bot_id}."
        self.orders: dict[str, Order] = {}
        self.latest: dict[str, Order] = {}  # role -> highest generation's job, attempts merged
        # (role, generation) -> attempt -> its latest event (attempt 0: the first placement)
        self.attempts: dict[tuple[str, int], dict[int, Order]] = {}
        self.in_flight: set[str] = set()
        self.seen_exec: set[int] = set()
        self.fills: list[Fill] = []
        self.fill_count = 0
        self.position = 0
        self.cost = 0
        self.realised = 0
        self.fees = 0
        self.funding = 0
        self.last_px: int | None = None
        self.closing = False
        self.trades_seen = 0
        self.close_tried_at = -1  # trades_seen when the last close was sent
        self.changed = True

    # --- observing ----------------------------------------------------------------------------

    def observe(self, events: Iterable[object]) -> None:
        """Fold the events of one command (rule 1): the bot's order events and the market's
        last price. Events seen twice (a result and its batch) count once."""
        for event in events:
            if type(event) is OrderEvent:
                if event.account == self.account and event.symbol == self.spec.symbol:
                    self._order_event(event)
            elif type(event) is Trade:
                if event.symbol == self.spec.symbol:
                    self.last_px = event.price
                    self.trades_seen += 1
            elif type(event) is FundingPaid:
                if event.account == self.account and event.symbol == self.spec.symbol:
                    self.funding -= event.amount  # paid: positive
                    self.changed = True
            elif (
                type(event) is Rejected
                and event.account == self.account
                and event.cl_ord_id.startswith(self.prefix)
            ):
                self.in_flight.discard(event.cl_ord_id)
                if event.command == "PlaceOrder" and self.state == BotState.RUNNING:
                    self.pause(f"order {event.cl_ord_id} rejected: {_reason(event.reason)}")

    def _order_event(self, event: OrderEvent) -> None:
        if event.exec_id in self.seen_exec:
            return
        self.seen_exec.add(event.exec_id)
        self.changed = True
        if event.exec_type == ExecType.FUNDING:
            return  # counted from FundingPaid
        if event.exec_type == ExecType.TRADE:
            self._fill(event)
        cl_ord_id = event.cl_ord_id
        if not cl_ord_id.startswith(self.prefix):
            return
        self.in_flight.discard(cl_ord_id)
        order = _order_of(event)
        self.orders[cl_ord_id] = order
        job = _job(cl_ord_id)
        if job is None:
            return  # not a name the bot gives (someone else's order with its prefix)
        role, generation, attempt = job
        tried = self.attempts.setdefault((role, generation), {})
        tried[attempt] = order
        held = self.latest.get(role)
        if held is None or _generation(held.cl_ord_id) <= generation:
            self.latest[role] = _merged(tried)

    def _fill(self, event: OrderEvent) -> None:
        price = event.last_px or 0
        signed = event.last_qty * (1 if event.side == Side.BUY else -1)
        self.fees += event.exec_comm
        self.fill_count += 1
        self.fills.append(
            Fill(event.ts_ns, event.cl_ord_id, event.side, event.last_qty, price, event.exec_comm)
        )
        if len(self.fills) > FILLS_KEPT_MAX:
            del self.fills[: len(self.fills) - FILLS_KEPT_MAX]
        value = contract_value(self.spec, signed, price)
        if self.position == 0 or (self.position > 0) == (signed > 0):
            self.position += signed
            self.cost += value
            return
        closing = min(abs(signed), abs(self.position))
        share = _trunc_div(self.cost * closing, abs(self.position))
        closed_value = _trunc_div(value * closing, abs(signed))
        self.realised += -closed_value - share
        self.cost -= share
        self.position += signed
        if abs(signed) > closing:  # flipped: the rest opens the other way
            self.cost = value - closed_value

    # --- acting -------------------------------------------------------------------------------

    def history(self, role: str) -> Order | None:
        return self.latest.get(role)

    def cl_ord_id(self, want: Want) -> str:
        """``b<bot>.<role>.<generation>``, with ``.<resumes>`` after a resume (rule 2a)."""
        attempt = f".{self.resumes}" if self.resumes else ""
        return f"{self.prefix}{want.role}.{want.generation}{attempt}"

    def unrealised(self) -> int:
        if self.position == 0 or self.last_px is None:
            return 0
        return contract_value(self.spec, self.position, self.last_px) - self.cost

    def pnl(self) -> int:
        """Realised + unrealised - fees + funding received (BitMEX signs: a fee is positive)."""
        return self.realised + self.unrealised() - self.fees - self.funding

    def commands(self, now_ns: int) -> list[Command]:
        """What to submit now (rules 2 and 3); a stopped bot only closes its position."""
        if self.state == BotState.STOPPED:
            return self._close() if self.closing else []
        if self.state != BotState.RUNNING:
            return []
        exit_reason = self._exit_reason(now_ns)
        if exit_reason:
            return self.stop(exit_reason, close=True)
        wants = desired(self.plan, self.history, Market(self.last_px, now_ns), self.spec)
        wanted: set[str] = set()
        places: list[Command] = []
        for want in wants:
            tried = self.attempts.get((want.role, want.generation), {})
            if tried:
                last = tried[max(tried)]
                if last.ord_status not in ENDED_BY_OTHERS:
                    wanted.add(last.cl_ord_id)  # working (or done): nothing to place
                    continue
                if max(tried) >= self.resumes:  # ended by others since the last resume
                    self.pause(f"order {last.cl_ord_id} {_status(last.ord_status)}: {last.text}")
                    return []
            cl_ord_id = self.cl_ord_id(want)  # first placement, or a retry after a resume
            wanted.add(cl_ord_id)
            if cl_ord_id in self.in_flight:
                continue
            remaining = want.qty - sum(o.cum_qty for o in tried.values())
            if remaining <= 0:
                continue
            self.in_flight.add(cl_ord_id)
            places.append(self._place(cl_ord_id, want._replace(qty=remaining)))
        stale = tuple(
            cl_ord_id
            for cl_ord_id, order in self.orders.items()
            if order.ord_status in OPEN_STATUSES
            and cl_ord_id not in wanted
            and cl_ord_id not in self.in_flight
        )
        if not stale:
            return places
        # cancel first: a replaced order's hold is freed before its successor needs it
        self.in_flight.update(stale)
        return [CancelOrders(0, self.account, cl_ord_ids=stale, text="bot: not wanted"), *places]

    def _place(self, cl_ord_id: str, want: Want) -> PlaceOrder:
        return PlaceOrder(
            0,
            self.account,
            self.spec.symbol,
            want.side,
            want.qty,
            want.ord_type,
            want.price,
            time_in_force=TimeInForce.GOOD_TILL_CANCEL if want.price is not None else None,
            cl_ord_id=cl_ord_id,
            text=f"bot {self.bot_id}",
        )

    def _exit_reason(self, now_ns: int) -> str:
        exits, last = self.exits, self.last_px
        if exits.end_ns is not None and now_ns >= exits.end_ns:
            return "end time reached"
        if last is not None and exits.stop_low_px is not None and last <= exits.stop_low_px:
            return f"stop price: last {last} <= {exits.stop_low_px} ticks"
        if last is not None and exits.stop_high_px is not None and last >= exits.stop_high_px:
            return f"stop price: last {last} >= {exits.stop_high_px} ticks"
        if exits.take_profit is not None and self.pnl() >= exits.take_profit:
            return f"take-profit: PnL {self.pnl()} >= {exits.take_profit}"
        return ""

    def resume(self, resumes: int) -> None:
        """Run a paused bot again as resume number ``resumes`` (rule 2a)."""
        if self.state == BotState.PAUSED:
            self.state = BotState.RUNNING
            self.reason = ""
            self.resumes = resumes
            self.changed = True

    def pause(self, reason: str) -> None:
        if self.state == BotState.RUNNING:
            self.state = BotState.PAUSED
            self.reason = reason
            self.changed = True

    def stop(self, reason: str, close: bool) -> list[Command]:
        """Stop for good: cancel every order on the account, and close the position when
        ``close`` (one market order, role ``x``)."""
        self.state = BotState.STOPPED
        self.reason = reason
        self.changed = True
        self.closing = close
        out: list[Command] = [CancelAll(0, self.account, self.spec.symbol, text="bot stopped")]
        return out + self._close() if close else out

    def _close(self) -> list[Command]:
        """One market order for the whole position (role ``x``); another, with the next
        generation, when the last one ended without closing it (no liquidity) and the market
        has traded since."""
        if self.position == 0:
            self.closing = False
            return []
        if self.close_tried_at == self.trades_seen:
            return []
        last = self.latest.get(EXIT_ROLE)
        generation = 0
        if last is not None:
            if last.ord_status in OPEN_STATUSES:
                return []
            generation = _generation(last.cl_ord_id) + 1
        cl_ord_id = f"{self.prefix}{EXIT_ROLE}.{generation}"
        if generation >= CLOSE_ATTEMPTS_MAX or cl_ord_id in self.in_flight:
            return []
        self.in_flight.add(cl_ord_id)
        self.close_tried_at = self.trades_seen
        side = Side.SELL if self.position > 0 else Side.BUY
        return [
            PlaceOrder(
                0,
                self.account,
                self.spec.symbol,
                side,
                abs(self.position),
                OrdType.MARKET,
                cl_ord_id=cl_ord_id,
                text=f"bot {self.bot_id} close",
            )
        ]

    # --- reading ------------------------------------------------------------------------------

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if o.ord_status in OPEN_STATUSES]

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "reason": self.reason,
            "position": self.position,
            "lastPrice": self.last_px,
            "realisedPnl": self.realised,
            "unrealisedPnl": self.unrealised(),
            "fees": self.fees,
            "funding": self.funding,
            "pnl": self.pnl(),
            "fillCount": self.fill_count,
        }


def _job(cl_ord_id: str) -> tuple[str, int, int] | None:
    """(role, generation, attempt) of ``b<bot>.<role>.<generation>[.<attempt>]``."""
    parts = cl_ord_id.split(".")
    if len(parts) not in (3, 4) or not all(p.isdigit() for p in parts[2:]):
        return None
    return parts[1], int(parts[2]), int(parts[3]) if len(parts) == 4 else 0


def _generation(cl_ord_id: str) -> int:
    job = _job(cl_ord_id)
    return job[1] if job is not None else -1


def _merged(tried: dict[int, Order]) -> Order:
    """A job's attempts as one order (rule 2a): the latest attempt's status, price and clOrdID;
    the quantity it asked for and the fills of all of them."""
    last = tried[max(tried)]
    if len(tried) == 1:
        return last
    earlier = [o for attempt, o in tried.items() if attempt != max(tried)]
    return last._replace(
        order_qty=last.order_qty + sum(o.cum_qty for o in earlier),
        cum_qty=last.cum_qty + sum(o.cum_qty for o in earlier),
        cum_px_qty=last.cum_px_qty + sum(o.cum_px_qty for o in earlier),
    )


def _trunc_div(num: int, den: int) -> int:
    quotient = abs(num) // abs(den)
    return quotient if (num >= 0) == (den > 0) else -quotient


def _reason(code: int) -> str:
    try:
        reason = Reason(code)
    except ValueError:
        return str(code)
    return MESSAGES.get(reason, reason.name.lower())


def _status(code: int) -> str:
    try:
        return OrdStatus(code).name.lower()
    except ValueError:
        return str(code)
