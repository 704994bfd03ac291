"""Tidy rules, checked on the source's syntax tree (nothing is imported or run).

In `src/perpetua/core/**/*.py` (pure, deterministic, integer-only; see docs/development.md):
- `float` as a name, float or complex literals, and the true division operator `/` (and `/=`);
  core divides with `//` or the `mul_div_*` helpers, which state their rounding;
- imports of clocks, randomness, concurrency and I/O (`BANNED_CORE_IMPORTS`), and of any
  third-party module except `ALLOWED_CORE_THIRD_PARTY`;
- calls to `print`, `open`, `input`; bare `assert` (it vanishes under `-O`: use `invariant()`);
- functions over `FUNCTION_LINES_MAX` lines, modules over `MODULE_LINES_MAX` lines.

In all of `src/perpetua`: no `print(` outside `cli.py` (core's files are covered by the core rule).

The first half of this file is the checker; the tests at the bottom run it on the tree and on
synthetic snippets, one per rule, so each rule is shown to fail when it should.
"""

import ast
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "perpetua"
CORE = SRC / "core"

FUNCTION_LINES_MAX = 80
MODULE_LINES_MAX = 1000
BANNED_CORE_IMPORTS = frozenset(
    {
        "time",
        "datetime",
        "random",
        "secrets",
        "asyncio",
        "threading",
        "os",
        "socket",
        "uuid",
        "decimal",
    }
)
ALLOWED_CORE_THIRD_PARTY = frozenset({"sortedcontainers"})
BANNED_CORE_CALLS = frozenset({"print", "open", "input"})
PRINT_ALLOWED_FILES = frozenset({"cli.py"})  # relative to src/perpetua

RULES = (
    "float-name",
    "float-literal",
    "true-division",
    "banned-import",
    "third-party-import",
    "banned-call",
    "bare-assert",
    "function-too-long",
    "module-too-long",
    "print-outside-cli",
)


class Violation(NamedTuple):
    path: str
    line: int
    rule: str
    detail: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.detail}"


def _imported_top_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[0] for alias in node.names]
    if node.level > 0 or node.module is None:
        return []  # relative import: stays inside the package
    return [node.module.split(".")[0]]


def _check_core_import(node: ast.Import | ast.ImportFrom, path: str) -> list[Violation]:
    found = []
    for name in _imported_top_names(node):
        if name in BANNED_CORE_IMPORTS:
            found.append(Violation(path, node.lineno, "banned-import", f"import of {name}"))
        elif name == "perpetua" or name in ALLOWED_CORE_THIRD_PARTY:
            continue  # perpetua.* is test_layering's business
        elif name not in sys.stdlib_module_names:
            found.append(Violation(path, node.lineno, "third-party-import", f"import of {name}"))
    return found


def _check_core_node(node: ast.AST, path: str) -> list[Violation]:
    line = getattr(node, "lineno", 0)
    if isinstance(node, ast.Name) and node.id == "float":
        return [Violation(path, line, "float-name", "float is banned in core")]
    if isinstance(node, ast.Constant) and isinstance(node.value, float | complex):
        return [Violation(path, line, "float-literal", f"literal {node.value!r}")]
    if isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.Div):
        return [Violation(path, line, "true-division", "use // or a mul_div_* helper")]
    if isinstance(node, ast.Import | ast.ImportFrom):
        return _check_core_import(node, path)
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in BANNED_CORE_CALLS
    ):
        return [Violation(path, line, "banned-call", f"call to {node.func.id}()")]
    if isinstance(node, ast.Assert):
        return [Violation(path, line, "bare-assert", "use invariant(), assert vanishes under -O")]
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        length = (node.end_lineno or node.lineno) - node.lineno + 1
        if length > FUNCTION_LINES_MAX:
            detail = f"{node.name}() has {length} lines, max {FUNCTION_LINES_MAX}"
            return [Violation(path, line, "function-too-long", detail)]
    return []


def check_core_source(source: str, path: str) -> list[Violation]:
    """Violations of the core rules in one module's source."""
    tree = ast.parse(source, filename=path)
    found = []
    line_count = len(source.splitlines())
    if line_count > MODULE_LINES_MAX:
        detail = f"{line_count} lines, max {MODULE_LINES_MAX}"
        found.append(Violation(path, 1, "module-too-long", detail))
    for node in ast.walk(tree):
        found.extend(_check_core_node(node, path))
    return sorted(found)


def check_print_source(source: str, path: str) -> list[Violation]:
    """`print(` calls in a module outside core that may not print."""
    tree = ast.parse(source, filename=path)
    return sorted(
        Violation(path, node.lineno, "print-outside-cli", "print() only in cli.py")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    )


