"""Trading-core throughput on the exchange-core mix: 9% GTC, 3% IOC, 6% cancel, 82% amend.

Times are CPU time of the measuring thread (one core), with wall time beside them. Throughput
and latency are measured in two passes (see `measure`): a clock read per command costs more
than a tenth of a compiled command.

A seeded generator drives one engine to record a command stream that keeps about 1,000 resting
orders on about 750 price levels from 1,000 funded accounts (so cancels and amends target live
orders); a fresh engine then replays that stream under the timer. Margin checks, fees and every
event are on, exactly as in production. Prints one JSON object.

    .venv/bin/python bench/bench_core.py [--commands N] [--symbol XBTUSD] [--seed S]
        [--mode both|python|compiled] [--publish 1|0]

``latency_cpu_ns_p50_by_fills`` is the median per number of fills the command made (0, 1, 2,
3 or more, counted in an untimed pass), with each group's share of the stream: the p99 sits
among the commands that trade. ``--publish 0`` applies the stream without the hot events
(``Engine.apply(command, publish=False)``, as recovery does), to measure what building them
costs.

``--mode both`` (the default) measures the compiled core (the default build, `make core`) and
the pure-Python one (the fallback, ``PERPETUA_CORE=python``), each in its own process, one after
the other, and prints both with the machine's load average beside them.
"""

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable

from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import AmendOrder, CancelOrders, Deposit, PlaceOrder
from perpetua.core.engine import Engine
from perpetua.core.enums import OrdType, Side, TimeInForce
from perpetua.core.events import OrderEvent, Trade

ACCOUNTS = 1_000
RESTING_TARGET = 1_000
LEVELS_SPAN = 750  # distinct price levels the resting orders spread over, each side combined


def _setup(engine: Engine, symbol: str) -> list[object]:
    spec = next(s for s in engine.instruments if s.symbol == symbol)
    commands: list[object] = []
    for account in range(1, ACCOUNTS + 1):
        cmd = Deposit(1, account, spec.settl_currency, 10**15, f"bench-{account}")
        engine.apply(cmd)
        commands.append(cmd)
    return commands


