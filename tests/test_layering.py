"""Dependencies point inward (architecture §4), checked on the syntax tree, nothing imported.

1. `perpetua.core` imports nothing of ours outside `perpetua.core`.
2. `perpetua.sequencer` imports only `perpetua.core` and itself.
3. Everything else reaches the core only through its public modules, `CORE_PUBLIC_MODULES`:
   commands in, events out, and the vocabulary both are written in.

Relative imports are resolved, and `from perpetua.core import x` counts as importing
`perpetua.core.x` when that module exists, else as importing the package `perpetua.core` itself
(which is not public). Imports inside functions and `if TYPE_CHECKING:` blocks count too.
"""

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

SRC_ROOT = Path(__file__).resolve().parent.parent / "src"

# The one place that says which core modules the rest of the system may import.
CORE_PUBLIC_MODULES = (
    "perpetua.core.commands",
    "perpetua.core.events",
    "perpetua.core.reasons",
    "perpetua.core.instruments",
    "perpetua.core.catalogue",
    "perpetua.core.units",
    # the vocabulary events are written in: OrderEvent's int enums, Transfer's codes and the
    # system account ids (the read-model projector and the gateway decode them)
    "perpetua.core.enums",
    "perpetua.core.ledger",
    # trading-hours values and their pure queries (is_open): the index feeds hold TradFi
    # indices still outside the hours the instruments carry
    "perpetua.core.calendar",
    # pure margin arithmetic: the gateway derives breakEvenPrice and the ADL queue
    # (deleveragePercentile) from published positions by the core's own formulas
    "perpetua.core.risk",
)

RULES = ("core-imports-outside-core", "sequencer-imports-outside-core", "core-private-import")


class Violation(NamedTuple):
    path: str
    line: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.detail}"


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def module_name(file: Path, src_root: Path) -> tuple[str, bool]:
    """(dotted module name, whether the file is a package's __init__.py)."""
    parts = file.relative_to(src_root).with_suffix("").parts
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def imported_modules(
    source: str, module: str, is_package: bool, known_modules: frozenset[str]
) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) for every import in a module's source."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                package_parts = package.split(".")
                parent = ".".join(package_parts[: len(package_parts) - (node.level - 1)])
                base = f"{parent}.{node.module}" if node.module else parent
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if candidate in known_modules else base


def rule_broken(importer: str, imported: str) -> str | None:
    """The name of the layering rule `importer` breaks by importing `imported`, if any."""
    if not within(imported, "perpetua"):
        return None  # standard library and third party: the tidy test's business in core
    if within(importer, "perpetua.core"):
        return None if within(imported, "perpetua.core") else "core-imports-outside-core"
    if within(importer, "perpetua.sequencer"):
        if within(imported, "perpetua.core") or within(imported, "perpetua.sequencer"):
            return None
        return "sequencer-imports-outside-core"
    if within(imported, "perpetua.core") and not any(
        within(imported, public) for public in CORE_PUBLIC_MODULES
    ):
        return "core-private-import"
    return None


def check_module(
    source: str, module: str, is_package: bool, known_modules: frozenset[str], path: str
) -> list[Violation]:
    found = []
    for line, imported in imported_modules(source, module, is_package, known_modules):
        rule = rule_broken(module, imported)
        if rule is not None:
            found.append(Violation(path, line, rule, f"{module} imports {imported}"))
    return found


def check_tree(src_root: Path) -> list[Violation]:
    files = sorted((src_root / "perpetua").rglob("*.py"))
    names = {file: module_name(file, src_root) for file in files}
    known_modules = frozenset(name for name, _ in names.values())
    found = []
    for file, (module, is_package) in names.items():
        source = file.read_text(encoding="utf-8")
        path = str(file.relative_to(src_root.parent))
        found.extend(check_module(source, module, is_package, known_modules, path))
    return found


# --- the tree -----------------------------------------------------------------------------------


def test_source_tree_respects_layers() -> None:
    assert (SRC_ROOT / "perpetua" / "core").is_dir()
    violations = check_tree(SRC_ROOT)
    assert not violations, "layering broken:\n" + "\n".join(map(str, violations))


# --- the checker itself -------------------------------------------------------------------------

KNOWN = frozenset(
    {
        "perpetua",
        "perpetua.core",
        "perpetua.core.commands",
        "perpetua.core.engine",
        "perpetua.core.units",
        "perpetua.gateway",
        "perpetua.gateway.app",
        "perpetua.sequencer",
        "perpetua.sequencer.journal",
        "perpetua.transport",
    }
)

# (importing module, is it a package's __init__, source, rule broken or None)
CASES = [
    ("perpetua.core.book", False, "import perpetua.gateway.app", "core-imports-outside-core"),
    ("perpetua.core.book", False, "from .. import gateway", "core-imports-outside-core"),
    ("perpetua.core", True, "from ..transport import x", "core-imports-outside-core"),
    ("perpetua.core.book", False, "from perpetua import cli", "core-imports-outside-core"),
    ("perpetua.core.book", False, "from .units import Price", None),
    ("perpetua.core.book", False, "from perpetua.core.engine import Engine", None),
    ("perpetua.core.book", False, "import sortedcontainers", None),
    (
        "perpetua.sequencer.runner",
        False,
        "import perpetua.gateway",
        "sequencer-imports-outside-core",
    ),
    (
        "perpetua.sequencer.runner",
        False,
        "from ..transport import nats",
        "sequencer-imports-outside-core",
    ),
    ("perpetua.sequencer.runner", False, "from perpetua.core.engine import Engine", None),
    ("perpetua.sequencer.runner", False, "from .journal import Journal", None),
    ("perpetua.sequencer.runner", False, "import msgspec", None),
    (
        "perpetua.gateway.app",
        False,
        "from perpetua.core.engine import Engine",
        "core-private-import",
    ),
    ("perpetua.gateway.app", False, "from perpetua.core import Engine", "core-private-import"),
    ("perpetua.gateway.app", False, "from ..core import engine", "core-private-import"),
    (
        "perpetua.gateway.app",
        False,
        "def f():\n    import perpetua.core.book",
        "core-private-import",
    ),
    ("perpetua.cli", False, "from perpetua.core.engine import Engine", "core-private-import"),
    ("perpetua.gateway.app", False, "from perpetua.core import commands", None),
    ("perpetua.gateway.app", False, "from perpetua.core.events import Trade", None),
    ("perpetua.gateway.app", False, "import perpetua.core.units", None),
    ("perpetua.gateway.app", False, "from perpetua.sequencer.journal import Journal", None),
]


@pytest.mark.parametrize(("module", "is_package", "source", "rule"), CASES)
def test_checker(module: str, is_package: bool, source: str, rule: str | None) -> None:
    violations = check_module(source, module, is_package, KNOWN, "snippet.py")
    assert [v.rule for v in violations] == ([rule] if rule else []), violations


def test_violation_names_file_line_and_rule() -> None:
    source = "import json\nfrom perpetua.core.engine import Engine\n"
    (violation,) = check_module(source, "perpetua.gateway.app", False, KNOWN, "gateway/app.py")
    assert str(violation).startswith("gateway/app.py:2: core-private-import:")


def test_every_rule_has_a_failing_case() -> None:
    assert {rule for *_, rule in CASES if rule} == set(RULES)


def test_module_names(tmp_path: Path) -> None:
    assert module_name(tmp_path / "perpetua" / "core" / "__init__.py", tmp_path) == (
        "perpetua.core",
        True,
    )
    assert module_name(tmp_path / "perpetua" / "cli.py", tmp_path) == ("perpetua.cli", False)
