"""Backtest: a bot's plan run over a recorded market on a scratch copy of the venue's own engine.

1. The engine is the venue's (``core.Engine`` over the same catalogue), in memory, with three
   accounts: the bot's, funded with its investment, and two replay accounts. Fees, margin,
   funding (at the instrument's funding times, from the replayed index) and the order rules are
   the venue's own (a perpetual's interest rate is ``interest_ppb``: the premium comes from
   the replayed book), so a backtest and a live run over the same replayed market place the same
   orders and get the same fills (``tests/services/test_backtest.py`` compares them).
2. A recorded trade at price p becomes, in order: the index at p; the taker account selling
   (IOC, at p) exactly what the bot bids at p or above; buying (IOC, at p) what it offers at p
   or below; then one lot traded between the two replay accounts at p (the print, the last
   price). So a resting bot order fills at its own price when the market trades at or through
   it, as on a venue where the market moved through the level. ``replay_print`` makes these
   commands (each from the bot's orders as they are then); a live replay submits the same
   ones through the sequencer. Before them the replay accounts' resting orders are cancelled;
   after the sweeps, the print's maker rests ``lot + |position|`` at p on the side that would
   close the bot's position, so an exit's market order meets liquidity at the print.
3. The bot reacts after each command, as live it reacts after each durable batch, until it
   has nothing more to submit (at most ``REACTIONS_MAX`` rounds a print).
4. Equity is sampled after each print: the bot account's wallet in the settlement currency
   plus (spot) its base holdings at the print, or (derivatives) its unrealised PnL. A series of
   (ts_ns, equity); ``equity_svg`` draws it.
5. Input: the venue's own trades (``trades`` read model, or the journal replayed) or a CSV of
   ``timestamp,price[,size]`` rows (ISO-8601 or ns; price in the instrument's quote units),
   timestamps from ``CSV_TIME_MIN_NS`` to ``CSV_TIME_MAX_NS`` (a row in seconds or ms, read as
   ns, would fall in 1970: refused with its row named, not run on a clock before zero).
"""

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, NamedTuple

from perpetua.core.commands import (
    CancelAll,
    Command,
    Deposit,
    IndexPrice,
    PlaceOrder,
    SetInterestRate,
    SetLeverage,
)
from perpetua.core.enums import OrdType, Side, TimeInForce
from perpetua.core.events import Event, Rejected
from perpetua.core.instruments import (
    InstrumentKind,
    InstrumentSpec,
    Payout,
    contract_value,
    price_of_ticks,
    spot_base_amount,
)
from perpetua.core.units import currency
from perpetua.sequencer.scratch import ScratchEngine
from perpetua.services.bot import Bot, Exits
from perpetua.services.strategies import DcaPlan, GridPlan

__all__ = [
    "BOT_ACCOUNT",
    "PRINTS_MAX",
    "BacktestResult",
    "Print",
    "equity_svg",
    "replay_print",
    "parse_csv",
    "run_backtest",
]

BOT_ACCOUNT: Final = 1
REPLAY_MAKER: Final = 2
REPLAY_TAKER: Final = 3
REPLAY_FUNDS_MAJOR: Final = 10**9  # per currency, in major units, for the replay accounts
PRINTS_MAX: Final = 200_000  # prints in one backtest
REACTIONS_MAX: Final = 20  # bot rounds after one command
CSV_BYTES_MAX: Final = 16 * 1024 * 1024
STEP_NS: Final = 1_000  # spacing of the commands of one print
CSV_TIME_MIN_NS: Final = 1_262_304_000 * 10**9  # 2010-01-01T00:00:00Z
CSV_TIME_MAX_NS: Final = 4_102_444_800 * 10**9  # 2100-01-01T00:00:00Z
INTEREST_PPB_DEFAULT: Final = 100_000  # 0.01% a funding interval, BitMEX's usual interest


class Print(NamedTuple):
    ts_ns: int
    price: int  # ticks


class BacktestResult(NamedTuple):
    fills: list[dict[str, Any]]
    equity: list[tuple[int, int]]  # (ts_ns, settlement minor units)
    status: dict[str, Any]


