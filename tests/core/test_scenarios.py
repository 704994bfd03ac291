"""Table-driven scenarios for the trading core: each scenario is a list of lines
``(command, expected)``, applied in order to a fresh engine.

How a line is checked (``run``):

* the command's ``ts_ns`` is stamped by the runner (1 ms after the previous command) unless the
  line gives one explicitly; a line's command may also be a function of the ``Run`` (to cancel by
  an order id the engine assigned, ``lambda r: CancelOrders(0, 1, (r.id("a"),))``);
* ``expected`` lists patterns (``Ev``) and state checks (``Check``). For every event *type* named
  by a pattern, the command's events of that type must match the patterns of that type one to
  one, in order; types not named are not checked (``none(T)`` names a type with no events).
  ``SKIP`` checks nothing;
* after every command ``audit.audit(engine.state)`` re-derives every invariant.

The helpers below build commands (``buy``, ``sell``, ``index``...) and patterns (``new``,
``fill``, ``cxl``, ``book``, ``rej``...). Every scenario starts from ``FUNDING``: accounts 1-4
hold 10 XBT, 1,000,000 USDT, 1,000 ETH and 1,000,000 BMEX; account 9 holds nothing.

This file holds the runner and the Limit, Market and time-in-force scenarios; the other
``test_scenarios_*.py`` files import the runner.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from perpetua.core import audit
from perpetua.core.calendar import utc_ns
from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import (
    CancelOrders,
    Command,
    Deposit,
    IndexPrice,
    PlaceOrder,
    SetInterestRate,
    Tick,
)
from perpetua.core.engine import Engine
from perpetua.core.enums import (
    ExecInst,
    ExecType,
    Liquidity,
    OrdStatus,
    OrdType,
    Side,
    TimeInForce,
)
from perpetua.core.events import (
    BookLevel,
    IndexUpdated,
    OrderEvent,
    Rejected,
    Trade,
)
from perpetua.core.reasons import Reason

__all__ = [
    "BUY",
    "FUNDING",
    "SELL",
    "SKIP",
    "T0",
    "Check",
    "Ev",
    "Run",
    "amended",
    "book",
    "buy",
    "cxl",
    "expired",
    "fill",
    "index",
    "new",
    "none",
    "order",
    "prt",
    "rej",
    "restated",
    "run",
    "sell",
    "triggered",
]

BUY, SELL = Side.BUY, Side.SELL
T0 = utc_ns(2026, 3, 2, 12)  # Monday 2 March 2026, 12:00 UTC
STEP_NS = 1_000_000  # 1 ms between commands unless a line says otherwise
XBT = 100_000_000  # XBt per XBT
USDT = 1_000_000  # USDt per USDT
FUNDED_ACCOUNTS = (1, 2, 3, 4)
# Order scenarios run with a zero funding interest, so a perpetual's mark (fair price) equals
# its index exactly and MarkPrice triggers can be placed at round prices; fair-price marking
# itself is tested in test_risk*.py.
FUNDING: tuple[Command, ...] = tuple(
    SetInterestRate(0, symbol, 0) for symbol in ("XBTUSD", "XBTUSDT", "ETHUSD", "ETHUSDT")
) + tuple(
    Deposit(0, account, currency, amount, f"fund-{account}-{currency}")
    for account in FUNDED_ACCOUNTS
    for currency, amount in (
        ("XBt", 10 * XBT),
        ("USDt", 1_000_000 * USDT),
        ("Gwei", 1_000 * 1_000_000_000),
        ("BMEx", 1_000_000 * 1_000_000),
    )
)

# Expectations ---------------------------------------------------------------------------------


class Ev:
    """A pattern for one event: its type and the fields that must be equal (or satisfy a
    predicate, when the expected value is callable)."""

    def __init__(self, kind: type, **fields: Any) -> None:
        self.kind = kind
        self.fields = fields
        for name in fields:
            if name not in kind._fields:  # type: ignore[attr-defined]
                raise TypeError(f"{kind.__name__} has no field {name!r}")

    def matches(self, event: object) -> bool:
        if type(event) is not self.kind:
            return False
        for name, want in self.fields.items():
            got = getattr(event, name)
            if callable(want) and not isinstance(want, type):
                if not want(got):
                    return False
            elif got != want:
                return False
        return True

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={_show(k, v)}" for k, v in self.fields.items())
        return f"{self.kind.__name__}({body})"


@dataclass(frozen=True)
class Check:
    """A check of engine state after the command: ``fn(run)`` must return True."""

    label: str
    fn: Callable[["Run"], bool]


class _Skip:
    pass


SKIP = _Skip()


def none(kind: type) -> Ev:
    """Names ``kind`` with no pattern: the command must produce no event of that type."""
    return _NoneOf(kind)


class _NoneOf(Ev):
    def __init__(self, kind: type) -> None:
        self.kind = kind
        self.fields = {}

    def __repr__(self) -> str:
        return f"none({self.kind.__name__})"


def order(cid: str, exec_type: ExecType, status: OrdStatus | None = None, **fields: Any) -> Ev:
    if status is not None:
        fields["ord_status"] = status
    if "leaves" in fields:
        fields["leaves_qty"] = fields.pop("leaves")
    if "cum" in fields:
        fields["cum_qty"] = fields.pop("cum")
    return Ev(OrderEvent, cl_ord_id=cid, exec_type=exec_type, **fields)


def new(cid: str, **fields: Any) -> Ev:
    return order(cid, ExecType.NEW, OrdStatus.NEW, **fields)


def fill(cid: str, qty: int, px: int, leaves: int, **fields: Any) -> Ev:
    """A Trade execution of ``qty`` at ``px``; status follows from ``leaves``."""
    status = OrdStatus.FILLED if leaves == 0 else OrdStatus.PARTIALLY_FILLED
    return order(cid, ExecType.TRADE, status, last_qty=qty, last_px=px, leaves_qty=leaves, **fields)


def cxl(cid: str, text: str | None = None, **fields: Any) -> Ev:
    if text is not None:
        fields["text"] = text
    fields.setdefault("leaves_qty", 0)
    return order(cid, ExecType.CANCELED, OrdStatus.CANCELED, **fields)


def expired(cid: str, **fields: Any) -> Ev:
    return order(cid, ExecType.EXPIRED, OrdStatus.EXPIRED, leaves_qty=0, **fields)


def amended(cid: str, status: OrdStatus | None = None, **fields: Any) -> Ev:
    return order(cid, ExecType.REPLACED, status, **fields)


def restated(cid: str, status: OrdStatus | None = None, **fields: Any) -> Ev:
    return order(cid, ExecType.RESTATED, status, **fields)


def triggered(cid: str, **fields: Any) -> Ev:
    return order(cid, ExecType.TRIGGERED, **fields)


def book(side: Side, price: int, size: int, symbol: str = "XBTUSD") -> Ev:
    return Ev(BookLevel, symbol=symbol, side=side, price=price, size=size)


def prt(qty: int, price: int, **fields: Any) -> Ev:
    return Ev(Trade, qty=qty, price=price, **fields)


def rej(reason: Reason, **fields: Any) -> Ev:
    return Ev(Rejected, reason=reason, **fields)


# Commands -------------------------------------------------------------------------------------


def place(
    account: int,
    cid: str,
    side: Side | None,
    qty: int | None,
    price: int | None = None,
    symbol: str = "XBTUSD",
    **fields: Any,
) -> PlaceOrder:
    if "ord_type" not in fields:
        fields["ord_type"] = OrdType.LIMIT if price is not None else OrdType.MARKET
    return PlaceOrder(0, account, symbol, side, qty, price=price, cl_ord_id=cid, **fields)


def buy(account: int, cid: str, qty: int, price: int | None = None, **fields: Any) -> PlaceOrder:
    return place(account, cid, BUY, qty, price, **fields)


def sell(account: int, cid: str, qty: int, price: int | None = None, **fields: Any) -> PlaceOrder:
    return place(account, cid, SELL, qty, price, **fields)


def index(price_usd: int, symbol: str = ".BXBT", den: int = 1) -> IndexPrice:
    """Set an index (and so the mark here) to ``price_usd / den``."""
    return IndexPrice(0, symbol, price_usd, den)


def at(ts_ns: int, command: Command) -> Command:
    """``command`` at an explicit time."""
    return command._replace(ts_ns=ts_ns)


# Runner ---------------------------------------------------------------------------------------


class Run:
    """One scenario's engine, clock and the order ids it assigned, by clOrdID."""

    def __init__(self) -> None:
        self.engine = Engine(default_catalogue())
        self.ts_ns = T0
        self.ids: dict[str, int] = {}

    @property
    def state(self) -> Any:
        return self.engine.state

    def id(self, cid: str) -> int:
        return self.ids[cid]

    def order(self, cid: str) -> Any:
        return self.state.orders.get(self.ids[cid])

    def held(self, account: int, currency: str) -> int:
        return int(self.state.ledger.held_amount(account, currency))

    def balance(self, account: int, currency: str) -> int:
        return int(self.state.ledger.balance(account, currency))

    def position(self, account: int, symbol: str = "XBTUSD") -> int:
        pos = self.state.markets[symbol].positions.get(account)
        return 0 if pos is None else int(pos.qty)

    def apply(self, command: Command | Callable[["Run"], Command]) -> list[object]:
        if callable(command) and not isinstance(command, tuple):
            command = command(self)
        ts_ns = command.ts_ns or self.ts_ns + STEP_NS
        assert ts_ns >= self.ts_ns, f"line goes back in time: {ts_ns} < {self.ts_ns}"
        self.ts_ns = ts_ns
        events = self.engine.apply(command._replace(ts_ns=ts_ns))
        audit.audit(self.engine.state)
        for event in events:
            if isinstance(event, OrderEvent) and event.cl_ord_id:
                self.ids.setdefault(event.cl_ord_id, event.order_id)
        return events


