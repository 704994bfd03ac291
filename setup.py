"""Build hook: compile the trading core (src/perpetua/core) with mypyc when the package is built.

Everything else about the package is in pyproject.toml; this file only adds the compiled core.

1. The compiled modules go to ``perpetua/core/_native/`` (a plain directory, not a package),
   never beside the sources: ``perpetua.corebuild`` puts that directory first on the core's
   import path only when its stamp (``core.sha256``, written here after every module compiled)
   equals the hash of the sources it was built from. An editable install keeps running the
   sources it can see; an edited core runs pure until rebuilt (``make core``).
2. Compilation is the default. It falls back to the pure-Python core with a warning when it
   cannot (mypyc missing, type errors, no C compiler), and never fails the install for that.
   ``PERPETUA_CORE_BUILD=python`` skips it on purpose.
3. Three modules stay Python: ``__init__.py`` (it must run before the choice is made), and
   ``commands.py`` and ``events.py``, the NamedTuple declarations, whose type annotations
   the journal codec and the shape tests read (mypyc erases ``int | None`` to ``type``). They
   hold no code to speed up: a NamedTuple is built by the same ``tuple.__new__`` either way.
"""

import hashlib
import os
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
CORE = Path("src") / "perpetua" / "core"
NATIVE = "_native"  # the compiled modules' directory inside perpetua/core
GROUP = "perpetua.core.native"  # mypyc's shared library: perpetua/core/_native/native__mypyc
STAMP = "core.sha256"


INTERPRETED = ("__init__.py", "commands.py", "events.py")


def core_sources(core: Path) -> list[Path]:
    """The modules to compile."""
    return sorted(p for p in core.glob("*.py") if p.name not in INTERPRETED)


def core_hash(core: Path) -> str:
    """The hash of every source the compiled modules depend on, the interpreted declarations
    included; perpetua.corebuild.source_hash computes the same."""
    digest = hashlib.sha256()
    for path in sorted(p for p in core.glob("*.py") if p.name != "__init__.py"):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def warn(message: str) -> None:
    sys.stderr.write(f"\nWARNING: perpetua: {message}; the core runs as pure Python "
                     "(slower, same results)\n\n")


# Commands that build extensions. The build backend also runs this file only to read metadata
# (egg_info, dist_info); compiling then would only repeat mypy's minute-long pass.
_BUILDING = {"build", "build_ext", "bdist_wheel", "editable_wheel", "install", "develop"}


# The hash of the sources mypyc translates, taken before it reads them: a source edited while
# the build runs must leave a stamp that does not match (it then runs pure), not a stale build
# stamped as current.
_SOURCES_HASH: list[str] = []


def compiled_extensions() -> list[object]:
    if not _BUILDING.intersection(sys.argv[1:]):
        return []
    if os.environ.get("PERPETUA_CORE_BUILD", "") == "python":
        warn("PERPETUA_CORE_BUILD=python: not compiling the core")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as error:
        warn(f"mypyc is not available ({error})")
        return []
    _SOURCES_HASH.append(core_hash(CORE))
    try:
        return list(mypycify([str(p) for p in core_sources(CORE)], opt_level="3",
                             group_name=GROUP))
    except (Exception, SystemExit) as error:  # mypy reports type errors by exiting
        warn(f"mypyc could not compile the core ({error!r})")
        return []


class BuildCore(build_ext):
    """build_ext that puts the core's modules in _native/ and never fails the install."""

    def get_ext_fullpath(self, ext_name: str) -> str:
        path: str = super().get_ext_fullpath(ext_name)
        if ext_name.startswith("perpetua.core."):
            head, tail = os.path.split(path)
            return os.path.join(head, NATIVE, tail)
        return path

    def run(self) -> None:
        if not self.extensions:
            return
        inplace = self.inplace or getattr(self, "editable_mode", False)
        target = Path(self.build_lib) / "perpetua" / "core" / NATIVE
        shutil.rmtree(target, ignore_errors=True)  # no stamp survives a failed build
        try:
            self.inplace = False
            super().run()
        except Exception as error:  # no C compiler, a compiler error: still installable
            shutil.rmtree(target, ignore_errors=True)
            warn(f"the compiled core did not build ({error!r})")
            return
        (target / STAMP).write_text(_SOURCES_HASH[0] + "\n")
        if inplace:
            source_native = ROOT / CORE / NATIVE
            shutil.rmtree(source_native, ignore_errors=True)
            shutil.copytree(target, source_native)

    def copy_extensions_to_source(self) -> None:
        """Done in run(), with the stamp, into src/perpetua/core/_native/."""


setup(ext_modules=compiled_extensions(), cmdclass={"build_ext": BuildCore})
