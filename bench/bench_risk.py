"""Risk-engine benchmark: mark-price updates over many open positions, and the trading-core mix
with margin checks on. Prints one JSON object.

(a) Mark-price update. N open positions on XBTUSD (inverse), built through the engine's public
commands only: N/2 pairs of accounts, each pair a Deposit for each side, optionally a
SetLeverage, and a resting Sell met by a Buy at $60,000 (4-6 commands per 2 positions; 100,000
positions take ~250,000 commands). Shorts and most longs are far from liquidation (cross with
a wallet of half the position's value: 33-50% away, or isolated 2x-10x: 10-50% away), every one
registered in the market's threshold index; ``--near`` longs are
isolated 25x-100x with their leverage spread evenly, so their liquidation prices spread over
0.5%-3.5% below the entry. Five rich accounts rest a bid ladder below the price for the
insurance fund to sell taken-over positions into (so liquidations end in the fund's profit, not
in ADL). Funding interest is 0, so the mark equals the index; updates are one second apart in
an hour without a funding time.

* ``quiet``: IndexPrice moves in a random walk that stays above every liquidation price;
* ``liquidating``: IndexPrice steps down through the near band so that each update crosses a
  few liquidation prices (takeover, fund order, fills against the ladder, position rows).

Each figure is the CPU time of the measuring thread (``time.thread_time_ns``, one core) for one
``engine.apply(IndexPrice)``, garbage collection off during the timed loop. The same runs at
several position counts (default 1,000, 10,000 and 100,000, the same near band in each) show
the cost does not grow with far positions: a mark update bisects the market's sorted threshold
index and touches only the crossed positions.

(b) The trading-core mix of bench/bench_core.py (exchange-core's 9% GTC, 3% IOC, 6% cancel,
82% amend), whose engine runs the risk engine's pre-trade margin check on every order and
amend, re-measured here with the same ``generate``/``measure``.

At each position count, after (a): (d) the gateway re-ranking every open position for
``deleveragePercentile`` (``gateway_percentiles``), then (c) one update that ends in
auto-deleveraging, ranking every opposing position in the core (``adl_update``).

    .venv/bin/python bench/bench_risk.py [--positions 1000,10000,100000] [--near 400]
        [--quiet-updates 2000] [--mix-commands 100000] [--seed 7]
"""

import argparse
import gc
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import generate, measure  # noqa: E402
from perpetua.core import liquidation  # noqa: E402
from perpetua.core.calendar import utc_ns  # noqa: E402
from perpetua.core.catalogue import default_catalogue  # noqa: E402
from perpetua.core.commands import (  # noqa: E402
    CancelAll,
    Deposit,
    IndexPrice,
    PlaceOrder,
    SetInterestRate,
    SetLeverage,
)
from perpetua.core.engine import Engine  # noqa: E402
from perpetua.core.enums import OrdType, Side  # noqa: E402
from perpetua.core.events import (  # noqa: E402
    Deleveraged,
    PositionLiquidated,
    Rejected,
)
from perpetua.core.indicators import publish_deleverage_ranks  # noqa: E402
from perpetua.core.ledger import INSURANCE  # noqa: E402

SYMBOL = "XBTUSD"
INDEX = ".BXBT"
TICKS_PER_USD = 10  # XBTUSD tick is $0.1
ENTRY_TICKS = 600_000  # $60,000
LOT = 100
LADDER_ACCOUNTS = (1, 2, 3, 4, 5)
LADDER_LEVELS_PER_ACCOUNT = 150  # within OPEN_ORDERS_PER_SYMBOL_MAX
LADDER_STEP_TICKS = 40  # $4 between bids: 750 levels cover 5% below the entry
FIRST_PAIR_ACCOUNT = 10
START_NS = utc_ns(2027, 1, 4, 5)  # 05:00 UTC: the next funding time, 12:00, is after the run
SETUP_STEP_NS = 1_000  # setup commands 1 us apart
UPDATE_STEP_NS = 1_000_000_000  # updates 1 s apart
RICH_XBT = 10**14