Line = tuple[Any, Sequence[Ev | Check] | _Skip]


def run(lines: Sequence[Line], prelude: Sequence[Command] = FUNDING) -> Run:
    r = Run()
    for command in prelude:
        events = r.apply(command)
        assert not any(isinstance(e, Rejected) for e in events), events
    for number, (command, expected) in enumerate(lines, 1):
        events = r.apply(command)
        if isinstance(expected, _Skip):
            continue
        _check_line(number, command, events, expected, r)
    return r


def _check_line(
    number: int, command: Any, events: list[object], expected: Sequence[Ev | Check], r: Run
) -> None:
    patterns = [e for e in expected if isinstance(e, Ev)]
    kinds = list(dict.fromkeys(p.kind for p in patterns))
    wanted = [
        p for kind in kinds for p in patterns if p.kind is kind and not isinstance(p, _NoneOf)
    ]
    got = [e for kind in kinds for e in events if type(e) is kind]
    where = f"line {number}: {_show_command(command)}"
    ok = len(got) == len(wanted) and all(p.matches(e) for p, e in zip(wanted, got, strict=True))
    if not ok:
        lines = [where, "expected:"] + [f"  {p!r}" for p in wanted]
        lines += ["got:"] + [f"  {_show_event(e)}" for e in got]
        pytest.fail("\n".join(lines))
    for check in expected:
        if isinstance(check, Check) and not check.fn(r):
            pytest.fail(f"{where}: state check failed: {check.label}")


