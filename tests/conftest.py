"""Loaded by pytest before any test module.

`perpetua.chain` is imported first so that eth-account (whose py_ecc raises the interpreter's
recursion limit to 100,000 at import) is loaded under the package's guard, which puts the limit
back; test modules that import eth_account directly then find it already loaded. With the limit
raised, msgspec decodes deeply nested JSON into a C stack overflow (tests/gateway/
test_input_bounds.py would segfault the whole run instead of seeing the gateway's 400).
"""

import perpetua.chain  # noqa: F401