class Runner:
    def __init__(self) -> None:
        self.engine = Engine(default_catalogue())
        self.ts_ns = START_NS
        self.rejected = 0
        self.commands = 0

    def apply(self, command: object, step_ns: int = SETUP_STEP_NS) -> list[object]:
        self.ts_ns += step_ns
        self.commands += 1
        events = self.engine.apply(command._replace(ts_ns=self.ts_ns))  # type: ignore[attr-defined]
        self.rejected += sum(type(e) is Rejected for e in events)
        return events


def _index(level_ticks: int) -> IndexPrice:
    return IndexPrice(0, INDEX, level_ticks, TICKS_PER_USD)


def build(positions: int, near: int, seed: int) -> Runner:
    """``positions`` open positions (half long, half short) on XBTUSD; ``near`` of the longs
    isolated 25x-100x close to liquidation, every other position far from it."""
    rng = random.Random(seed)
    run = Runner()
    run.apply(SetInterestRate(0, SYMBOL, 0))
    run.apply(_index(ENTRY_TICKS))
    for n, account in enumerate(LADDER_ACCOUNTS):
        run.apply(Deposit(0, account, "XBt", RICH_XBT, f"ladder-{account}"))
        for level in range(LADDER_LEVELS_PER_ACCOUNT):
            step = n + len(LADDER_ACCOUNTS) * level
            price = ENTRY_TICKS - 600 - step * LADDER_STEP_TICKS
            run.apply(
                PlaceOrder(0, account, SYMBOL, Side.BUY, 50 * LOT, OrdType.LIMIT, price=price)
            )
    pairs = positions // 2
    for i in range(pairs):
        short, long = FIRST_PAIR_ACCOUNT + 2 * i, FIRST_PAIR_ACCOUNT + 2 * i + 1
        qty = LOT * rng.randint(1, 10)
        value = qty * 100_000_000 // 60_000  # XBt at the entry
        if rng.random() < 0.5:  # cross: liquidated ~50% above
            run.apply(Deposit(0, short, "XBt", value // 2, f"d{short}"))
        else:  # isolated 2x-10x: liquidated 10-50% above
            run.apply(Deposit(0, short, "XBt", value, f"d{short}"))
            run.apply(SetLeverage(0, short, SYMBOL, rng.choice((200, 300, 500, 1_000))))
        if i < near:  # 25x .. 100x, evenly spread
            leverage_e2 = 2_500 + (7_500 * i) // max(1, near - 1)
            run.apply(Deposit(0, long, "XBt", value // 10, f"d{long}"))
            run.apply(SetLeverage(0, long, SYMBOL, leverage_e2))
        elif rng.random() < 0.5:
            run.apply(Deposit(0, long, "XBt", value // 2, f"d{long}"))  # cross: ~33% below
        else:
            run.apply(Deposit(0, long, "XBt", value, f"d{long}"))
            run.apply(SetLeverage(0, long, SYMBOL, rng.choice((200, 300, 500, 1_000))))
        run.apply(PlaceOrder(0, short, SYMBOL, Side.SELL, qty, OrdType.LIMIT, price=ENTRY_TICKS))
        run.apply(PlaceOrder(0, long, SYMBOL, Side.BUY, qty, OrdType.LIMIT, price=ENTRY_TICKS))
    market = run.engine.state.markets[SYMBOL]
    held = sum(1 for p in market.positions.values() if p.qty and p.account >= FIRST_PAIR_ACCOUNT)
    if held != 2 * pairs or run.rejected:
        raise SystemExit(f"setup built {held} positions of {2 * pairs}, {run.rejected} rejected")
    return run


def _percentiles(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    n = len(ordered)
    if not n:
        return {"updates": 0}
    return {
        "updates": n,
        "cpu_us_p50": round(ordered[n // 2] / 1e3, 1),
        "cpu_us_p99": round(ordered[min(n - 1, n * 99 // 100)] / 1e3, 1),
        "cpu_us_max": round(ordered[-1] / 1e3, 1),
        "cpu_us_mean": round(sum(ordered) / n / 1e3, 1),
    }


def timed_updates(run: Runner, levels: list[int]) -> tuple[list[int], list[int]]:
    """(CPU ns per update, liquidations per update) for IndexPrice at each level."""
    clock = time.thread_time_ns
    apply = run.engine.apply
    times: list[int] = []
    liquidated: list[int] = []
    gc.collect()
    gc.disable()
    try:
        for level in levels:
            run.ts_ns += UPDATE_STEP_NS
            command = IndexPrice(run.ts_ns, INDEX, level, TICKS_PER_USD)
            t0 = clock()
            events = apply(command)
            times.append(clock() - t0)
            liquidated.append(sum(type(e) is PositionLiquidated for e in events))
    finally:
        gc.enable()
    return times, liquidated


def quiet_levels(rng: random.Random, count: int) -> list[int]:
    """A random walk in [entry - 0.1%, entry + 0.3%]: above every liquidation price."""
    low, high = ENTRY_TICKS - ENTRY_TICKS // 1000, ENTRY_TICKS + 3 * ENTRY_TICKS // 1000
    level = ENTRY_TICKS
    out = []
    for _ in range(count):
        level = min(high, max(low, level + rng.randint(-60, 60)))
        out.append(level)
    return out


def liquidating_levels(near: int) -> list[int]:
    """Down from 0.4% to 3.6% below the entry in ``near`` steps: about one near position's
    liquidation price per step (they are denser near 0.5%, thinner towards 3.5%)."""
    top = ENTRY_TICKS - 4 * ENTRY_TICKS // 1000
    bottom = ENTRY_TICKS - 36 * ENTRY_TICKS // 1000
    steps = max(1, near)
    return [top - (top - bottom) * k // steps for k in range(1, steps + 1)]


def mark_update(positions: int, near: int, quiet_updates: int, seed: int) -> dict[str, object]:
    started = time.perf_counter()
    run = build(positions, near, seed)
    setup_s = time.perf_counter() - started
    setup_commands = run.commands
    market = run.engine.state.markets[SYMBOL]
    liquidation.catch_up_index(market)  # the index is derived and lags (core.liquidation)
    thresholds = len(market.liq_longs) + len(market.liq_shorts)
    rng = random.Random(seed + 1)
    quiet_ns, quiet_liq = timed_updates(run, quiet_levels(rng, quiet_updates))
    if any(quiet_liq):
        raise SystemExit("a quiet update liquidated a position")
    liq_ns, liq_count = timed_updates(run, liquidating_levels(near))
    crossing = [t for t, n in zip(liq_ns, liq_count, strict=True) if n]
    fund = market.positions.get(INSURANCE)
    fund_qty = fund.qty if fund is not None else 0
    percentiles = gateway_percentiles(run)
    adl = adl_update(run)
    return {
        "positions": positions,
        "near": near,
        "far": positions - near,
        "setup_seconds": round(setup_s, 1),
        "setup_commands": setup_commands,
        "thresholds_registered_at_start": thresholds,
        "quiet": _percentiles(quiet_ns),
        "liquidating": {
            **_percentiles(crossing),
            "steps": len(liq_ns),
            "liquidations": sum(liq_count),
            "liquidations_per_update_max": max(liq_count, default=0),
        },
        "all_steps_of_the_liquidating_walk": _percentiles(liq_ns),
        "fund_position_left": fund_qty,
        "gateway_deleverage_percentiles": percentiles,
        "adl": adl,
    }


def gateway_percentiles(run: Runner) -> dict[str, object]:
    """(d) The ADL queue (``deleveragePercentile``): one ranking of every open position of the
    symbol by the core (``indicators.publish_deleverage_ranks``, as after a mark update)."""
    state = run.engine.state
    market = state.markets[SYMBOL]
    market.adl_ranked_ns = 0  # due now, whatever the holder count
    out: list[object] = []
    gc.collect()
    gc.disable()
    try:
        t0 = time.thread_time_ns()
        publish_deleverage_ranks(state, {SYMBOL: None}, out)
        elapsed = time.thread_time_ns() - t0
    finally:
        gc.enable()
    ranked = out[0].accounts if out else ()  # type: ignore[attr-defined]
    return {"cpu_ms": round(elapsed / 1e6, 1), "positions_ranked": len(ranked)}


def adl_update(run: Runner) -> dict[str, object]:
    """(c) One update that ends in auto-deleveraging, after the walk: the ladder is cancelled,
    a fresh 100x long big enough that its loss exceeds the fund is opened at the current level,
    and the index drops 4% (above every other long's liquidation price): the long is taken
    over, nothing bids, the fund cannot cover, and ADL ranks every open short (about half the
    positions) and closes the first ones until the long is absorbed."""
    market = run.engine.state.markets[SYMBOL]
    for account in LADDER_ACCOUNTS:
        run.apply(CancelAll(0, account, SYMBOL))
    level = market.index_fine // 1_000_000  # the index in ticks (marks are millionths)
    fund_xbt = max(1, run.engine.state.ledger.balance(INSURANCE, "XBt"))
    usd_per_xbt = level // TICKS_PER_USD
    # A 4% drop loses ~3% of the value past bankruptcy (1% below): make that 3x the fund.
    qty = -(-3 * fund_xbt * usd_per_xbt * 100 // (3 * 100_000_000) // LOT) * LOT + LOT
    short, long = 1_000_000_000, 1_000_000_001
    run.apply(Deposit(0, short, "XBt", RICH_XBT, "adl-short"))
    run.apply(Deposit(0, long, "XBt", qty * 100_000_000 // usd_per_xbt // 50, "adl-long"))
    run.apply(SetLeverage(0, long, SYMBOL, 10_000))
    run.apply(PlaceOrder(0, short, SYMBOL, Side.SELL, qty, OrdType.LIMIT, price=level))
    run.apply(PlaceOrder(0, long, SYMBOL, Side.BUY, qty, OrdType.LIMIT, price=level))
    shorts = sum(1 for p in market.positions.values() if p.qty < 0 and p.account > 0)
    run.ts_ns += UPDATE_STEP_NS
    command = IndexPrice(run.ts_ns, INDEX, level * 96 // 100, TICKS_PER_USD)
    gc.collect()
    gc.disable()
    try:
        t0 = time.thread_time_ns()
        events = run.engine.apply(command)
        elapsed = time.thread_time_ns() - t0
    finally:
        gc.enable()
    deleveraged = sum(type(e) is Deleveraged for e in events)
    if not deleveraged:
        raise SystemExit("the ADL update deleveraged nobody")
    return {
        "cpu_ms": round(elapsed / 1e6, 1),
        "opposing_positions_ranked": shorts,
        "taken_over_qty": qty,
        "positions_deleveraged": deleveraged,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--positions", default="1000,10000,100000", help="comma-separated open position counts"
    )
    parser.add_argument("--near", type=int, default=400, help="longs close to liquidation")
    parser.add_argument("--quiet-updates", type=int, default=2_000)
    parser.add_argument(
        "--mix-commands", type=int, default=100_000, help="trading-core mix size; 0 skips it"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    results = []
    for positions in (int(p) for p in args.positions.split(",")):
        print(f"mark update with {positions} positions...", file=sys.stderr)
        results.append(
            mark_update(positions, min(args.near, positions // 2), args.quiet_updates, args.seed)
        )
    figures: dict[str, object] = {
        "bench": "risk",
        "python": sys.version.split()[0],
        "target_ms": 20,
        "mark_update": results,
    }
    if args.mix_commands:
        print(f"trading-core mix, {args.mix_commands} commands...", file=sys.stderr)
        snapshot, commands = generate("XBTUSD", args.mix_commands, args.seed)
        figures["core_mix_with_margin"] = measure(snapshot, commands)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