def replay_print(
    spec: InstrumentSpec, price: int, bot: Bot, apply: Callable[[Command], object]
) -> None:
    """Replay one print at ``price`` ticks (rule 2): each step is computed from the bot's
    orders as they are when it runs, and ``apply`` applies it and lets the bot react."""
    symbol = spec.symbol
    ioc = TimeInForce.IMMEDIATE_OR_CANCEL
    for account in (REPLAY_MAKER, REPLAY_TAKER):
        apply(CancelAll(0, account, symbol, text="replay"))
    if spec.reference_symbol:
        num, den = price_of_ticks(spec, price)
        apply(IndexPrice(0, spec.reference_symbol, num, den))
    bids = _crossing(bot, Side.BUY, price)
    if bids:
        apply(PlaceOrder(0, REPLAY_TAKER, symbol, Side.SELL, bids, OrdType.LIMIT, price, None, ioc))
    asks = _crossing(bot, Side.SELL, price)
    if asks:
        apply(PlaceOrder(0, REPLAY_TAKER, symbol, Side.BUY, asks, OrdType.LIMIT, price, None, ioc))
    lot = spec.lot_size
    if bot.position >= 0:  # the resting side a long bot's closing sell would meet
        resting, taker, side = REPLAY_MAKER, REPLAY_TAKER, Side.BUY
    else:
        resting, taker, side = REPLAY_TAKER, REPLAY_MAKER, Side.SELL
    depth = lot + abs(bot.position)
    apply(PlaceOrder(0, resting, symbol, side, depth, OrdType.LIMIT, price))
    apply(PlaceOrder(0, taker, symbol, Side(-side), lot, OrdType.LIMIT, price, None, ioc))


def _crossing(bot: Bot, side: Side, price: int) -> int:
    """What the bot has resting at ``price`` or better for the market (bids at or above it,
    asks at or below it)."""
    return sum(
        o.order_qty - o.cum_qty
        for o in bot.open_orders()
        if o.side == side
        and o.price is not None
        and (o.price >= price if side == Side.BUY else o.price <= price)
    )


def funding_commands(spec: InstrumentSpec, account: int) -> list[Command]:
    """Deposits that let a replay account trade anything on ``spec``."""
    currencies = {spec.settl_currency}
    if spec.payout == Payout.SPOT:
        currencies.add(_base_minor(spec))
    return [
        Deposit(
            0,
            account,
            code,
            REPLAY_FUNDS_MAJOR * _minor_per_major(code),
            f"replay-{account}-{code}",
        )
        for code in sorted(currencies)
    ]


def _base_minor(spec: InstrumentSpec) -> str:
    return spec.base_currency  # a currency code (XBt)


def _minor_per_major(code: str) -> int:
    return currency(code).minor_per_major


class _Scratch:
    """The scratch engine and its clock (rule 1)."""

    def __init__(self, instruments: tuple[InstrumentSpec, ...], ts_ns: int) -> None:
        self.engine = ScratchEngine(instruments)
        self.ts_ns = ts_ns

    def at(self, ts_ns: int) -> None:
        """The next command is stamped no earlier than ``ts_ns``."""
        self.ts_ns = max(self.ts_ns, ts_ns - STEP_NS)

    def apply(self, command: Command) -> Sequence[Event]:
        self.ts_ns += STEP_NS
        return self.engine.apply(command._replace(ts_ns=self.ts_ns))


def run_backtest(
    instruments: tuple[InstrumentSpec, ...],
    spec: InstrumentSpec,
    plan: GridPlan | DcaPlan,
    exits: Exits,
    investment: dict[str, int],
    leverage_e2: int,
    prints: Sequence[Print],
    check_conservation: bool = False,
    interest_ppb: int = INTEREST_PPB_DEFAULT,
) -> BacktestResult:
    """Run ``plan`` over ``prints`` (rule 1-4); ``investment``: currency -> minor units."""
    if not prints:
        return BacktestResult([], [], {})
    scratch = _Scratch(instruments, prints[0].ts_ns - 1_000_000)
    bot = Bot(BOT_ACCOUNT, BOT_ACCOUNT, spec, plan, exits)
    setup: list[Command] = [
        *(Deposit(0, BOT_ACCOUNT, c, a, f"bot-{c}") for c, a in sorted(investment.items())),
        *funding_commands(spec, REPLAY_MAKER),
        *funding_commands(spec, REPLAY_TAKER),
    ]
    if leverage_e2 and spec.is_derivative:
        setup.append(SetLeverage(0, BOT_ACCOUNT, spec.symbol, leverage_e2))
    if spec.kind == InstrumentKind.PERPETUAL:
        setup.append(SetInterestRate(0, spec.symbol, interest_ppb))
    first_num, first_den = price_of_ticks(spec, prints[0].price)
    if spec.reference_symbol:
        setup.append(IndexPrice(0, spec.reference_symbol, first_num, first_den))
    for command in setup:
        _check(scratch.apply(command), command)
    bot.last_px = prints[0].price
    _react(scratch, bot)
    equity: list[tuple[int, int]] = []
    for p in prints[:PRINTS_MAX]:
        scratch.at(p.ts_ns)

        def step(command: Command) -> None:
            bot.observe(scratch.apply(command))
            _react(scratch, bot)

        replay_print(spec, p.price, bot, step)
        if check_conservation:
            scratch.engine.audit()
        equity.append((p.ts_ns, _equity(scratch.engine, spec, bot, p.price)))
    fills = [f._asdict() for f in bot.fills]
    status = bot.status()
    status["equity"] = equity[-1][1] if equity else 0
    return BacktestResult(fills, equity, status)


