"""Compile the pure core with mypyc into a separate tree, for benchmarks and `--fast` runs.

The source tree stays pure Python (tests import it directly); this script copies
``src/perpetua`` to ``build/fastcore/perpetua``, compiles ``perpetua/core`` there with mypyc
(the core is mypy-strict typed, standard library only) and leaves the other packages as source.
Run anything against it with ``PYTHONPATH=build/fastcore``. It rebuilds only when a core source
file changed since the last build (a content hash stamp), and shows progress on stderr.

    .venv/bin/python tools/build_fastcore.py [--force]
"""

import argparse
import hashlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "src" / "perpetua"
TARGET = ROOT / "build" / "fastcore"
STAMP = TARGET / ".core-hash"


def core_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted((SOURCE / "core").glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def build(force: bool) -> Path:
    wanted = core_hash()
    if not force and STAMP.exists() and STAMP.read_text() == wanted:
        print(f"fastcore: up to date in {TARGET}", file=sys.stderr)
        return TARGET
    if TARGET.exists():
        shutil.rmtree(TARGET)
    TARGET.mkdir(parents=True)
    shutil.copytree(SOURCE, TARGET / "perpetua",
                    ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    print("fastcore: compiling perpetua/core with mypyc (a minute or two)...", file=sys.stderr)
    started = time.monotonic()
    mypyc = Path(sys.executable).parent / "mypyc"
    result = subprocess.run([str(mypyc), "perpetua/core/"], cwd=TARGET, capture_output=True,
                            text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-4000:] + result.stderr[-4000:])
        raise SystemExit(f"fastcore: mypyc failed (exit {result.returncode})")
    compiled = sorted(p.name for p in (TARGET / "perpetua" / "core").glob("*.so"))
    STAMP.write_text(wanted)
    print(f"fastcore: {len(compiled)} modules compiled in {time.monotonic() - started:.0f} s",
          file=sys.stderr)
    return TARGET


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args()
    build(args.force)


if __name__ == "__main__":
    main()