def check_tree(src: Path) -> list[Violation]:
    core = src / "core"
    found = []
    for file in sorted(src.rglob("*.py")):
        relative = file.relative_to(src)
        path = str(file.relative_to(src.parent.parent))
        source = file.read_text(encoding="utf-8")
        if file.is_relative_to(core):
            found.extend(check_core_source(source, path))
        elif relative.as_posix() not in PRINT_ALLOWED_FILES:
            found.extend(check_print_source(source, path))
    return found


# --- the tree -----------------------------------------------------------------------------------


def test_source_tree_is_tidy() -> None:
    assert CORE.is_dir(), f"missing {CORE}"
    violations = check_tree(SRC)
    assert not violations, "tidy rules broken:\n" + "\n".join(map(str, violations))


# --- the checker itself -------------------------------------------------------------------------


def _long_function(body_lines: int) -> str:
    return "def f():\n" + "    x = 1\n" * (body_lines - 1)


CORE_BAD = [
    ("float-name", "x: float = 1\n"),
    ("float-name", "y = float('1')\n"),
    ("float-literal", "x = 1.5\n"),
    ("float-literal", "x = 1e3\n"),
    ("float-literal", "x = 2j\n"),
    ("true-division", "x = 7 / 2\n"),
    ("true-division", "x = 7\nx /= 2\n"),
    ("banned-import", "import time\n"),
    ("banned-import", "from datetime import datetime\n"),
    ("banned-import", "import os.path\n"),
    ("banned-import", "from decimal import Decimal\n"),
    ("third-party-import", "import msgspec\n"),
    ("third-party-import", "from numpy import array\n"),
    ("banned-call", "print('x')\n"),
    ("banned-call", "f = open('x')\n"),
    ("banned-call", "s = input()\n"),
    ("bare-assert", "assert 1 == 1\n"),
    ("function-too-long", _long_function(FUNCTION_LINES_MAX + 1)),
    ("module-too-long", "x = 1\n" * (MODULE_LINES_MAX + 1)),
]

CORE_GOOD = [
    "x = 7 // 2\n",
    "x = 7\nx //= 2\n",
    "import sortedcontainers\nfrom sortedcontainers import SortedDict\n",
    "from typing import NamedTuple\nimport enum\nimport hashlib\n",
    "from perpetua.core.invariant import invariant\nfrom . import units\n",
    "x = 'float 1.5 / 2'\n",
    _long_function(FUNCTION_LINES_MAX),
    "x = 1\n" * MODULE_LINES_MAX,
]


@pytest.mark.parametrize(("rule", "source"), CORE_BAD)
def test_core_rule_fails_on_bad_source(rule: str, source: str) -> None:
    violations = check_core_source(source, "snippet.py")
    assert [v.rule for v in violations] == [rule], violations


@pytest.mark.parametrize("source", CORE_GOOD)
def test_core_rules_pass_good_source(source: str) -> None:
    assert check_core_source(source, "snippet.py") == []


def test_print_rule_fails_outside_cli() -> None:
    violations = check_print_source("def f():\n    print('x')\n", "gateway/app.py")
    assert [(v.path, v.line, v.rule) for v in violations] == [
        ("gateway/app.py", 2, "print-outside-cli")
    ]
    assert check_print_source("log.info('x')\n", "gateway/app.py") == []


def test_violation_names_file_line_and_rule() -> None:
    (violation,) = check_core_source("x = 1\n\ny = x / 2\n", "core/units.py")
    assert str(violation).startswith("core/units.py:3: true-division:")


def test_check_tree_applies_core_rules_in_core_and_print_rule_elsewhere(tmp_path: Path) -> None:
    src = tmp_path / "src" / "perpetua"
    (src / "core").mkdir(parents=True)
    (src / "gateway").mkdir()
    (src / "core" / "book.py").write_text("x = 1 / 2\nprint(x)\n")
    (src / "gateway" / "app.py").write_text("import time\nprint(time.time())\n")
    (src / "cli.py").write_text("print('usage')\n")
    found = {(v.path, v.line, v.rule) for v in check_tree(src)}
    assert found == {
        ("src/perpetua/core/book.py", 1, "true-division"),
        ("src/perpetua/core/book.py", 2, "banned-call"),
        ("src/perpetua/gateway/app.py", 2, "print-outside-cli"),
    }


def test_every_rule_has_a_failing_example() -> None:
    shown = {rule for rule, _ in CORE_BAD} | {"print-outside-cli"}
    assert shown == set(RULES)