_ENUM_FIELDS = {
    "exec_type": ExecType, "ord_status": OrdStatus, "side": Side, "ord_type": OrdType,
    "time_in_force": TimeInForce, "liquidity": Liquidity, "reason": Reason,
}  # fmt: skip


def _show(name: str, value: Any) -> str:
    enum = _ENUM_FIELDS.get(name)
    if enum is not None and isinstance(value, int):
        try:
            return enum(value).name
        except ValueError:
            return repr(value)
    if name == "exec_inst" and isinstance(value, int):
        return repr(ExecInst(value))
    return repr(value)


_SHOWN = {
    OrderEvent: ("exec_type", "order_id", "cl_ord_id", "ord_status", "order_qty", "leaves_qty",
                 "cum_qty", "price", "stop_px", "last_qty", "last_px", "exec_comm", "text",
                 "triggered", "working"),
}  # fmt: skip


def _show_event(event: object) -> str:
    names = _SHOWN.get(type(event), type(event)._fields[1:])  # type: ignore[attr-defined]
    body = ", ".join(f"{n}={_show(n, getattr(event, n))}" for n in names)
    return f"{type(event).__name__}({body})"


def _show_command(command: Any) -> str:
    if callable(command) and not isinstance(command, tuple):
        return "<command built from the run>"
    return f"{type(command).__name__}{tuple(command)[1:]}"


