"""Replay: how fast recovery applies a journal tail (issue 17's target: >= 200,000 commands/s).

bench_core's generate() records the exchange-core mix (9% GTC, 3% IOC, 6% cancel, 82% amend)
from a starting book. A data dir is written from it: a snapshot at seq 0 holding the starting
book, then every command as a journal record (FsyncPolicy.NONE: the disk is not what is measured
here; bench_sequencer measures the journal). Then, --repeat times, best of each:

- ``replay``: `recover(data_dir, audit=False)`, its replay loop alone (`RecoveryInfo.
  replay_seconds`, wall time: journal read, decode, apply), as a restart runs it: no reader,
  so the engine builds no order, book, trade, transfer or position events (``publish=False``);
  beside it the whole recovery (snapshot restore included) per CPU second of this thread;
- ``replay_with_events``: the same with an ``on_record`` callback, which makes recovery build
  every event (a read model catching up reads them);
- ``apply``: the decoded commands applied to an engine restored from the snapshot, events built,
  no journal: what the core alone costs (CPU time of this thread, wall time beside it).

Every path must end at the same state hash. The garbage collector is off while timing, as in
bench_core. Prints one JSON object.

    .venv/bin/python bench/bench_replay.py [--commands 100000] [--seed 7] [--repeat 3]
"""

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import generate  # noqa: E402
from perpetua.core.catalogue import default_catalogue  # noqa: E402
from perpetua.core.commands import Command  # noqa: E402
from perpetua.core.engine import Engine  # noqa: E402
from perpetua.core.events import Event  # noqa: E402
from perpetua.sequencer import FsyncPolicy, JournalConfig, open_journal, recover  # noqa: E402
from perpetua.sequencer.codec import decode_command, encode_command  # noqa: E402
from perpetua.sequencer.recovery import data_paths, write_engine_snapshot  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def write_data_dir(data_dir: Path, image: dict[str, object], commands: list[Command]) -> str:
    """Snapshot at seq 0 and one journal record per command; returns the snapshot's hash."""
    engine = Engine(default_catalogue())
    engine.restore(image)
    state_hash = engine.state_hash()
    paths = data_paths(data_dir)
    write_engine_snapshot(paths.snapshots, 0, state_hash, image)
    journal, _ = open_journal(paths.journal, JournalConfig(fsync_policy=FsyncPolicy.NONE))
    with journal:
        for seq, command in enumerate(commands, start=1):
            journal.append(seq, encode_command(command))
            if seq % 1_000 == 0:
                journal.commit()
        journal.commit()
    return state_hash


def measure(
    data_dir: Path, image: dict[str, object], commands: list[Command], repeat: int
) -> dict[str, object]:
    factory = lambda: Engine(default_catalogue())  # noqa: E731
    decoded = [decode_command(encode_command(command)) for command in commands]
    best: dict[str, tuple[float, float]] = {}  # name -> (seconds measured, secondary seconds)
    hashes: dict[str, str] = {}

    def keep(name: str, seconds: float, other_seconds: float, state_hash: str) -> None:
        old = best.get(name)
        if old is None or seconds < old[0]:
            best[name] = (seconds, other_seconds)
        hashes[name] = state_hash

    seen = [0]

    def on_record(seq: int, command: Command, events: list[Event]) -> None:
        seen[0] += len(events)

    for _ in range(repeat):
        for name, callback in (("replay", None), ("replay_with_events", on_record)):
            gc.collect()
            gc.disable()
            cpu = time.thread_time()
            engine, info = recover(data_dir, factory, audit=False, on_record=callback)
            cpu_seconds = time.thread_time() - cpu
            gc.enable()
            if info.commands_replayed != len(commands):
                raise SystemExit(f"{name}: replayed {info.commands_replayed} of {len(commands)}")
            keep(name, info.replay_seconds, cpu_seconds, engine.state_hash())

        engine = factory()
        engine.restore(image)
        apply = engine.apply
        gc.collect()
        gc.disable()
        wall = time.perf_counter()
        cpu = time.thread_time()
        for command in decoded:
            apply(command)
        cpu_seconds = time.thread_time() - cpu
        wall_seconds = time.perf_counter() - wall
        gc.enable()
        keep("apply", cpu_seconds, wall_seconds, engine.state_hash())
    if len(set(hashes.values())) != 1:
        raise SystemExit(f"replay paths disagree: {hashes}")
    count = len(commands)
    figures: dict[str, object] = {
        "commands": count,
        "events_seen_per_command": round(seen[0] / max(1, count * repeat), 2),
    }
    for name in ("replay", "replay_with_events"):
        replay_seconds, recover_cpu_seconds = best[name]
        figures[f"{name}_commands_per_second"] = round(count / replay_seconds)
        figures[f"{name}_recover_commands_per_cpu_second"] = round(count / recover_cpu_seconds)
    cpu_seconds, wall_seconds = best["apply"]
    figures["apply_commands_per_second"] = round(count / cpu_seconds)
    figures["apply_commands_per_wall_second"] = round(count / wall_seconds)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--commands", type=int, default=100_000)
    parser.add_argument("--symbol", default="XBTUSD")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"generating {args.commands} commands...", file=sys.stderr)
    image, commands = generate(args.symbol, args.commands, args.seed)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="replay-", dir=RESULTS_DIR))
    try:
        write_data_dir(scratch / "data", image, commands)  # type: ignore[arg-type]
        print("measuring...", file=sys.stderr)
        result = measure(scratch / "data", image, commands, args.repeat)  # type: ignore[arg-type]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    import perpetua

    figures = {
        "bench": "replay_exchange_core_mix",
        "symbol": args.symbol,
        "python": sys.version.split()[0],
        "core_build": getattr(perpetua, "CORE_BUILD", "unknown"),
        "load_average_1m": round(os.getloadavg()[0], 2),
        **result,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
