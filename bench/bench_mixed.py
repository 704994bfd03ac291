"""A `mixed-v1`-shaped workload through the engine (margin and fees on) and a minimal book.

The workload follows PyLOB's published description of `mixed-v1` (the generator is written here
from that description, not copied): 20,000 limit and market orders from 20 traders, 70% passive
limits, 20% crossing limits and 10% market orders, around a mid that drifts on a 0.01 tick,
seed 42. Prices are integer ticks; on the engine's XBTUSDT (a linear perpetual) one workload tick
is one instrument tick, one workload lot is one lot; every trader is funded so margin never
rejects, and the checks still run on every order.

Each repetition times the engine (a fresh one, the build this process runs) and bench/minibook.py
(a minimal pure-Python price-time book, fresh) on the same orders, one after the other, in CPU
time of this thread; the figures are the median of the repetitions. The target (issue 17) is an
engine rate >= 1.3x the minimal book's. With ``--builds`` the same runs in a child process per
core build. Prints one JSON object, with the load average beside the figures.

    .venv/bin/python bench/bench_mixed.py [--orders 20000] [--repeat 5] [--builds]
"""

import argparse
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import time

import perpetua
from minibook import MiniBook  # bench/ is this script's directory: first on sys.path
from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit, PlaceOrder
from perpetua.core.engine import Engine
from perpetua.core.enums import OrdType, Side
from perpetua.core.events import Trade

SYMBOL = "XBTUSDT"
TRADERS = 20
SEED = 42
MID_START_TICKS = 10_000  # 100.00 on a 0.01 tick
PASSIVE_PCT, CROSSING_PCT = 70, 20  # the rest (10%) are market orders
PASSIVE_DEPTH_TICKS = 20  # passive limits rest 1..20 ticks behind the mid
CROSSING_DEPTH_TICKS = 5  # crossing limits reach 1..5 ticks through the mid
LOTS_MAX = 10

# (trader 1..20, side +1/-1, lots, price in ticks or None for market)
Order = tuple[int, int, int, int | None]


def generate(count: int, seed: int = SEED) -> list[Order]:
    rng = random.Random(seed)
    mid = MID_START_TICKS
    orders: list[Order] = []
    for _ in range(count):
        mid = max(PASSIVE_DEPTH_TICKS + 1, mid + rng.choice((-1, 0, 0, 1)))  # the drift
        trader = rng.randint(1, TRADERS)
        side = rng.choice((1, -1))
        lots = rng.randint(1, LOTS_MAX)
        roll = rng.randrange(100)
        if roll < PASSIVE_PCT:
            price: int | None = mid - side * rng.randint(1, PASSIVE_DEPTH_TICKS)
        elif roll < PASSIVE_PCT + CROSSING_PCT:
            price = mid + side * rng.randint(1, CROSSING_DEPTH_TICKS)
        else:
            price = None
        orders.append((trader, side, lots, price))
    return orders


def run_engine(orders: list[Order]) -> tuple[int, int]:
    """(CPU ns, trades) for the orders through a fresh engine."""
    engine = Engine(default_catalogue())
    spec = next(s for s in engine.instruments if s.symbol == SYMBOL)
    for trader in range(1, TRADERS + 1):
        engine.apply(Deposit(1, trader, spec.settl_currency, 10**15, f"mixed-{trader}"))
    lot = spec.lot_size
    commands = [
        PlaceOrder(
            2 + i,
            trader,
            SYMBOL,
            Side(side),
            lots * lot,
            OrdType.LIMIT if price is not None else OrdType.MARKET,
            price=price,
        )
        for i, (trader, side, lots, price) in enumerate(orders)
    ]
    apply = engine.apply
    trades = 0
    gc.collect()
    start = time.thread_time_ns()
    for command in commands:
        for event in apply(command):
            if type(event) is Trade:
                trades += 1
    elapsed = time.thread_time_ns() - start
    return elapsed, trades


def run_minibook(orders: list[Order]) -> tuple[int, int]:
    book = MiniBook()
    submit = book.submit
    gc.collect()
    start = time.thread_time_ns()
    for trader, side, lots, price in orders:
        submit(trader, side, lots, price)
    elapsed = time.thread_time_ns() - start
    return elapsed, book.trades


def measure(count: int, repeat: int) -> dict[str, object]:
    orders = generate(count)
    engine_ns: list[int] = []
    book_ns: list[int] = []
    engine_trades = book_trades = 0
    for _ in range(repeat):
        elapsed, engine_trades = run_engine(orders)
        engine_ns.append(elapsed)
        elapsed, book_trades = run_minibook(orders)
        book_ns.append(elapsed)
    engine_rate = count / (statistics.median(engine_ns) / 1e9)
    book_rate = count / (statistics.median(book_ns) / 1e9)
    return {
        "core_build": getattr(perpetua, "CORE_BUILD", "unknown"),
        "orders": count,
        "repeat": repeat,
        "engine_orders_per_second": round(engine_rate),
        "minibook_orders_per_second": round(book_rate),
        "engine_vs_minibook": round(engine_rate / book_rate, 3),
        "engine_trades": engine_trades,
        "minibook_trades": book_trades,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--builds",
        action="store_true",
        help="run once per core build (compiled, python) in child processes",
    )
    args = parser.parse_args()
    if not args.builds:
        print(json.dumps({"bench": "mixed_v1_shaped", **measure(args.orders, args.repeat)}))
        return
    figures: dict[str, object] = {"bench": "mixed_v1_shaped"}
    for build in ("compiled", "python"):
        child = subprocess.run(
            [sys.executable, __file__, "--orders", str(args.orders), "--repeat", str(args.repeat)],
            env={**os.environ, "PERPETUA_CORE": build},
            capture_output=True,
            text=True,
            check=True,
        )
        figures[build] = json.loads(child.stdout)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
