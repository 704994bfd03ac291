"""The projector's CPU per command on the REST bench's shape of traffic, SQLite read models.

bench_gateway.py's REST phase places signed IOC limit orders that rest nowhere: each command is
an accepted order cancelled unfilled (two ``OrderEvent``s: an ``executions`` row each, one
``orders`` row). In a single-process venue the projector thread does this work on the same
GIL as the requests, so its CPU per command comes off the REST figure (decisions §31, §33).

Here an engine (the build this process runs) applies ``--commands`` such orders from 64
funded accounts, and a fresh ``Projector`` over a fresh SQLite file in a temporary directory
projects the records in chunks of ``--chunk`` (the linger gathers about that many under load).
The figure is CPU time of this thread per command (row building, the INSERTs, the commit), the
median of ``--repeat`` runs, each on a fresh database. Prints one JSON object.

    .venv/bin/python bench/bench_projector.py [--commands 20000] [--chunk 64] [--repeat 3]
"""

import argparse
import json
import os
import statistics
import tempfile
import time

from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit, PlaceOrder
from perpetua.core.engine import Engine
from perpetua.core.enums import OrdType, Side, TimeInForce
from perpetua.store.database import migrate, open_engine
from perpetua.store.projector import Projector, Record

SYMBOL = "XBTUSD"
ACCOUNTS = 64
T0 = 1_767_225_600_000_000_000
PRICE_TICKS = 190_000  # 19,000.0: a buy below the (empty) book's reach, cancelled as an IOC


def records(count: int) -> list[Record]:
    engine = Engine(default_catalogue())
    spec = next(s for s in engine.instruments if s.symbol == SYMBOL)
    out: list[Record] = []
    seq = 0
    for account in range(1, ACCOUNTS + 1):
        seq += 1
        command = Deposit(T0 + seq, account, spec.settl_currency, 10**12, f"bench-{account}")
        out.append((seq, T0 + seq, command, engine.apply(command)))
    for i in range(count):
        seq += 1
        command = PlaceOrder(
            T0 + seq, 1 + i % ACCOUNTS, SYMBOL, Side.BUY, 100, OrdType.LIMIT,
            price=PRICE_TICKS + i % 50, time_in_force=TimeInForce.IMMEDIATE_OR_CANCEL,
        )  # fmt: skip
        out.append((seq, T0 + seq, command, engine.apply(command)))
    return out


def measure(stream: list[Record], measured: int, chunk: int) -> float:
    """CPU seconds of this thread projecting the last ``measured`` records of ``stream``."""
    with tempfile.TemporaryDirectory(prefix="bench-projector-") as tmp:
        sql = open_engine(f"sqlite:///{os.path.join(tmp, 'read-models.sqlite3')}")
        migrate(sql)
        projector = Projector(sql)
        setup = len(stream) - measured
        projector.project(stream[:setup])
        start = time.thread_time()
        for at in range(setup, len(stream), chunk):
            projector.project(stream[at : at + chunk])
        elapsed = time.thread_time() - start
        sql.dispose()
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    stream = records(args.commands)
    events = sum(len(r[3]) for r in stream[-args.commands :])
    runs = [measure(stream, args.commands, args.chunk) for _ in range(args.repeat)]
    seconds = statistics.median(runs)
    print(
        json.dumps(
            {
                "bench": "projector",
                "commands": args.commands,
                "events_per_command": round(events / args.commands, 2),
                "chunk": args.chunk,
                "cpu_us_per_command": round(seconds / args.commands * 1e6, 2),
                "commands_per_cpu_s": round(args.commands / seconds),
                "runs_cpu_s": [round(r, 3) for r in runs],
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
