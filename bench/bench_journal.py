"""Command journal: group-commit throughput with fsync, fsync latency, and replay speed.

1. Append + commit with FsyncPolicy.ALWAYS at batch sizes 1, 64 and 1024 records of
   ``--payload-bytes`` (default 100), each for about ``--seconds-per-batch`` seconds; records/s
   counts appends and commits together, and every commit's fsync latency is collected.
2. The same at batch 1024 with FsyncPolicy.NONE (the "journal without fsync" reference).
3. ``--replay-records`` (default 1,000,000) records are written, then read back with
   iter_records (records/s of wall and of CPU time, best of three) and scanned by open_journal
   (the recovery check).

The journal lives in a fresh directory under ``--dir`` (default bench/results/, on the disk the
repository is on; a tmpfs would make fsync free) and is removed afterwards. Prints one JSON
object on stdout; progress goes to stderr.

    .venv/bin/python bench/bench_journal.py [--seconds-per-batch 5] [--replay-records N]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from perpetua.sequencer.journal import (
    FsyncPolicy,
    JournalConfig,
    iter_records,
    open_journal,
)

BATCH_SIZES = (1, 64, 1024)
RECORDS_PER_PHASE_MAX = 2_000_000  # besides the time budget, so a fast disk still stops


def percentile_us(sorted_ns: list[int], fraction_ppm: int) -> float:
    if not sorted_ns:
        return 0.0
    index = min(len(sorted_ns) - 1, len(sorted_ns) * fraction_ppm // 1_000_000)
    return round(sorted_ns[index] / 1000, 1)


def latency_summary(latencies_ns: list[int]) -> dict[str, float]:
    ordered = sorted(latencies_ns)
    return {
        "p50_us": percentile_us(ordered, 500_000),
        "p99_us": percentile_us(ordered, 990_000),
        "max_us": round(ordered[-1] / 1000, 1) if ordered else 0.0,
    }


def run_group_commit(
    directory: Path, policy: FsyncPolicy, batch: int, payload: bytes, seconds: float
) -> tuple[dict[str, object], list[int]]:
    journal, _ = open_journal(directory, JournalConfig(fsync_policy=policy))
    latencies_ns: list[int] = []
    seq = journal.next_seq
    started = time.perf_counter()
    deadline = started + seconds
    with journal:
        for _ in range(RECORDS_PER_PHASE_MAX // batch):
            for _ in range(batch):
                journal.append(seq, payload)
                seq += 1
            journal.commit()
            if policy is FsyncPolicy.ALWAYS:
                latencies_ns.append(journal.fsync_stats.last_ns)
            if time.perf_counter() >= deadline:
                break
        elapsed = time.perf_counter() - started
        records = journal.durable_seq
        stats = journal.fsync_stats
    result: dict[str, object] = {
        "records": records,
        "commits": records // batch,
        "seconds": round(elapsed, 2),
        "records_per_s": round(records / elapsed),
    }
    if policy is FsyncPolicy.ALWAYS:
        result["fsync_mean_us"] = round(stats.total_ns / max(stats.fsync_count, 1) / 1000, 1)
        result["fsync"] = latency_summary(latencies_ns)
    return result, latencies_ns


def fill(directory: Path, count: int, payload: bytes) -> None:
    journal, _ = open_journal(directory, JournalConfig(fsync_policy=FsyncPolicy.NONE))
    with journal:
        for seq in range(1, count + 1):
            journal.append(seq, payload)
            if seq % 1024 == 0:
                journal.commit()
        journal.commit()


def time_replay(directory: Path) -> tuple[int, float, float]:
    """(records read, wall seconds, CPU seconds of this process)."""
    started, started_cpu = time.perf_counter(), time.process_time()
    count = 0
    for _seq, _payload in iter_records(directory, 1):
        count += 1
    return count, time.perf_counter() - started, time.process_time() - started_cpu


def load_average_1m() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return -1.0


def filesystem_type(path: Path) -> str:
    """The type of the mount holding path, from /proc/mounts (Linux); "unknown" elsewhere."""
    best, best_type = "", "unknown"
    try:
        lines = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return best_type
    resolved = str(path.resolve())
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and resolved.startswith(fields[1]) and len(fields[1]) > len(best):
            best, best_type = fields[1], fields[2]
    return best_type


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--payload-bytes", type=int, default=100)
    parser.add_argument("--seconds-per-batch", type=float, default=5.0)
    parser.add_argument("--replay-records", type=int, default=1_000_000)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="bench-journal-", dir=args.dir))
    payload = bytes(range(256))[: args.payload_bytes].ljust(args.payload_bytes, b"p")
    figures: dict[str, object] = {
        "bench": "journal",
        "python": sys.version.split()[0],
        "filesystem": filesystem_type(root),
        "payload_bytes": args.payload_bytes,
        "cpus": os.cpu_count(),
        "load_average_1m_at_start": load_average_1m(),  # other work on the machine skews wall time
    }
    try:
        all_latencies_ns: list[int] = []
        for batch in BATCH_SIZES:
            print(f"fsync ALWAYS, batch {batch}...", file=sys.stderr)
            result, latencies = run_group_commit(
                root / f"always-{batch}", FsyncPolicy.ALWAYS, batch, payload, args.seconds_per_batch
            )
            figures[f"always_batch_{batch}"] = result
            all_latencies_ns.extend(latencies)
        figures["fsync_latency_all_commits"] = latency_summary(all_latencies_ns)
        print("fsync NONE, batch 1024...", file=sys.stderr)
        figures["none_batch_1024"], _ = run_group_commit(
            root / "none-1024", FsyncPolicy.NONE, 1024, payload, args.seconds_per_batch
        )
        print(f"replay of {args.replay_records} records...", file=sys.stderr)
        replay_dir = root / "replay"
        fill(replay_dir, args.replay_records, payload)
        runs = [time_replay(replay_dir) for _ in range(3)]
        count = runs[0][0]
        if any(run[0] != args.replay_records for run in runs):
            raise SystemExit(f"replay read {count} records, wrote {args.replay_records}")
        started, started_cpu = time.perf_counter(), time.process_time()
        journal, report = open_journal(replay_dir)
        journal.close()
        scan_s, scan_cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
        figures["replay"] = {
            "records": count,
            "iter_records_per_s": round(count / min(run[1] for run in runs)),
            "iter_records_per_cpu_s": round(count / min(run[2] for run in runs)),
            "open_journal_scan_records_per_s": round(report.record_count / scan_s),
            "open_journal_scan_records_per_cpu_s": round(report.record_count / scan_cpu_s),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