def generate(symbol: str, count: int, seed: int) -> tuple[dict[str, object], list[object]]:
    """(snapshot of the starting state, measured commands) recorded from a driving engine."""
    rng = random.Random(seed)
    engine = Engine(default_catalogue())
    spec = next(s for s in engine.instruments if s.symbol == symbol)
    setup = _setup(engine, symbol)
    mid = 200_000 if spec.tick_den == 10 else 40_000
    lot = spec.lot_size
    live: dict[int, tuple[int, int]] = {}  # order id -> (account, side)
    commands: list[object] = []
    ts = 2

    def apply(cmd: object) -> None:
        commands.append(cmd)
        for ev in engine.apply(cmd):  # type: ignore[arg-type]
            if isinstance(ev, OrderEvent):
                if ev.leaves_qty > 0 and ev.ord_status in (1, 2) and ev.working:
                    live[ev.order_id] = (ev.account, ev.side)
                elif ev.ord_status not in (1, 2):
                    live.pop(ev.order_id, None)

    def resting_price(side: int) -> int:
        offset = rng.randint(1, LEVELS_SPAN // 2)
        return mid - offset if side > 0 else mid + offset

    for _ in range(RESTING_TARGET):
        side = rng.choice((1, -1))
        apply(
            PlaceOrder(
                ts,
                rng.randint(1, ACCOUNTS),
                symbol,
                Side(side),
                lot * rng.randint(1, 10),
                OrdType.LIMIT,
                price=resting_price(side),
            )
        )
    commands.clear()
    snapshot = engine.snapshot()
    while len(commands) < count:
        ts += 1_000
        roll = rng.randrange(100)
        ids = list(live) if roll >= 9 else []
        if roll < 9 or not ids:
            side = rng.choice((1, -1))
            price = resting_price(side) if rng.random() < 0.8 else mid + side * rng.randint(0, 5)
            apply(
                PlaceOrder(
                    ts,
                    rng.randint(1, ACCOUNTS),
                    symbol,
                    Side(side),
                    lot * rng.randint(1, 10),
                    OrdType.LIMIT,
                    price=price,
                )
            )
        elif roll < 12:
            side = rng.choice((1, -1))
            apply(
                PlaceOrder(
                    ts,
                    rng.randint(1, ACCOUNTS),
                    symbol,
                    Side(side),
                    lot * rng.randint(1, 5),
                    OrdType.LIMIT,
                    price=mid + side * LEVELS_SPAN,
                    time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL,
                )
            )
        elif roll < 18:
            order_id = rng.choice(ids)
            apply(CancelOrders(ts, live[order_id][0], (order_id,)))
        else:
            order_id = rng.choice(ids)
            account, side = live[order_id]
            apply(AmendOrder(ts, account, order_id, price=resting_price(side)))
    del setup  # the snapshot holds the funded accounts and the resting book
    return snapshot, commands


def _engine(snapshot: dict[str, object]) -> Engine:
    engine = Engine(default_catalogue())
    engine.restore(snapshot)
    return engine


def clock_overhead_ns(clock: Callable[[], int], calls: int = 100_000) -> int:
    """What one call of ``clock`` costs (the mean over ``calls``), measured by itself."""
    start = clock()
    for _ in range(calls):
        clock()
    return (clock() - start) // calls


def fills_per_command(snapshot: dict[str, object], commands: list[object]) -> list[int]:
    """How many fills (``Trade`` events) each command made, from an untimed pass."""
    engine = _engine(snapshot)
    return [
        sum(1 for ev in engine.apply(cmd) if type(ev) is Trade)  # type: ignore[arg-type]
        for cmd in commands
    ]


def _by_fills(latencies: list[int], fills: list[int]) -> dict[str, dict[str, float]]:
    groups: dict[str, list[int]] = {}
    for latency, count in zip(latencies, fills, strict=True):
        groups.setdefault(str(count) if count < 3 else "3+", []).append(latency)
    return {
        key: {
            "share": round(len(values) / len(latencies), 4),
            "p50_ns": sorted(values)[len(values) // 2],
        }
        for key, values in sorted(groups.items())
    }


def measure(
    snapshot: dict[str, object], commands: list[object], publish: bool = True
) -> dict[str, object]:
    """Two passes over the same stream, each on a fresh engine restored from the snapshot.

    1. Throughput: the whole loop under one CPU clock, no clock per command (a thread CPU clock
       is a system call, ~0.8 us here: read twice per command it cost a quarter of the figure).
    2. Latency: each command between two reads of the thread CPU clock; the percentiles are
       reported as measured and the clock's own cost beside them (``clock_overhead_ns``).
    The two passes must end at the same state hash.
    """
    # CPU time of this thread, not wall time: the figure is "one core", whatever else the
    # machine runs. Wall time is reported beside it.
    clock = time.thread_time_ns
    engine = _engine(snapshot)
    apply = engine.apply
    gc.collect()
    gc.disable()
    wall_start = time.perf_counter_ns()
    start = clock()
    for cmd in commands:
        apply(cmd, publish)  # type: ignore[arg-type]
    elapsed = clock() - start
    wall = time.perf_counter_ns() - wall_start
    gc.enable()
    throughput_hash = engine.state_hash()

    engine = _engine(snapshot)
    apply = engine.apply
    latencies = [0] * len(commands)
    gc.collect()
    gc.disable()
    for i, cmd in enumerate(commands):
        t0 = clock()
        apply(cmd, publish)  # type: ignore[arg-type]
        latencies[i] = clock() - t0
    gc.enable()
    if engine.state_hash() != throughput_hash:
        raise SystemExit("the throughput and latency passes disagree")
    by_fills = _by_fills(latencies, fills_per_command(snapshot, commands))
    latencies.sort()
    n = len(latencies)
    return {
        "publish": publish,
        "commands": n,
        "cpu_seconds": round(elapsed / 1e9, 3),
        "wall_seconds": round(wall / 1e9, 3),
        "commands_per_second": round(n / (elapsed / 1e9)),
        "commands_per_wall_second": round(n / (wall / 1e9)),
        "latency_cpu_ns_p50": latencies[n // 2],
        "latency_cpu_ns_p99": latencies[n * 99 // 100],
        "latency_cpu_ns_p999": latencies[n * 999 // 1000],
        "clock_overhead_ns": clock_overhead_ns(clock),
        "latency_cpu_ns_p50_by_fills": by_fills,
        "resting_orders_end": len(engine.state.orders),
        "levels_end": sum(
            len(m.book.bids.prices) + len(m.book.asks.prices) for m in engine.state.markets.values()
        ),
    }


def _child(args: argparse.Namespace, build: str) -> dict[str, object]:
    """The same measurement in a child process running ``build`` (PERPETUA_CORE)."""
    env = dict(os.environ, PERPETUA_CORE=build)
    result = subprocess.run(
        [
            sys.executable,
            __file__,
            "--commands",
            str(args.commands),
            "--symbol",
            args.symbol,
            "--seed",
            str(args.seed),
            "--mode",
            "here",
            "--publish",
            str(args.publish),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, object] = json.loads(result.stdout)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=200_000)
    parser.add_argument("--symbol", default="XBTUSD")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--mode",
        choices=("both", "python", "compiled", "here"),
        default="both",
        help="the pure-Python core, the mypyc-compiled one, both, or whichever this process runs",
    )
    parser.add_argument(
        "--publish",
        type=int,
        choices=(0, 1),
        default=1,
        help="0: apply without the hot events (as recovery does), to measure what they cost",
    )
    args = parser.parse_args()
    if args.mode != "here":
        builds = ("compiled", "python") if args.mode == "both" else (args.mode,)
        figures: dict[str, object] = {"bench": "core_exchange_core_mix"}
        for build in builds:
            figures[build] = _child(args, build)
            print(
                f"{build} core: {figures[build]['commands_per_second']} commands/s "  # type: ignore[index]
                f"(load {os.getloadavg()[0]:.2f})",
                file=sys.stderr,
            )
        print(json.dumps(figures))
        return
    print(f"generating {args.commands} commands...", file=sys.stderr)
    snapshot, commands = generate(args.symbol, args.commands, args.seed)
    print("measuring...", file=sys.stderr)
    result = measure(snapshot, commands, bool(args.publish))
    mix: dict[str, int] = {}
    for cmd in commands:
        name = type(cmd).__name__
        if isinstance(cmd, PlaceOrder):
            name = "IOC" if cmd.time_in_force == TimeInForce.IMMEDIATE_OR_CANCEL else "GTC"
        mix[name] = mix.get(name, 0) + 1
    import perpetua

    figures = {
        "bench": "core_exchange_core_mix",
        "symbol": args.symbol,
        "python": sys.version.split()[0],
        "core_build": getattr(perpetua, "CORE_BUILD", "unknown"),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "mix": mix,
        **result,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