def _check(events: Sequence[Event], command: Command) -> None:
    for event in events:
        if type(event) is Rejected:
            raise ValueError(f"backtest setup {type(command).__name__} rejected: {event.reason}")


def _react(scratch: _Scratch, bot: Bot) -> None:
    for _ in range(REACTIONS_MAX):
        commands = bot.commands(scratch.ts_ns)
        if not commands:
            return
        for command in commands:
            bot.observe(scratch.apply(command))


def _equity(engine: ScratchEngine, spec: InstrumentSpec, bot: Bot, price: int) -> int:
    cash = engine.balance(bot.account, spec.settl_currency)
    if spec.payout == Payout.SPOT:
        base = engine.balance(bot.account, _base_minor(spec))
        units = base // max(1, spot_base_amount(spec, 1))
        return cash + contract_value(spec, units, price)
    return cash + bot.unrealised()


def parse_csv(spec: InstrumentSpec, text: str) -> list[Print]:
    """Rule 5: ``timestamp,price[,size]`` rows, a header row allowed; prices on the tick grid.
    Raises ValueError naming the first bad row."""
    if len(text) > CSV_BYTES_MAX:
        raise ValueError(f"CSV larger than {CSV_BYTES_MAX} bytes")
    prints: list[Print] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or (number == 1 and not _numeric(row[1] if len(row) > 1 else "")):
            continue
        if len(row) < 2:
            raise ValueError(f"CSV row {number}: needs timestamp,price")
        ts_ns = _timestamp(row[0].strip(), number)
        price = Decimal(row[1].strip())
        ticks = price * spec.tick_den / spec.tick_num
        if ticks != ticks.to_integral_value() or ticks <= 0:
            raise ValueError(f"CSV row {number}: price {row[1]} is not on the tick grid")
        if not CSV_TIME_MIN_NS <= ts_ns < CSV_TIME_MAX_NS:
            raise ValueError(
                f"CSV row {number}: timestamp {row[0].strip()!r} is outside 2010-2099"
                " (ISO 8601, or nanoseconds since 1970)"
            )
        if prints and ts_ns < prints[-1].ts_ns:
            raise ValueError(f"CSV row {number}: timestamps must not go back")
        prints.append(Print(ts_ns, int(ticks)))
        if len(prints) > PRINTS_MAX:
            raise ValueError(f"CSV has more than {PRINTS_MAX} trades")
    return prints


def _numeric(text: str) -> bool:
    try:
        Decimal(text.strip())
    except ArithmeticError:
        return False
    return True


def _timestamp(text: str, number: int) -> int:
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"CSV row {number}: bad timestamp {text!r}") from error
    return int(parsed.timestamp()) * 1_000_000_000 + parsed.microsecond * 1_000


EQUITY_SVG_WIDTH: Final = 640
EQUITY_SVG_HEIGHT: Final = 240


def equity_svg(series: Iterable[tuple[int, int]]) -> str:
    """A small line plot of equity over time (SVG text)."""
    points = list(series)
    w, h = EQUITY_SVG_WIDTH, EQUITY_SVG_HEIGHT
    if len(points) < 2:
        return f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}"></svg>'
    t0, t1 = points[0][0], points[-1][0]
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    span_t = max(1, t1 - t0)
    span_v = max(1, high - low)
    path = " ".join(
        f"{'M' if i == 0 else 'L'}{(t - t0) * (w - 20) / span_t + 10:.1f},"
        f"{h - 10 - (v - low) * (h - 20) / span_v:.1f}"
        for i, (t, v) in enumerate(points)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}">'
        f'<rect width="{w}" height="{h}" fill="white"/>'
        f'<path d="{path}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>'
        f'<text x="10" y="14" font-size="11">equity {low} .. {high}</text></svg>'
    )