# Scenarios: Limit, Market, time in force ------------------------------------------------------

P = 200_000  # $20,000.0 in XBTUSD ticks of 0.1
LIMIT = OrdType.LIMIT
IOC, FOK, GTC, DAY = (
    TimeInForce.IMMEDIATE_OR_CANCEL,
    TimeInForce.FILL_OR_KILL,
    TimeInForce.GOOD_TILL_CANCEL,
    TimeInForce.DAY,
)
POST_ONLY = ExecInst.PARTICIPATE_DO_NOT_INITIATE
NEXT_MIDNIGHT = utc_ns(2026, 3, 3)

SCENARIOS: dict[str, list[Line]] = {
    "limit rests in the book": [
        (
            sell(1, "s", 100, P),
            [
                new("s", leaves_qty=100, cum_qty=0, price=P, working=True, time_in_force=GTC),
                book(SELL, P, 100),
                none(Trade),
            ],
        ),
        (buy(2, "b", 100, P - 10), [new("b"), book(BUY, P - 10, 100), none(Trade)]),
    ],
    "limit crosses and both fill at the maker's price": [
        (sell(1, "s", 100, P), [new("s"), book(SELL, P, 100)]),
        (
            buy(2, "b", 100, P + 50),
            [
                new("b", price=P + 50),
                fill("s", 100, P, leaves=0, cum_qty=100, liquidity=Liquidity.MAKER),
                fill("b", 100, P, leaves=0, cum_qty=100, liquidity=Liquidity.TAKER),
                prt(100, P, side=BUY, maker_account=1, taker_account=2),
                book(SELL, P, 0),
            ],
        ),
        (
            Tick(0),
            [
                Check(
                    "positions +100/-100", lambda r: (r.position(2), r.position(1)) == (100, -100)
                ),
                Check("book empty", lambda r: not r.state.orders),
            ],
        ),
    ],
    "limit partially fills and the rest rests": [
        (sell(1, "s", 100, P), SKIP),
        (
            buy(2, "b", 300, P),
            [
                new("b", leaves=300),
                fill("s", 100, P, leaves=0),
                fill("b", 100, P, leaves=200, cum=100),
                prt(100, P),
                book(SELL, P, 0),
                book(BUY, P, 200),
            ],
        ),
        (
            sell(3, "s3", 500, P),
            [
                new("s3"),
                fill("b", 200, P, leaves=0, cum=300, cum_px_qty=300 * P),
                fill("s3", 200, P, leaves=300, cum=200),
                prt(200, P, side=SELL),
                book(BUY, P, 0),
                book(SELL, P, 300),
            ],
        ),
    ],
    "limit sweeps several levels best first and stops at its limit": [
        (sell(1, "s1", 100, P + 20), SKIP),
        (sell(1, "s2", 100, P), SKIP),
        (sell(3, "s3", 200, P + 10), SKIP),
        (sell(3, "s4", 100, P + 30), SKIP),
        (
            buy(2, "b", 500, P + 20),
            [
                new("b"),
                fill("s2", 100, P, leaves=0),
                fill("b", 100, P, leaves=400),
                fill("s3", 200, P + 10, leaves=0),
                fill("b", 200, P + 10, leaves=200),
                fill("s1", 100, P + 20, leaves=0),
                fill("b", 100, P + 20, leaves=100),
                prt(100, P),
                prt(200, P + 10),
                prt(100, P + 20),
                book(SELL, P, 0),
                book(SELL, P + 10, 0),
                book(SELL, P + 20, 0),
                book(BUY, P + 20, 100),
                Check("s4 untouched", lambda r: r.order("s4").leaves_qty == 100),
                Check(
                    "last price is the last level",
                    lambda r: r.state.markets["XBTUSD"].last_price == P + 20,
                ),
            ],
        ),
    ],
    "orders at one price fill in time order": [
        (sell(1, "first", 100, P), [book(SELL, P, 100)]),
        (sell(3, "second", 200, P), [book(SELL, P, 300)]),
        (sell(4, "third", 100, P), [book(SELL, P, 400)]),
        (
            buy(2, "b1", 200, P),
            [
                new("b1"),
                fill("first", 100, P, leaves=0),
                fill("b1", 100, P, leaves=100),
                fill("second", 100, P, leaves=100),
                fill("b1", 100, P, leaves=0),
                prt(100, P, maker_account=1),
                prt(100, P, maker_account=3),
                book(SELL, P, 300),
                book(SELL, P, 200),
            ],
        ),
        (
            buy(2, "b2", 200, P),
            [
                new("b2"),
                fill("second", 100, P, leaves=0),
                fill("b2", 100, P, leaves=100),
                fill("third", 100, P, leaves=0),
                fill("b2", 100, P, leaves=0),
                prt(100, P, maker_account=3),
                prt(100, P, maker_account=4),
                book(SELL, P, 100),
                book(SELL, P, 0),
            ],
        ),
    ],
    "market fills within the protective band and the rest is cancelled": [
        (index(20_000), [Ev(IndexUpdated, symbol=".BXBT", price_num=20_000, price_den=1)]),
        (sell(1, "near", 100, P), SKIP),
        (sell(1, "edge", 100, P + 10_000), SKIP),  # +5%: the band's edge, still inside
        (sell(3, "far", 100, P + 10_010), SKIP),  # beyond the band
        (
            buy(2, "m", 400),
            [
                new("m", ord_type=OrdType.MARKET, time_in_force=IOC, price=None),
                fill("near", 100, P, leaves=0),
                fill("m", 100, P, leaves=300),
                fill("edge", 100, P + 10_000, leaves=0),
                fill("m", 100, P + 10_000, leaves=200),
                cxl("m", "Canceled: Market order outside price band", cum_qty=200),
                prt(100, P),
                prt(100, P + 10_000),
                Check("far untouched", lambda r: r.order("far").leaves_qty == 100),
            ],
        ),
    ],
    "market sell uses the band below the mark": [
        (index(20_000), SKIP),
        (buy(1, "bid1", 100, P - 10_000), SKIP),
        (buy(1, "bid2", 100, P - 10_010), SKIP),
        (
            sell(2, "m", 300),
            [
                new("m"),
                fill("bid1", 100, P - 10_000, leaves=0),
                fill("m", 100, P - 10_000, leaves=200),
                cxl("m", "Canceled: Market order outside price band", cum=100),
            ],
        ),
    ],
    "market without liquidity is cancelled, not rejected": [
        (
            buy(2, "m1", 100),
            [new("m1"), none(Trade), cxl("m1", "Canceled: no liquidity and no reference price")],
        ),
        (index(20_000), SKIP),
        (sell(1, "far", 100, P + 20_000), SKIP),
        (
            buy(2, "m2", 100),
            [
                new("m2"),
                none(Trade),
                cxl("m2", "Canceled: no liquidity within the price band", cum=0),
            ],
        ),
        (sell(2, "m3", 100), [new("m3"), cxl("m3", cum=0), none(Rejected)]),
    ],
    "GoodTillCancel rests until cancelled": [
        (buy(1, "g", 100, P, time_in_force=GTC), [new("g", time_in_force=GTC), book(BUY, P, 100)]),
        (at(T0 + 3 * 86_400_000_000_000, Tick(0)), [none(OrderEvent)]),
        (CancelOrders(0, 1, cl_ord_ids=("g",)), [cxl("g", "Canceled via API."), book(BUY, P, 0)]),
    ],
    "ImmediateOrCancel fills what it can and cancels the rest": [
        (sell(1, "s", 100, P), SKIP),
        (
            buy(2, "ioc", 300, P, time_in_force=IOC),
            [
                new("ioc", time_in_force=IOC),
                fill("s", 100, P, leaves=0),
                fill("ioc", 100, P, leaves=200),
                cxl("ioc", "Canceled: ImmediateOrCancel", cum=100),
                book(SELL, P, 0),  # nothing of the IOC rests
            ],
        ),
        (
            buy(2, "ioc2", 100, P, time_in_force=IOC),
            [new("ioc2"), cxl("ioc2", "Canceled: ImmediateOrCancel", cum=0), none(BookLevel)],
        ),
    ],
    "FillOrKill is killed when not fully fillable, filled when it is": [
        (sell(1, "s1", 100, P), SKIP),
        (sell(3, "s2", 100, P + 10), SKIP),
        (
            buy(2, "fok1", 300, P + 10, time_in_force=FOK),
            [
                new("fok1", time_in_force=FOK),
                cxl("fok1", "Canceled: FillOrKill order could not be filled", cum=0),
                none(Trade),
                none(BookLevel),
            ],
        ),
        (
            buy(2, "fok2", 200, P, time_in_force=FOK),
            [  # enough size, but not within its limit
                new("fok2"),
                cxl("fok2", "Canceled: FillOrKill order could not be filled"),
                none(Trade),
            ],
        ),
        (
            buy(2, "fok3", 200, P + 10, time_in_force=FOK),
            [
                new("fok3"),
                fill("s1", 100, P, leaves=0),
                fill("fok3", 100, P, leaves=100),
                fill("s2", 100, P + 10, leaves=0),
                fill("fok3", 100, P + 10, leaves=0),
                prt(100, P),
                prt(100, P + 10),
            ],
        ),
    ],
    "Day expires at the next 00:00 UTC when a later command arrives": [
        (buy(1, "day", 100, P, time_in_force=DAY), [new("day", time_in_force=DAY)]),
        (buy(1, "gtc", 100, P - 10), [new("gtc")]),
        (at(NEXT_MIDNIGHT - 1, Tick(0)), [none(OrderEvent)]),  # 23:59:59.999999999
        (
            at(NEXT_MIDNIGHT + 5_000_000_000, Tick(0)),
            [
                expired("day", text="Expired: Day order", cum=0),
                book(BUY, P, 0),
                Check("gtc lives on", lambda r: r.order("gtc") is not None),
            ],
        ),
        (buy(1, "day2", 100, P, time_in_force=DAY), [new("day2")]),
        (
            at(NEXT_MIDNIGHT + 86_400_000_000_000, sell(2, "s", 100, P - 10)),
            [
                expired("day2"),
                book(BUY, P, 0),
                book(BUY, P - 10, 0),
                new("s"),
                fill("gtc", 100, P - 10, leaves=0),
                fill("s", 100, P - 10, leaves=0),
            ],
        ),
    ],
    "partially filled Day order expires keeping its cumQty": [
        (buy(1, "day", 300, P, time_in_force=DAY), SKIP),
        (
            sell(2, "s", 100, P),
            [new("s"), fill("day", 100, P, leaves=200), fill("s", 100, P, leaves=0)],
        ),
        (at(NEXT_MIDNIGHT, Tick(0)), [expired("day", cum=100)]),
        (CancelOrders(0, 1, cl_ord_ids=("day",)), [rej(Reason.ORDER_STATUS_INVALID)]),
    ],
    "ParticipateDoNotInitiate is cancelled when it would cross, rests otherwise": [
        (sell(1, "s", 100, P), SKIP),
        (
            buy(2, "po1", 100, P, exec_inst=POST_ONLY),
            [
                new("po1"),
                cxl("po1", "Canceled: Order had execInst of ParticipateDoNotInitiate", cum=0),
                none(Rejected),
                none(Trade),
                none(BookLevel),
            ],
        ),
        (
            buy(2, "po2", 100, P - 10, exec_inst=POST_ONLY),
            [new("po2", exec_inst=POST_ONLY), book(BUY, P - 10, 100), none(Trade)],
        ),
        (
            sell(3, "po3", 100, P - 10, exec_inst=POST_ONLY),
            [new("po3"), cxl("po3", "Canceled: Order had execInst of ParticipateDoNotInitiate")],
        ),
        (sell(3, "po4", 100, P, exec_inst=POST_ONLY), [new("po4"), book(SELL, P, 200)]),
        (
            buy(2, "ioc", 100, P, exec_inst=POST_ONLY, time_in_force=IOC),
            [rej(Reason.EXEC_INST_CONFLICT, cl_ord_id="ioc"), none(OrderEvent)],
        ),
    ],
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario(name: str) -> None:
    run(SCENARIOS[name])


def test_runner_catches_a_wrong_expectation() -> None:
    lines: list[Line] = [(sell(1, "s", 100, P), [new("s", leaves=99)])]
    with pytest.raises(pytest.fail.Exception, match="leaves_qty=99"):
        run(lines)


def test_runner_catches_an_unexpected_event_of_a_named_type() -> None:
    lines: list[Line] = [(sell(1, "s", 100, P), [none(BookLevel)])]
    with pytest.raises(pytest.fail.Exception, match="BookLevel"):
        run(lines)
