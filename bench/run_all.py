"""Run every bench/bench_*.py and collect their figures into bench/results/latest.json.

Each benchmark runs in its own process with this interpreter, from the repository root, one at a
time (so they don't compete for the machine's cores). A benchmark prints its figures as JSON on
stdout: one document, or one document per line (collected into a list). Anything for people goes
to its stderr, which is passed through. Progress is shown on stderr.

The combined file holds `meta` (interpreter, machine, git commit, times, the load average before
and after each benchmark), `results` (figures by benchmark name), `failed` (reason by benchmark
name) and `targets`: issue 17's performance targets, each with the figure measured in this run,
whether it is met, the load average beside it (None where the benchmark did not run), and for
the REST rate how far the read models were behind after it (`beside`). It is written even when
some fail; the exit status is then 1.

    python bench/run_all.py                 # all benchmarks
    python bench/run_all.py book journal    # only those whose file name contains a pattern
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
OUT_DEFAULT = BENCH_DIR / "results" / "latest.json"
TIMEOUT_S_DEFAULT = 1800


def parse_figures(stdout: str) -> object:
    """One JSON document, or one per non-empty line; ValueError if stdout is neither."""
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        pass
    lines = [line for line in stdout.splitlines() if line.strip()]
    if not lines:
        raise ValueError("printed nothing on stdout")
    try:
        return [json.loads(line) for line in lines]
    except json.JSONDecodeError as error:
        raise ValueError(f"stdout is not JSON: {error}") from None


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return result.stdout.strip()


def run_one(script: Path, timeout_s: float) -> tuple[object | None, str | None, float]:
    """(figures, failure reason, seconds taken); exactly one of the first two is None."""
    started = time.perf_counter()
    try:
        completed = subprocess.run(
            [sys.executable, str(script)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout_s:g} s", time.perf_counter() - started
    elapsed_s = time.perf_counter() - started
    if completed.returncode != 0:
        return None, f"exited with status {completed.returncode}", elapsed_s
    try:
        return parse_figures(completed.stdout), None, elapsed_s
    except ValueError as error:
        return None, str(error), elapsed_s


# Issue 17's targets: (name, benchmark, path to the figure in its JSON, comparison, target).
TARGETS: tuple[tuple[str, str, tuple[str, ...], str, float], ...] = (
    (
        "core_commands_per_s_default_build",
        "bench_core",
        ("compiled", "commands_per_second"),
        ">=",
        150_000,
    ),
    ("core_p99_ns_default_build", "bench_core", ("compiled", "latency_cpu_ns_p99"), "<=", 20_000),
    (
        "core_commands_per_s_pure_python",
        "bench_core",
        ("python", "commands_per_second"),
        ">=",
        50_000,
    ),
    ("mixed_v1_engine_vs_minimal_book", "bench_mixed", ("engine_vs_minibook",), ">=", 1.3),
    # the dedicated replay benchmark: a restart's replay loop over the exchange-core mix
    # (journal read, decode, apply without events); bench_sequencer reports it as a side figure
    ("replay_commands_per_s", "bench_replay", ("replay_commands_per_second",), ">=", 200_000),
    ("bytes_per_resting_order", "bench_memory", ("orders", "bytes_per_resting_order"), "<=", 600),
    (
        "bytes_per_open_position",
        "bench_memory",
        ("positions", "bytes_per_open_position"),
        "<=",
        1024,
    ),
    ("rest_orders_per_s", "bench_gateway", ("rest_orders_per_s",), ">=", 5_000),
    ("ack_p99_ms_at_1000_per_s", "bench_gateway", ("ack_p99_ms",), "<=", 10),
    ("ws_fanout_messages_per_s", "bench_gateway", ("ws_fanout", "messages_per_s"), ">=", 200_000),
)


# Figures printed beside a target that it depends on: a REST rate bought by leaving the read
# models behind (docs/decisions.md §31) is not the same figure as one with them current.
CONTEXT: dict[str, tuple[str, tuple[str, ...]]] = {
    "rest_orders_per_s": ("bench_gateway", ("read_models_behind_after_rest",)),
}


def _figure(results: dict[str, object], bench: str, path: tuple[str, ...]) -> object:
    value: object = results.get(bench)
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def targets(results: dict[str, object], loads: dict[str, list[float]]) -> dict[str, object]:
    """Each issue-17 target with this run's figure, met or not, and the load beside it."""
    table: dict[str, object] = {}
    for name, bench, path, op, target in TARGETS:
        value = _figure(results, bench, path)
        met = None
        if isinstance(value, (int, float)):
            met = value >= target if op == ">=" else value <= target
        entry: dict[str, object] = {
            "target": f"{op} {target:g}",
            "measured": value,
            "met": met,
            "benchmark": bench,
            "load_average_1m_before_after": loads.get(bench),
        }
        if name in CONTEXT:
            context_bench, context_path = CONTEXT[name]
            entry["beside"] = {context_path[-1]: _figure(results, context_bench, context_path)}
        table[name] = entry
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", help="run only benchmarks whose name contains one")
    parser.add_argument("--out", type=Path, default=OUT_DEFAULT, help="combined JSON file")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S_DEFAULT, help="seconds each")
    args = parser.parse_args(argv)

    scripts = sorted(BENCH_DIR.glob("bench_*.py"))
    if args.patterns:
        scripts = [s for s in scripts if any(p in s.stem for p in args.patterns)]
    if not scripts:
        print("run_all: no bench/bench_*.py matched; writing empty results", file=sys.stderr)

    meta: dict[str, object] = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "git_commit": git_commit(),
        "started_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    results: dict[str, object] = {}
    failed: dict[str, str] = {}
    durations_s: dict[str, float] = {}
    loads: dict[str, list[float]] = {}
    for index, script in enumerate(scripts, start=1):
        print(f"[{index}/{len(scripts)}] {script.name} ...", file=sys.stderr, flush=True)
        load_before = round(os.getloadavg()[0], 2)
        figures, failure, elapsed_s = run_one(script, args.timeout)
        loads[script.stem] = [load_before, round(os.getloadavg()[0], 2)]
        durations_s[script.stem] = round(elapsed_s, 3)
        if failure is None:
            results[script.stem] = figures
            progress = f"[{index}/{len(scripts)}] {script.name} ok in {elapsed_s:.1f} s"
            print(progress, file=sys.stderr)
        else:
            failed[script.stem] = failure
            print(f"[{index}/{len(scripts)}] {script.name} FAILED: {failure}", file=sys.stderr)
    meta["finished_utc"] = datetime.now(UTC).isoformat(timespec="seconds")
    meta["durations_s"] = durations_s
    meta["load_average_1m"] = loads

    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_suffix(".tmp")
    document = {
        "meta": meta,
        "results": results,
        "failed": failed,
        "targets": targets(results, loads),
    }
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(args.out)
    summary = f"{len(results)} ok, {len(failed)} failed"
    print(f"run_all: {summary}; wrote {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
