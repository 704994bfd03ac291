"""The sequencer: throughput with the journal on vs off, fsync latency, batch sizes, recovery.

1. Throughput. bench_core's generate() records the exchange-core mix (9% GTC, 3% IOC, 6% cancel,
   82% amend) from a starting book. Each mode starts an engine from that book and a Sequencer
   over it; one producer thread submits every command as fast as it can (submit_callback;
   on Overloaded it sleeps 0.2 ms and retries), and the clock stops when a final command
   submitted after them all is durable. Modes:
     - journal_always: FsyncPolicy.ALWAYS, group commit, pipelining (the production setting);
     - journal_always_unpipelined: the same with pipeline_batches_max=1;
     - journal_none: the journal written, never synced (FsyncPolicy.NONE);
     - journal_off: no journal at all (NullJournal): the reference for the ratio.
   ratio = journal_always / journal_off (target >= 0.7); also reported against journal_none.
   Modes run --repeat times, interleaved; each reports its best run (and all of them).
   The null_engine_* modes run the same stream through an engine that applies nothing: the
   sequencer's own ceiling (stamp, encode, number, journal, release), journal on and off.
   Commit latency is one write + one fsync of a batch, as the committer saw it.
2. Recovery. The journal_always data dir (a snapshot at seq 0 holding the starting book, then
   the journal) is recovered with `recover` (snapshot, journal scan, decode, apply; no audit):
   commands per second of the whole recovery and of its replay loop. Then the parts alone:
   journal read (iter_records), read + decode, decode, and engine apply of the decoded
   commands, to show what bounds it. Best of --repeat for each.

The data dirs live under bench/results/ (the repository's disk; a tmpfs would make fsync free)
and are removed afterwards. Prints one JSON object; progress goes to stderr. The garbage
collector is off while a mode is measured, as in bench_core.

    .venv/bin/python bench/bench_sequencer.py [--commands 200000] [--seed 7]
"""

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import generate  # noqa: E402
from perpetua.core.catalogue import default_catalogue  # noqa: E402
from perpetua.core.commands import Tick  # noqa: E402
from perpetua.core.engine import Engine  # noqa: E402
from perpetua.sequencer import (  # noqa: E402
    FsyncPolicy,
    JournalConfig,
    NullJournal,
    Overloaded,
    Sequencer,
    SequencerConfig,
    decode_command,
    iter_records,
    open_journal,
    recover,
)
from perpetua.sequencer.recovery import data_paths, write_engine_snapshot  # noqa: E402

RESULTS_DIR = Path(__file__).resolve().parent / "results"
OVERLOADED_SLEEP_S = 0.0002
RESULT_TIMEOUT_S = 600.0


def percentile(sorted_values: list[int], fraction: float) -> int:
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


class NullEngine(Engine):
    """Applies nothing: measures the sequencer's own cost per command (its ceiling)."""

    def apply(self, command: Any) -> list[object]:
        self.state.ts_ns = command.ts_ns
        return []


def start_engine(image: dict[str, object]) -> Engine:
    engine = Engine(default_catalogue())
    engine.restore(image)
    return engine


def produce(sequencer: Sequencer, commands: list[Any]) -> int:
    """Submit everything as fast as the queue takes it; the number of Overloaded retries."""
    retries = 0
    submit = sequencer.submit_callback
    for command in commands:
        while True:
            try:
                submit(command)
                break
            except Overloaded:
                retries += 1
                time.sleep(OVERLOADED_SLEEP_S)
    return retries


