"""Run every bench/bench_*.py and collect their figures into bench/results/latest.json.

Each benchmark runs in its own process with this interpreter, from the repository root, one at a
time (so they don't compete for the machine's cores). A benchmark prints its figures as JSON on
stdout: one document, or one document per line (collected into a list). Anything for people goes
to its stderr, which is passed through. Progress is shown on stderr.

The combined file holds `meta` (interpreter, machine, git commit, times), `results` (figures by
benchmark name) and `failed` (reason by benchmark name). It is written even when some fail; the
exit status is then 1.

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
    for index, script in enumerate(scripts, start=1):
        print(f"[{index}/{len(scripts)}] {script.name} ...", file=sys.stderr, flush=True)
        figures, failure, elapsed_s = run_one(script, args.timeout)
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

    args.out.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.out.with_suffix(".tmp")
    document = {"meta": meta, "results": results, "failed": failed}
    temporary.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(args.out)
    summary = f"{len(results)} ok, {len(failed)} failed"
    print(f"run_all: {summary}; wrote {args.out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
