"""The compiled core (mypyc) and the pure-Python core are the same state machine.

Each stream runs in two child processes, one per build (``PERPETUA_CORE=compiled`` and
``=python``); both must report the build they were asked for, the same events for every command
(as values: a compiled attribute typed ``int`` keeps an IntEnum as a plain int, equal but with
another repr) and the same ``state_hash`` after every command. Streams: the property tests'
generator (every command kind, three symbols), and the exchange-core mix of bench/bench_core.py
on an inverse, a linear and a spot market.

Without a current compiled core (an install that could not compile it, or a core edited since
`make core`) the comparison is skipped, except in CI (``CI=true``), where it must exist.
"""

import hashlib
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from perpetua import corebuild
from tests.core.test_properties import streams

ROOT = Path(__file__).resolve().parents[2]

_CHILD = """
import hashlib, json, pickle, sys
import perpetua
from perpetua.core.catalogue import default_catalogue
from perpetua.core.engine import Engine
from tests.core.test_properties import CATALOGUE, run
sys.path.insert(0, "bench")
from bench_core import generate

def plain(value):
    # Compiled attributes typed int hold plain ints where the sources keep IntEnum members:
    # equal values, another repr. Events are compared as values, with their types' names.
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, [plain(v) for v in value])
    return repr(value)

streams, mixes = pickle.loads(sys.stdin.buffer.read())
report = {"build": perpetua.CORE_BUILD, "streams": [], "mixes": []}
for stream in streams:
    _, outputs, hashes = run(stream, Engine(CATALOGUE), narrate=False)
    digest = hashlib.sha256(repr(plain(outputs)).encode()).hexdigest()
    report["streams"].append([digest, hashlib.sha256("".join(hashes).encode()).hexdigest()])
for symbol, count, seed in mixes:
    snapshot, commands = generate(symbol, count, seed)
    engine = Engine(default_catalogue())
    engine.restore(snapshot)
    events = hashlib.sha256()
    states = hashlib.sha256()
    for i, command in enumerate(commands):
        events.update(repr(plain(engine.apply(command))).encode())
        if i % 50 == 0:
            states.update(engine.state_hash().encode())
    states.update(engine.state_hash().encode())
    report["mixes"].append([symbol, events.hexdigest(), states.hexdigest()])
print(json.dumps(report))
"""

MIXES = (("XBTUSD", 2_000, 1), ("XBTUSDT", 2_000, 2), ("XBT_USDT", 1_500, 3))


def _compiled_available() -> bool:
    """A compiled core built from the sources beside it (`make core` after editing the core)."""
    return corebuild.native_problem() == ""


def _run(build: str, payload: bytes) -> dict[str, object]:
    child = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=payload,
        cwd=ROOT,
        env={**os.environ, "PERPETUA_CORE": build},
        capture_output=True,
        check=False,
    )
    assert child.returncode == 0, child.stderr.decode()[-3000:]
    report: dict[str, object] = json.loads(child.stdout)
    return report


@pytest.mark.skipif(
    not _compiled_available() and os.environ.get("CI") != "true",
    reason="no current compiled core here (`make core`; CI requires one)",
)
@settings(deadline=None, max_examples=1, suppress_health_check=list(HealthCheck))
@given(st.lists(streams(), min_size=12, max_size=12))
def test_compiled_and_pure_cores_give_the_same_events_and_hashes(
    generated: list[list[tuple[int, object]]],
) -> None:
    payload = pickle.dumps((generated, MIXES))
    compiled = _run("compiled", payload)
    pure = _run("python", payload)
    assert (compiled["build"], pure["build"]) == ("compiled", "python")
    assert compiled["streams"] == pure["streams"]
    assert compiled["mixes"] == pure["mixes"]


def test_the_stamp_names_the_sources_it_was_built_from(tmp_path: Path) -> None:
    core = tmp_path / "core"
    core.mkdir()
    (core / "__init__.py").write_text("")
    (core / "a.py").write_text("x = 1\n")
    before = corebuild.source_hash(core)
    (core / "__init__.py").write_text("# the package file is never compiled\n")
    assert corebuild.source_hash(core) == before
    (core / "a.py").write_text("x = 2\n")
    assert corebuild.source_hash(core) != before
    assert before == hashlib.sha256(b"a.py\0x = 1\n").hexdigest()


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        ("python", "python"),
        ("compiled", "compiled"),
        ("auto", "compiled"),
        ("bogus", "error"),
    ],
)
def test_perpetua_core_chooses_the_build(wanted: str, expected: str) -> None:
    if expected == "compiled" and not _compiled_available():
        expected = "error" if wanted == "compiled" else "python"
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import perpetua, perpetua.core.engine as e; "
            "print(perpetua.CORE_BUILD, e.__file__.endswith('.py'))",
        ],
        cwd=ROOT,
        env={**os.environ, "PERPETUA_CORE": wanted},
        capture_output=True,
        text=True,
        check=False,
    )
    if expected == "error":
        assert child.returncode != 0 and "PERPETUA_CORE" in child.stderr
        return
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == [expected, str(expected == "python")]


@pytest.mark.skipif(not _compiled_available(), reason="no current compiled core here")
def test_an_edited_source_runs_pure_with_a_warning_not_stale_compiled(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(
        ROOT / "src" / "perpetua",
        tmp_path / "perpetua",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    book = tmp_path / "perpetua" / "core" / "book.py"
    book.write_text(book.read_text() + "\n# edited after the build\n")
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            "import perpetua, perpetua.core.book as b; "
            "print(perpetua.CORE_BUILD, b.__file__.endswith('.py'))",
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path), "PERPETUA_CORE": "auto"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["python", "True"]
    assert "make core" in child.stderr
