"""Importing the chain package (and so eth-account, whose py_ecc raises the recursion limit to
100,000) leaves the interpreter's recursion limit alone: with it raised, msgspec walks deeply
nested JSON into a C stack overflow, a segfault instead of the gateway's 400."""

import subprocess
import sys


def test_the_recursion_limit_survives_importing_the_venue() -> None:
    code = (
        "import sys; before = sys.getrecursionlimit(); "
        "import perpetua.runtime.venue, perpetua.chain.evm, perpetua.services.porl.reserves; "
        "print(before, sys.getrecursionlimit())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    before, after = done.stdout.split()
    assert before == after
