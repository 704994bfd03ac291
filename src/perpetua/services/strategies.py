"""Trading-bot strategies (spot grid, futures grid, DCA) as pure functions of a plan and of the
bot's own order history.

1. A strategy remembers nothing the journal does not. ``desired(plan, history, market)``
   returns the orders that must be working now, computed only from the plan (fixed when the bot
   was created) and the bot account's orders so far, each known by its clOrdID. After a restart
   the same history (rebuilt from the read models, which the venue catches up from the journal
   before it starts) gives the same answer, so nothing is placed twice.
2. clOrdIDs are deterministic: ``b<bot>.<role>.<generation>``. A role is one job in the plan
   (grid interval ``g3``, DCA cycle 2's safety order 1 ``c2s1``, the initial purchase ``i``); its
   generation counts how often that job was done (a grid interval flips buy/sell at each fill).
   The core refuses a clOrdID already open on the account: a second submission cannot double.
3. Integers only: prices in ticks, sizes in contracts or lots, money in minor units. Geometric
   levels use ``Decimal`` at a fixed precision (the same on every machine) and are rounded to
   the tick; levels must stay strictly increasing.
4. Orders move on whole fills: a grid interval flips, and a DCA cycle re-prices its
   take-profit, when an order is Filled (a partial fill waits for the rest).
"""

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Final, NamedTuple

from perpetua.core.enums import OrdStatus, OrdType, Side
from perpetua.core.instruments import InstrumentSpec, contract_value

__all__ = [
    "GRIDS_MAX",
    "SAFETY_ORDERS_MAX",
    "DcaPlan",
    "GridPlan",
    "Order",
    "Want",
    "desired",
    "grid_levels",
    "grid_qty",
]

GRIDS_MAX: Final = 200  # intervals in one grid
SAFETY_ORDERS_MAX: Final = 50  # DCA safety orders per cycle
DCA_CYCLES_MAX: Final = 100_000  # cycles walked to find the current one
PPM: Final = 1_000_000
_DECIMAL: Final = Context(prec=40)


class Order(NamedTuple):
    """What the bot knows of one of its orders (the latest event of it)."""

    cl_ord_id: str
    side: int  # Side
    price: int | None
    order_qty: int
    cum_qty: int
    cum_px_qty: int  # sum of fill ticks x qty
    ord_status: int  # OrdStatus
    ts_ns: int
    text: str


class Want(NamedTuple):
    """One order the strategy wants working: ``role``.``generation`` names it (rule 2)."""

    role: str
    generation: int
    side: Side
    qty: int
    price: int | None  # ticks; None: a market order
    ord_type: OrdType = OrdType.LIMIT


class GridPlan(NamedTuple):
    """``levels``: grids + 1 prices in ticks, ascending. Interval j spans levels j and j+1 and
    holds one unit of ``qty``: it buys at level j first when that level is below the start
    price, else it sells at level j+1 first. ``direction``: "long" (spot grids too) buys the
    units of the sell-first intervals up front, "short" sells those of the buy-first intervals
    up front, "neutral" neither (its position goes long below the start, short above)."""

    symbol: str
    direction: str
    levels: tuple[int, ...]
    qty: int
    start_px: int


class DcaPlan(NamedTuple):
    """Dollar-cost averaging in cycles. ``side``: Side.BUY accumulates (sells at take-profit),
    Side.SELL the mirror (futures only). Trigger "price": the base order at the cycle's
    reference price and ``safety_max`` safety orders below it (deviation i = step x (1 + scale
    + ... + scale^(i-1)), size i = safety_qty x volume_scale^(i-1)). Trigger "interval": one
    order of ``base_qty`` every ``interval_ns`` at the last price, at most ``safety_max + 1``
    per cycle. Each fill re-prices the take-profit at the average entry plus
    ``take_profit_ppm``; when it fills the cycle ends and the next starts at its price."""

    symbol: str
    side: int  # Side
    trigger: str  # "price" | "interval"
    base_qty: int
    safety_qty: int
    safety_max: int
    step_ppm: int
    step_scale_ppm: int
    volume_scale_ppm: int
    take_profit_ppm: int
    interval_ns: int
    start_px: int
    start_ns: int


