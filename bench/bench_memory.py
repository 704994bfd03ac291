"""Memory per resting order and per open position, at a million of each (issue 17 targets:
<= 600 bytes per resting order, <= 1 KB per open position).

Each part runs in its own child process (the build this process runs, unless PERPETUA_CORE says
otherwise) and reports the growth of the process's resident set (/proc/self/statm) over what it
adds, divided by how many it added; the collector runs before each reading. Everything goes
through ``Engine.apply`` as in production, and the events are dropped.

- orders: accounts are funded first (not counted), then ``--orders`` limit orders rest on
  XBTUSDT without crossing (bids below the mid, asks above, over 10,000 levels a side; 200 per
  account and side-free, the per-account open order limit). Counted: the orders, their book
  levels and indexes, and the margin they add to their positions.
- positions: accounts are funded first (not counted), then pairs of accounts trade once on each
  derivative market that is always open (up to ten), so every account holds one position per
  market. Counted: the positions, their margin, liquidation index entries and the ledger
  movements of the trades.

    .venv/bin/python bench/bench_memory.py [--orders 1000000] [--positions 1000000]
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import time

import perpetua
from perpetua.core.calendar import ALWAYS_OPEN
from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit, PlaceOrder
from perpetua.core.engine import Engine
from perpetua.core.enums import OrdType, Side
from perpetua.core.instruments import Payout

ORDER_SYMBOL = "XBTUSDT"
ORDERS_PER_ACCOUNT = 200  # limits.OPEN_ORDERS_PER_SYMBOL_MAX
LEVELS_PER_SIDE = 10_000
MARKETS_FOR_POSITIONS = 10
FUNDS = 10**15


def rss_bytes() -> int:
    gc.collect()
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _fund(engine: Engine, accounts: int) -> None:
    currencies = sorted({s.settl_currency for s in engine.instruments})
    for account in range(1, accounts + 1):
        for currency in currencies:
            engine.apply(Deposit(1, account, currency, FUNDS, f"m-{account}-{currency}"))


def resting_orders(count: int) -> dict[str, object]:
    engine = Engine(default_catalogue())
    spec = next(s for s in engine.instruments if s.symbol == ORDER_SYMBOL)
    accounts = -(-count // ORDERS_PER_ACCOUNT)
    _fund(engine, accounts)
    mid = 2 * LEVELS_PER_SIDE + 10
    before = rss_bytes()
    started = time.perf_counter()
    apply = engine.apply
    for i in range(count):
        side = 1 if i % 2 == 0 else -1
        offset = 1 + (i // 2) % LEVELS_PER_SIDE
        apply(
            PlaceOrder(
                2 + i,
                1 + i // ORDERS_PER_ACCOUNT,
                ORDER_SYMBOL,
                Side(side),
                spec.lot_size,
                OrdType.LIMIT,
                price=mid - side * offset,
            )
        )
    seconds = time.perf_counter() - started
    grown = rss_bytes() - before
    resting = len(engine.state.orders)
    return {
        "part": "resting_orders",
        "resting_orders": resting,
        "accounts": accounts,
        "bytes_per_resting_order": round(grown / resting),
        "rss_growth_bytes": grown,
        "seconds": round(seconds, 1),
    }


def open_positions(count: int) -> dict[str, object]:
    engine = Engine(default_catalogue())
    specs = [
        s
        for s in engine.instruments
        if s.payout in (Payout.INVERSE, Payout.LINEAR, Payout.QUANTO)
        and s.state == "Open"
        and s.trading_hours is ALWAYS_OPEN
    ][:MARKETS_FOR_POSITIONS]
    accounts = -(-count // len(specs))
    accounts += accounts % 2
    _fund(engine, accounts)
    before = rss_bytes()
    started = time.perf_counter()
    apply = engine.apply
    ts = 2
    for spec in specs:
        price = 1_000 * spec.tick_den // spec.tick_num  # ~1,000 in the quote currency
        for maker in range(1, accounts + 1, 2):
            apply(
                PlaceOrder(
                    ts, maker, spec.symbol, Side.SELL, spec.lot_size, OrdType.LIMIT, price=price
                )
            )
            apply(
                PlaceOrder(
                    ts + 1,
                    maker + 1,
                    spec.symbol,
                    Side.BUY,
                    spec.lot_size,
                    OrdType.LIMIT,
                    price=price,
                )
            )
            ts += 2
    seconds = time.perf_counter() - started
    grown = rss_bytes() - before
    positions = sum(1 for m in engine.state.markets.values() for p in m.positions.values() if p.qty)
    return {
        "part": "open_positions",
        "open_positions": positions,
        "accounts": accounts,
        "markets": [s.symbol for s in specs],
        "bytes_per_open_position": round(grown / max(positions, 1)),
        "rss_growth_bytes": grown,
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--positions", type=int, default=1_000_000)
    parser.add_argument("--part", choices=("orders", "positions"), help="one part, here")
    args = parser.parse_args()
    if args.part == "orders":
        print(json.dumps({"core_build": perpetua.CORE_BUILD, **resting_orders(args.orders)}))
        return
    if args.part == "positions":
        print(json.dumps({"core_build": perpetua.CORE_BUILD, **open_positions(args.positions)}))
        return
    figures: dict[str, object] = {"bench": "memory"}
    for part in ("orders", "positions"):
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--part",
                part,
                "--orders",
                str(args.orders),
                "--positions",
                str(args.positions),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        figures[part] = json.loads(child.stdout)
        figures[part]["load_average_1m"] = round(os.getloadavg()[0], 2)  # type: ignore[index]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
