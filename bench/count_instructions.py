"""Instructions spent inside ``Engine.apply`` on a fixed stream, counted by valgrind callgrind.

Instruction counts do not move with the machine's load, so a change to the core can be measured
on a busy shared machine: run this before and after, compare. Two streams:

- ``mixed``: bench_mixed.py's mixed-v1-shaped workload (20,000 orders by default) on XBTUSDT,
  every trader funded first (the deposits are not counted);
- ``core``: bench_core.py's exchange-core mix (``--commands``, XBTUSD, seed 7) applied to an
  engine restored from its starting snapshot.

Compiled core: callgrind collects only inside ``CPyDef_engine___Engine___apply`` (mypyc's name
for the method), so set-up, the stream's generation and the loop are not counted. Pure core
(``PERPETUA_CORE=python``): the whole run, less the same run with ``--dry`` (everything but the
apply loop): pass ``--pure``. Prints one JSON object with the count, per command, and the state
hash at the end (which must be the same for both builds).

    .venv/bin/python bench/count_instructions.py mixed [--orders 20000] [--publish 0|1]
    .venv/bin/python bench/count_instructions.py core [--commands 20000]
    PERPETUA_CORE=python .venv/bin/python bench/count_instructions.py mixed --pure

With ``--inner`` the script is the child valgrind runs: it builds the stream and applies it.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

APPLY_SYMBOL = "CPyDef_engine___Engine___apply"


def _stream(kind: str, count: int) -> tuple[object, list[object]]:
    """(an engine ready for the stream, the stream)."""
    from perpetua.core.catalogue import default_catalogue
    from perpetua.core.engine import Engine

    if kind == "core":
        from bench_core import generate

        snapshot, commands = generate("XBTUSD", count, 7)
        engine = Engine(default_catalogue())
        engine.restore(snapshot)
        return engine, commands
    from bench_mixed import SYMBOL, TRADERS, generate
    from perpetua.core.commands import Deposit, PlaceOrder
    from perpetua.core.enums import OrdType, Side

    engine = Engine(default_catalogue())
    spec = next(s for s in engine.instruments if s.symbol == SYMBOL)
    for trader in range(1, TRADERS + 1):
        engine.apply(Deposit(1, trader, spec.settl_currency, 10**15, f"mixed-{trader}"))
    commands: list[object] = [
        PlaceOrder(
            2 + i,
            trader,
            SYMBOL,
            Side(side),
            lots * spec.lot_size,
            OrdType.LIMIT if price is not None else OrdType.MARKET,
            price=price,
        )
        for i, (trader, side, lots, price) in enumerate(generate(count))
    ]
    return engine, commands


def inner(kind: str, count: int, publish: bool, dry: bool) -> None:
    engine, commands = _stream(kind, count)
    apply = engine.apply  # type: ignore[attr-defined]
    if not dry:
        for command in commands:
            apply(command, publish)
    print(json.dumps({"state_hash": engine.state_hash(), "commands": len(commands)}))  # type: ignore[attr-defined]


def _callgrind(args: argparse.Namespace, dry: bool, toggle: bool) -> tuple[int, dict[str, object]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
        if toggle:
            cmd.append(f"--toggle-collect={APPLY_SYMBOL}")
        cmd += [sys.executable, __file__, args.kind, "--inner", "--publish", str(args.publish)]
        cmd += ["--orders", str(args.orders), "--commands", str(args.commands)]
        if dry:
            cmd.append("--dry")
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        match = re.search(r"Collected : (\d+)", done.stderr)
        if match is None:
            raise SystemExit(f"no count in valgrind's output:\n{done.stderr[-2000:]}")
        if args.keep:
            Path(args.keep).write_bytes(out.read_bytes())
        return int(match.group(1)), json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=("mixed", "core"))
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--publish", type=int, default=1, help="1: build events (default)")
    parser.add_argument("--pure", action="store_true", help="count the whole run less a dry run")
    parser.add_argument("--keep", help="keep the callgrind output file here")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dry", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    count = args.orders if args.kind == "mixed" else args.commands
    if args.inner:
        inner(args.kind, count, bool(args.publish), args.dry)
        return
    import perpetua

    build = getattr(perpetua, "CORE_BUILD", "unknown")
    if args.pure:
        total, info = _callgrind(args, dry=False, toggle=False)
        base, _ = _callgrind(args, dry=True, toggle=False)
        instructions = total - base
    else:
        instructions, info = _callgrind(args, dry=False, toggle=True)
    commands = int(info["commands"])  # type: ignore[call-overload]
    print(
        json.dumps(
            {
                "stream": args.kind,
                "core_build": build,
                "publish": bool(args.publish),
                "commands": commands,
                "instructions": instructions,
                "instructions_per_command": round(instructions / commands),
                "state_hash": info["state_hash"],
                "load_average_1m": round(os.getloadavg()[0], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