class Market(NamedTuple):
    last_px: int | None
    now_ns: int


History = Callable[[str], Order | None]  # role -> its latest order (highest generation)


def grid_levels(lower: int, upper: int, grids: int, geometric: bool) -> tuple[int, ...]:
    """``grids + 1`` levels in ticks from ``lower`` to ``upper``; empty when two levels would
    round to the same tick (the caller answers 400)."""
    if geometric:
        ratio = _DECIMAL.power(Decimal(upper) / Decimal(lower), Decimal(1) / Decimal(grids))
        levels = [
            int(
                (Decimal(lower) * _DECIMAL.power(ratio, Decimal(i))).to_integral_value(
                    rounding=ROUND_HALF_EVEN
                )
            )
            for i in range(grids)
        ]
    else:
        levels = [lower + (upper - lower) * i // grids for i in range(grids)]
    levels.append(upper)
    if any(b <= a for a, b in zip(levels, levels[1:], strict=False)):
        return ()
    return tuple(levels)


def _buy_first(plan: GridPlan, j: int) -> bool:
    return plan.levels[j] < plan.start_px


def grid_initial_qty(plan: GridPlan) -> int:
    """Size of the up-front order (rule on ``GridPlan``): 0 for a neutral grid."""
    intervals = len(plan.levels) - 1
    buy_first = sum(1 for j in range(intervals) if _buy_first(plan, j))
    if plan.direction == "long":
        return (intervals - buy_first) * plan.qty
    if plan.direction == "short":
        return buy_first * plan.qty
    return 0


def grid_qty(
    spec: InstrumentSpec,
    direction: str,
    levels: tuple[int, ...],
    start_px: int,
    budget: int,
) -> int:
    """The largest per-interval size (a multiple of the lot) whose worst-case value fits in
    ``budget`` settlement minor units: each interval is worth one unit at its upper level (a
    spot grid also pays for the units it buys up front at the start price). 0 if none fits."""
    lot = spec.lot_size
    per_lot = 0
    for j in range(len(levels) - 1):
        px = levels[j] if levels[j] < start_px else levels[j + 1]
        if direction == "long" and levels[j] >= start_px:
            px = max(px, start_px)
        per_lot += abs(contract_value(spec, lot, px))
    if per_lot <= 0:
        return 0
    return budget // per_lot * lot


def _grid_wants(plan: GridPlan, history: History) -> list[Want]:
    wants: list[Want] = []
    initial_qty = grid_initial_qty(plan)
    initial_done = True
    if initial_qty:
        initial_side = Side.BUY if plan.direction == "long" else Side.SELL
        initial = history("i")
        initial_done = initial is not None and initial.ord_status == OrdStatus.FILLED
        if not initial_done:
            wants.append(Want("i", 0, initial_side, initial_qty, plan.start_px))
    for j in range(len(plan.levels) - 1):
        buy_first = _buy_first(plan, j)
        needs_initial = (plan.direction == "long" and not buy_first) or (
            plan.direction == "short" and buy_first
        )
        if needs_initial and not initial_done:
            continue
        role = f"g{j}"
        last = history(role)
        generation = 0
        if last is not None:
            generation = _generation(last.cl_ord_id)
            if last.ord_status == OrdStatus.FILLED:
                generation += 1
        buying = buy_first == (generation % 2 == 0)
        price = plan.levels[j] if buying else plan.levels[j + 1]
        wants.append(Want(role, generation, Side.BUY if buying else Side.SELL, plan.qty, price))
    return wants


def _generation(cl_ord_id: str) -> int:
    """The generation of ``b<bot>.<role>.<generation>`` (``.<attempt>`` may follow: a retry
    after a resume, ``services.bot`` rule 2a)."""
    return int(cl_ord_id.split(".")[2])


def _scaled(value: int, scale_ppm: int, power: int) -> int:
    """value x (scale_ppm / 1e6) ^ power, floored."""
    num, den = value, 1
    for _ in range(power):
        num *= scale_ppm
        den *= PPM
    return num // den


def dca_safety(plan: DcaPlan, ref_px: int, i: int, lot: int) -> tuple[int, int]:
    """(price ticks, qty) of safety order i (1-based) of a cycle whose reference is ref_px."""
    deviation_ppm = sum(_scaled(plan.step_ppm, plan.step_scale_ppm, m) for m in range(i))
    offset = ref_px * deviation_ppm // PPM
    price = ref_px - offset if plan.side == Side.BUY else ref_px + offset
    qty = _scaled(plan.safety_qty, plan.volume_scale_ppm, i - 1) // lot * lot
    return price, qty


def _dca_cycle(plan: DcaPlan, history: History) -> tuple[int, int, int]:
    """(cycle, reference price, start ns) of the cycle now running."""
    ref_px, start_ns = plan.start_px, plan.start_ns
    for cycle in range(DCA_CYCLES_MAX):
        tp = history(f"c{cycle}t")
        if tp is None or tp.ord_status != OrdStatus.FILLED or tp.cum_qty == 0:
            return cycle, ref_px, start_ns
        ref_px = tp.cum_px_qty // tp.cum_qty
        start_ns = tp.ts_ns
    return DCA_CYCLES_MAX, ref_px, start_ns


def _dca_entries(plan: DcaPlan, history: History, cycle: int) -> list[str]:
    if plan.trigger == "price":
        return [f"c{cycle}b", *(f"c{cycle}s{i}" for i in range(1, plan.safety_max + 1))]
    return [f"c{cycle}n{n}" for n in range(plan.safety_max + 1)]


def _dca_wants(plan: DcaPlan, history: History, market: Market, lot: int) -> list[Want]:
    cycle, ref_px, start_ns = _dca_cycle(plan, history)
    if cycle >= DCA_CYCLES_MAX:
        return []
    side = Side(plan.side)
    wants: list[Want] = []
    filled_qty = filled_px_qty = 0
    for n, role in enumerate(_dca_entries(plan, history, cycle)):
        order = history(role)
        if order is not None:
            filled_qty += order.cum_qty
            filled_px_qty += order.cum_px_qty
        if order is not None and order.ord_status == OrdStatus.FILLED:
            continue
        price: int | None
        if plan.trigger == "price":
            price, qty = (ref_px, plan.base_qty) if n == 0 else dca_safety(plan, ref_px, n, lot)
        elif order is not None:
            price, qty = order.price, order.order_qty
        else:
            due = market.now_ns >= start_ns + n * plan.interval_ns
            if not due or market.last_px is None:
                break
            price, qty = market.last_px, plan.base_qty
        if qty > 0 and price is not None and price > 0:
            wants.append(Want(role, 0, side, qty, price))
        if plan.trigger == "interval":
            break  # one interval order at a time
    if filled_qty > 0:
        average = filled_px_qty // filled_qty
        target = average * (
            PPM + plan.take_profit_ppm if side == Side.BUY else PPM - plan.take_profit_ppm
        )
        tp_px = -(-target // PPM) if side == Side.BUY else target // PPM
        tp_qty = filled_qty // lot * lot
        if tp_qty > 0:
            wants.append(Want(f"c{cycle}t", filled_qty, Side(-side), tp_qty, tp_px))
    return wants


def desired(
    plan: GridPlan | DcaPlan, history: History, market: Market, spec: InstrumentSpec
) -> list[Want]:
    """The orders that must be working now (rule 1)."""
    if isinstance(plan, GridPlan):
        return _grid_wants(plan, history)
    return _dca_wants(plan, history, market, spec.lot_size)
