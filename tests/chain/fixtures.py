"""Pytest fixtures that start a real anvil node; other test packages import them into their
conftest (``from tests.chain.fixtures import anvil, anvil_rpc  # noqa: F401``).

``anvil``: a fresh node per test (automine: one block per transaction), stopped after it.
``anvil_rpc``: a JSON-RPC client to it. ``usdt``: the committed TetherUSD deployed on it, with
1,000,000 USDT minted to the dev funder. Tests using them must be marked ``@pytest.mark.slow``
(a real process). When anvil is not installed the tests are skipped outside CI and fail in CI.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from perpetua.chain import evm
from perpetua.chain.anvil import DEV_FUNDER_ADDRESS, DEV_FUNDER_KEY, AnvilMissing, AnvilNode
from perpetua.chain.anvil import start_anvil as _start
from perpetua.chain.rpc import JsonRpc

USDT_MINTED = 1_000_000 * 1_000_000


def start_anvil_or_skip(**kwargs: object) -> AnvilNode:
    try:
        return _start(**kwargs)  # type: ignore[arg-type]
    except AnvilMissing as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))


@pytest.fixture
def anvil() -> Iterator[AnvilNode]:
    node = start_anvil_or_skip()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def anvil_rpc(anvil: AnvilNode) -> Iterator[JsonRpc]:
    rpc = JsonRpc(anvil.url)
    try:
        yield rpc
    finally:
        rpc.close()


@pytest.fixture
def usdt(anvil_rpc: JsonRpc) -> str:
    token = evm.deploy(anvil_rpc, DEV_FUNDER_KEY)
    evm.mint(anvil_rpc, DEV_FUNDER_KEY, token, DEV_FUNDER_ADDRESS, USDT_MINTED)
    return token
