"""Importing the chain package (and so eth-account, whose py_ecc raises the recursion limit to
100,000) leaves the interpreter's recursion limit alone: with it raised, msgspec walks deeply
nested JSON into a C stack overflow, a segfault instead of the gateway's 400."""

import subprocess
import sys

import pytest

# Each first import in a fresh interpreter: whichever module pulls eth-account in first.
FIRST_IMPORTS = (
    "perpetua.runtime.venue",
    "perpetua.chain.evm",
    "perpetua.services.porl.reserves",
    "perpetua.services.porl.wallet_reserves",
    "perpetua.cli",
)


@pytest.mark.parametrize("module", FIRST_IMPORTS)
def test_the_recursion_limit_survives_importing(module: str) -> None:
    code = (
        "import sys; before = sys.getrecursionlimit(); "
        f"import {module}; "
        "print(before, sys.getrecursionlimit())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    before, after = done.stdout.split()
    assert before == after


def test_only_the_chain_package_imports_eth_account() -> None:
    """The guard in perpetua/chain/__init__.py works only if eth-account comes in through it."""
    import ast
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "src" / "perpetua"
    offenders = []
    for path in src.rglob("*.py"):
        if path.is_relative_to(src / "chain"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n.split(".")[0] in {"eth_account", "py_ecc"} for n in names):
                offenders.append(str(path.relative_to(src)))
    assert offenders == []
