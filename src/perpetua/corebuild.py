"""Which build of the trading core runs: the mypyc-compiled one or the pure-Python sources.

1. The sources stay pure Python. The package build (setup.py) compiles them into
   ``perpetua/core/_native/`` with a stamp, ``core.sha256``, the hash of the sources it compiled.
2. ``select`` runs once, from ``perpetua/__init__.py``, before any core module is imported: it
   puts ``_native`` first on ``perpetua.core.__path__`` when the stamp equals the hash of the
   sources beside it. Compiled modules that no longer match their sources never run: the core
   falls back to the sources with a warning that says how to rebuild (``make core``).
3. ``PERPETUA_CORE`` chooses: ``auto`` (the default: compiled when available and current, else
   pure), ``compiled`` (an ImportError when it cannot), ``python`` (the sources).
4. Both builds give the same events and the same ``state_hash`` (tests/core/test_builds.py).
"""

import hashlib
import os
import sys
import warnings
from pathlib import Path

__all__ = [
    "CHOICES",
    "CORE_DIR",
    "NATIVE_DIR",
    "STAMP_NAME",
    "describe",
    "native_problem",
    "select",
    "source_hash",
]

CORE_DIR = Path(__file__).resolve().parent / "core"
NATIVE_DIR = CORE_DIR / "_native"
STAMP_NAME = "core.sha256"
CHOICES = ("auto", "compiled", "python")
ENV = "PERPETUA_CORE"

_chosen: str = ""  # "compiled" or "python" once select() ran
_reason: str = ""


def source_hash(core: Path = CORE_DIR) -> str:
    """The hash of the compiled modules' sources (setup.py's core_hash computes the same)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in core.glob("*.py") if p.name != "__init__.py"):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def native_problem() -> str:
    """'' when the compiled core is present and current, else why it cannot run."""
    stamp = NATIVE_DIR / STAMP_NAME
    if not stamp.exists():
        return "not compiled (no perpetua/core/_native; see `make core`)"
    if stamp.read_text().strip() != source_hash():
        return "compiled from older sources (run `make core` to rebuild it)"
    return ""


def select() -> str:
    """Choose the build (once per process); returns "compiled" or "python"."""
    global _chosen, _reason
    if _chosen:
        return _chosen
    wanted = os.environ.get(ENV, "auto") or "auto"
    if wanted not in CHOICES:
        raise ImportError(f"{ENV}={wanted!r}: expected one of {', '.join(CHOICES)}")
    if "perpetua.core.engine" in sys.modules:
        raise ImportError("perpetua.corebuild.select() must run before the core is imported")
    problem = "" if wanted != "python" else f"{ENV}=python"
    if wanted != "python":
        problem = native_problem()
        if problem and wanted == "compiled":
            raise ImportError(f"{ENV}=compiled, but the compiled core is {problem}")
        if problem.startswith("compiled from older"):
            warnings.warn(
                f"perpetua: the compiled core is {problem}; running the pure-Python core",
                RuntimeWarning,
                stacklevel=2,
            )
    import perpetua.core as core_package  # the package alone: its __init__ imports nothing

    if problem:
        _chosen, _reason = "python", problem
    else:
        core_package.__path__.insert(0, str(NATIVE_DIR))
        _chosen, _reason = "compiled", "mypyc"
    return _chosen


def describe() -> str:
    """One line for people: which core runs and why."""
    chosen = select()
    if chosen == "compiled":
        return "core: compiled (mypyc)"
    return f"core: pure Python ({_reason})"
