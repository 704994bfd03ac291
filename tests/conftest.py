"""Loaded by pytest before any test module.

`perpetua.chain` is imported first so that eth-account (whose py_ecc raises the interpreter's
recursion limit to 100,000 at import) is loaded under the package's guard, which puts the limit
back; test modules that import eth_account directly then find it already loaded. With the limit
raised, msgspec decodes deeply nested JSON into a C stack overflow (tests/gateway/
test_input_bounds.py would segfault the whole run instead of seeing the gateway's 400).
"""

import pytest

import perpetua.chain  # noqa: F401


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with tests marked slow first, each module's tests in their own order.

    `make test` gives whole modules to two xdist workers in collection order (`--dist
    loadfile`); the slow ones (real processes, kill -9 loops, up to ~100 s a module) started
    last left one worker running alone at the end. Started first, the many short modules fill
    in behind them."""
    slow_modules = {item.path for item in items if item.get_closest_marker("slow") is not None}
    items.sort(key=lambda item: item.path not in slow_modules)  # stable: keeps each module's order