def run_mode(
    name: str,
    image: dict[str, object],
    commands: list[Any],
    data_dir: Path | None,
    config: SequencerConfig,
) -> dict[str, object]:
    print(f"{name}: {len(commands)} commands...", file=sys.stderr, flush=True)
    if name.startswith("null_engine"):
        engine: Engine = NullEngine(default_catalogue())
        if data_dir is None:
            sequencer = Sequencer(engine, NullJournal(), config=config)
        else:
            journal, _ = open_journal(data_paths(data_dir).journal, config.journal)
            sequencer = Sequencer(engine, journal, config=config)
    elif data_dir is None:
        sequencer = Sequencer(start_engine(image), NullJournal(), config=config)
    else:
        snapshot_engine = start_engine(image)
        write_engine_snapshot(
            data_paths(data_dir).snapshots, 0, snapshot_engine.state_hash(), image
        )
        sequencer = Sequencer.open(
            data_dir, lambda: Engine(default_catalogue()), config=config, audit=False
        )
    batch_sizes: list[int] = []
    sequencer.subscribe_batches(lambda batch: batch_sizes.append(len(batch)))
    retries: list[int] = []
    sequencer.start()
    gc.collect()
    gc.disable()
    started = time.perf_counter()
    cpu_started = time.process_time()
    producer = threading.Thread(target=lambda: retries.append(produce(sequencer, commands)))
    producer.start()
    producer.join()
    sequencer.submit_future(Tick(0)).result(RESULT_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    gc.enable()
    latencies = sorted(sequencer.commit_latencies_ns())
    stats = sequencer.stats()
    sequencer.stop()
    sizes = sorted(batch_sizes)
    result: dict[str, object] = {
        "commands": len(commands),
        "seconds": round(elapsed, 3),
        "commands_per_second": round(len(commands) / elapsed),
        # All threads of this process (producer included): steadier than wall time on a
        # shared machine, but blind to time spent waiting for fsync.
        "commands_per_cpu_second": round(len(commands) / cpu_seconds),
        "overloaded_retries": retries[0],
        "batches": stats.batch_count,
        "batch_commands_mean": round(stats.command_count / max(1, stats.batch_count), 1),
        "batch_commands_p50": percentile(sizes, 0.5),
        "batch_commands_p99": percentile(sizes, 0.99),
        "batch_commands_max": stats.largest_batch_commands,
    }
    if data_dir is not None:
        result["commit_us"] = {
            "p50": round(percentile(latencies, 0.5) / 1000, 1),
            "p99": round(percentile(latencies, 0.99) / 1000, 1),
            "max": round((latencies[-1] if latencies else 0) / 1000, 1),
        }
        if stats.fsync is not None and stats.fsync.fsync_count:
            result["fsync_us"] = {
                "count": stats.fsync.fsync_count,
                "mean": round(stats.fsync.total_ns / stats.fsync.fsync_count / 1000, 1),
                "max": round(stats.fsync.max_ns / 1000, 1),
            }
    return result


def measure_recovery(data_dir: Path, image: dict[str, object], repeat: int) -> dict[str, object]:
    """Best of ``repeat`` for each figure: whole recovery, replay alone, and its parts."""
    print("recovery...", file=sys.stderr, flush=True)
    journal_dir = data_paths(data_dir).journal
    best: dict[str, float] = {}

    def keep(name: str, seconds: float) -> None:
        best[name] = min(seconds, best.get(name, seconds))

    for _ in range(repeat):
        gc.collect()
        gc.disable()
        started = time.perf_counter()
        engine, info = recover(data_dir, lambda: Engine(default_catalogue()), audit=False)
        keep("recover", time.perf_counter() - started)
        keep("replay", info.replay_seconds)
        started = time.perf_counter()
        payloads = [payload for _, payload in iter_records(journal_dir, 1)]
        keep("read", time.perf_counter() - started)
        started = time.perf_counter()
        decoded = [decode_command(payload) for _, payload in iter_records(journal_dir, 1)]
        keep("read_decode", time.perf_counter() - started)
        started = time.perf_counter()
        for payload in payloads:
            decode_command(payload)
        keep("decode", time.perf_counter() - started)
        fresh = start_engine(image)
        apply = fresh.apply
        started = time.perf_counter()
        for command in decoded:
            apply(command)
        keep("apply", time.perf_counter() - started)
        gc.enable()
        if fresh.state_hash() != engine.state_hash():
            raise SystemExit("replay paths disagree")
    count = info.commands_replayed
    return {
        "commands": count,
        "recover_seconds": round(best["recover"], 3),
        "recover_commands_per_second": round(count / best["recover"]),
        "replay_commands_per_second": round(count / best["replay"]),
        "journal_read_records_per_second": round(count / best["read"]),
        "journal_read_decode_records_per_second": round(count / best["read_decode"]),
        "decode_records_per_second": round(count / best["decode"]),
        "engine_apply_commands_per_second": round(count / best["apply"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=200_000)
    parser.add_argument("--symbol", default="XBTUSD")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode; the best counts")
    args = parser.parse_args()
    load_average = round(os.getloadavg()[0], 2)
    print(f"generating {args.commands} commands...", file=sys.stderr, flush=True)
    image, commands = generate(args.symbol, args.commands, args.seed)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-sequencer-", dir=RESULTS_DIR))
    no_snapshots = dict(snapshot_interval_commands=0, snapshot_on_stop=False)
    try:
        modes = {
            "journal_off": (None, SequencerConfig(**no_snapshots)),  # type: ignore[arg-type]
            "journal_none": (
                scratch / "none",
                SequencerConfig(
                    **no_snapshots, journal=JournalConfig(fsync_policy=FsyncPolicy.NONE)
                ),
            ),  # type: ignore[arg-type]
            "journal_always": (scratch / "always", SequencerConfig(**no_snapshots)),  # type: ignore[arg-type]
            "journal_always_unpipelined": (
                scratch / "unpipelined",
                SequencerConfig(**no_snapshots, pipeline_batches_max=1),
            ),  # type: ignore[arg-type]
            "null_engine_journal_off": (None, SequencerConfig(**no_snapshots)),  # type: ignore[arg-type]
            "null_engine_journal_always": (scratch / "null", SequencerConfig(**no_snapshots)),  # type: ignore[arg-type]
            "null_engine_journal_always_unpipelined": (
                scratch / "null-unpipelined",
                SequencerConfig(
                    **no_snapshots,  # type: ignore[arg-type]
                    pipeline_batches_max=1,
                ),
            ),
        }
        runs: dict[str, list[dict[str, object]]] = {name: [] for name in modes}
        for attempt in range(args.repeat):  # interleaved, so load changes hit every mode
            for name, (data_dir, config) in modes.items():
                run_dir = None if data_dir is None else data_dir / str(attempt)
                runs[name].append(run_mode(name, image, commands, run_dir, config))
        results = {
            name: max(found, key=lambda r: r["commands_per_second"])  # type: ignore[arg-type, return-value]
            for name, found in runs.items()
        }
        for name, found in runs.items():
            rates = [r["commands_per_second"] for r in found]
            results[name]["commands_per_second_all_runs"] = rates
        recovery = measure_recovery(scratch / "always" / "0", image, args.repeat)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    off = results["journal_off"]["commands_per_second"]
    always = results["journal_always"]["commands_per_second"]
    none = results["journal_none"]["commands_per_second"]
    print(
        json.dumps(
            {
                "bench": "sequencer",
                "python": sys.version.split()[0],
                "symbol": args.symbol,
                "journal_off_means": "NullJournal: no journal at all",
                **results,
                "ratio_always_vs_off": round(always / off, 3),  # type: ignore[operator]
                "ratio_always_vs_none": round(always / none, 3),  # type: ignore[operator]
                "null_engine_ratio_always_vs_off": round(
                    results["null_engine_journal_always"]["commands_per_second"]  # type: ignore[operator]
                    / results["null_engine_journal_off"]["commands_per_second"],
                    3,
                ),
                "load_average_1m_at_start": load_average,
                "recovery": recovery,
            }
        )
    )


if __name__ == "__main__":
    main()
