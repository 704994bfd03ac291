"""Every third-party module the code imports is a pinned dependency in pyproject.toml.

1. `src/` imports only what `[project].dependencies` names (what `pip install perpetua` gets).
2. `tests/` and `bench/` may also import `[project.optional-dependencies].dev`.
3. Every dependency is pinned with `==` (the project's rule: pin versions).

A module installed in a developer's venv by hand passes every other test there and fails a clean
checkout at collection; this test fails first, naming the module. Modules are mapped to their
distributions with `importlib.metadata.packages_distributions`; nothing is imported.
"""

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL_MODULES = frozenset(
    {"perpetua", "tests", "bench", "bench_core", "bench_gateway", "bench_mixed", "minibook"}
)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    match = re.match(r"[A-Za-z0-9_.\-]+", spec)
    assert match is not None, spec
    return _canonical(match.group(0))


def _pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return tomllib.load(handle)


def _specs() -> tuple[list[str], list[str]]:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    return list(project["dependencies"]), list(project["optional-dependencies"]["dev"])


def _imports(folder: Path) -> dict[str, Path]:
    """Top-level module -> first file importing it, for absolute imports under `folder`."""
    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], path)
    return found


def _undeclared(folder: Path, allowed: set[str]) -> list[str]:
    distributions = packages_distributions()
    problems = []
    base = ROOT if folder.is_relative_to(ROOT) else folder
    for module, path in _imports(folder).items():
        if module in sys.stdlib_module_names or module in LOCAL_MODULES or module == "__future__":
            continue
        dists = {_canonical(d) for d in distributions.get(module, [])}
        if not dists:
            problems.append(f"{module} (imported by {path.relative_to(base)}) is not installed")
        elif not dists & allowed:
            problems.append(
                f"{module} (imported by {path.relative_to(base)}) comes from {sorted(dists)}, "
                "which pyproject.toml does not declare"
            )
    return problems


def test_src_imports_are_runtime_dependencies() -> None:
    runtime, _ = _specs()
    assert _undeclared(ROOT / "src", {_requirement_name(s) for s in runtime}) == []


def test_test_and_bench_imports_are_declared() -> None:
    runtime, dev = _specs()
    allowed = {_requirement_name(s) for s in runtime + dev}
    problems = _undeclared(ROOT / "tests", allowed) + _undeclared(ROOT / "bench", allowed)
    assert problems == []


def test_every_dependency_is_pinned() -> None:
    runtime, dev = _specs()
    assert [spec for spec in runtime + dev if "==" not in spec] == []


def test_the_check_names_an_undeclared_module(tmp_path: Path) -> None:
    (tmp_path / "uses.py").write_text("import msgspec\nfrom sortedcontainers import SortedDict\n")
    problems = _undeclared(tmp_path, {"msgspec"})
    assert len(problems) == 1 and problems[0].startswith("sortedcontainers")
