"""Dependencies point inward (architecture §4), checked on the syntax tree, nothing imported.

1. `perpetua.core` imports nothing of ours outside `perpetua.core`.
2. `perpetua.sequencer` imports only `perpetua.core` and itself.
3. Everything else reaches the core only through its public modules, `CORE_PUBLIC_MODULES`:
   commands in, events out, and the vocabulary both are written in. One exception,
   `CORE_LOADER`: `perpetua.corebuild` imports the package `perpetua.core` itself (its
   `__init__` imports nothing) to choose the compiled or the pure-Python build.
4. Every package imports only packages of a lower layer (`LAYERS`) or itself: nothing sideways,
   nothing upward.
5. No import cycle between modules, anywhere.

Relative imports are resolved, and `from perpetua.core import x` counts as importing
`perpetua.core.x` when that module exists, else as importing the package `perpetua.core` itself
(which is not public). Imports inside functions and `if TYPE_CHECKING:` blocks count too.
"""

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from perpetua.core import PUBLIC_MODULES

SRC_ROOT = Path(__file__).resolve().parent.parent / "src"

# The core's public surface, declared by the core itself.
CORE_PUBLIC_MODULES = PUBLIC_MODULES

# The whole order, lowest first; a package may import its own layer's package and lower ones.
# services sit above store: their tables (users, keys, KYC cases...) live in the one migrated
# database the store owns (docs/decisions.md).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("perpetua.core",),
    ("perpetua.corebuild",),  # chooses the compiled or the pure core before the core loads
    ("perpetua.sequencer",),
    ("perpetua.wire",),
    # chain: nodes and transactions (wallets); beside store and feeds
    (
        "perpetua.marketdata",
        "perpetua.store",
        "perpetua.feeds",
        "perpetua.transport",
        "perpetua.chain",
    ),
    ("perpetua.services",),
    ("perpetua.web",),  # the terminal's built files, which the gateway serves
    ("perpetua.gateway",),
    ("perpetua.runtime",),
    ("perpetua.demo",),
    ("perpetua.cli",),
)

# The module that chooses the core's build; it may import the package perpetua.core itself.
CORE_LOADER = "perpetua.corebuild"

RULES = (
    "core-imports-outside-core",
    "sequencer-imports-outside-core",
    "core-private-import",
    "layer-sideways-or-upward",
)


def layer_of(module: str) -> tuple[int, str] | None:
    """(rank, package) of the layer ``module`` belongs to; None for the root package."""
    for rank, packages in enumerate(LAYERS):
        for package in packages:
            if within(module, package):
                return rank, package
    return None


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
    if importer == CORE_LOADER and imported == "perpetua.core":
        return None
    if within(imported, "perpetua.core") and not any(
        within(imported, public) for public in CORE_PUBLIC_MODULES
    ):
        return "core-private-import"
    mine, theirs = layer_of(importer), layer_of(imported)
    if mine is None or theirs is None:
        return None  # `perpetua` itself (its __version__) is below and above everything
    if theirs[1] != mine[1] and theirs[0] >= mine[0]:
        return "layer-sideways-or-upward"
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


def import_graph(src_root: Path) -> dict[str, set[str]]:
    """Module -> the modules of ours it imports (inside functions and TYPE_CHECKING too)."""
    files = sorted((src_root / "perpetua").rglob("*.py"))
    names = {file: module_name(file, src_root) for file in files}
    known_modules = frozenset(name for name, _ in names.values())
    graph: dict[str, set[str]] = {}
    for file, (module, is_package) in names.items():
        source = file.read_text(encoding="utf-8")
        graph[module] = {
            imported
            for _, imported in imported_modules(source, module, is_package, known_modules)
            if imported in known_modules and imported != module
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


# --- the tree -----------------------------------------------------------------------------------


def test_source_tree_respects_layers() -> None:
    assert (SRC_ROOT / "perpetua" / "core").is_dir()
    violations = check_tree(SRC_ROOT)
    assert not violations, "layering broken:\n" + "\n".join(map(str, violations))


def test_no_import_cycles() -> None:
    found = cycles(import_graph(SRC_ROOT))
    assert not found, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_every_package_has_a_layer() -> None:
    packages = {
        p.name
        for p in (SRC_ROOT / "perpetua").iterdir()
        if p.is_dir() and (p / "__init__.py").exists()
    }
    packages |= {p.stem for p in (SRC_ROOT / "perpetua").glob("*.py") if p.stem != "__init__"}
    placed = {package.split(".")[1] for layer in LAYERS for package in layer}
    assert packages <= placed, f"not in LAYERS: {sorted(packages - placed)}"


def test_cycle_finder() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


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
    ("perpetua.corebuild", False, "import perpetua.core as core_package", None),
    ("perpetua.corebuild", False, "import perpetua.core.engine", "core-private-import"),
    ("perpetua.cli", False, "import perpetua.core as core_package", "core-private-import"),
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
    ("perpetua.store.schema", False, "import perpetua.gateway.app", "layer-sideways-or-upward"),
    (
        "perpetua.store.schema",
        False,
        "from perpetua.transport import x",
        "layer-sideways-or-upward",
    ),
    ("perpetua.gateway.app", False, "import perpetua.cli", "layer-sideways-or-upward"),
    ("perpetua.cli", False, "from perpetua.gateway.app import x", None),
    ("perpetua.cli", False, "from perpetua import __version__", None),
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
