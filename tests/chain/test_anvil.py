"""The local node: anvil starts on a free port, answers JSON-RPC, runs the committed USDT
contract, and stops (its pid gone)."""

from __future__ import annotations

import os

import pytest

from perpetua.chain import evm
from perpetua.chain.anvil import DEV_CHAIN_ID, DEV_FUNDER_ADDRESS, DEV_FUNDER_KEY, AnvilNode
from perpetua.chain.rpc import JsonRpc, RpcError
from tests.chain.fixtures import USDT_MINTED, start_anvil_or_skip

pytestmark = pytest.mark.slow
RECIPIENT = "0x000000000000000000000000000000000000dEaD"


def test_two_nodes_get_their_own_ports_and_stop() -> None:
    first, second = start_anvil_or_skip(), start_anvil_or_skip()
    try:
        assert first.port != second.port
        for node in (first, second):
            rpc = JsonRpc(node.url)
            assert rpc.chain_id() == DEV_CHAIN_ID
            rpc.close()
    finally:
        first.stop()
        second.stop()
    for node in (first, second):
        assert not node.running()
        with pytest.raises(ProcessLookupError):
            os.kill(node.pid, 0)
    first.stop()  # idempotent


def test_eth_transfer_signed_locally(anvil_rpc: JsonRpc) -> None:
    signed = evm.sign_transfer(
        DEV_FUNDER_KEY, chain_id=anvil_rpc.chain_id(), nonce=anvil_rpc.nonce(DEV_FUNDER_ADDRESS),
        to=RECIPIENT, amount=12345, token=None, fee_wei=evm.max_fee(anvil_rpc),
    )  # fmt: skip
    receipt = evm.send_and_wait(anvil_rpc, signed)
    assert receipt["transactionHash"] == signed.tx_hash
    assert anvil_rpc.balance(RECIPIENT) == 12345


def test_usdt_contract_transfers_and_logs(anvil_rpc: JsonRpc, usdt: str) -> None:
    assert evm.token_balance(anvil_rpc, usdt, DEV_FUNDER_ADDRESS) == USDT_MINTED
    signed = evm.sign_transfer(
        DEV_FUNDER_KEY, chain_id=anvil_rpc.chain_id(), nonce=anvil_rpc.nonce(DEV_FUNDER_ADDRESS),
        to=RECIPIENT, amount=7_000_000, token=usdt, fee_wei=evm.max_fee(anvil_rpc),
    )  # fmt: skip
    receipt = evm.send_and_wait(anvil_rpc, signed)
    block = int(receipt["blockNumber"], 16)
    logs = anvil_rpc.logs(block, block, usdt, [evm.TRANSFER_TOPIC])
    assert len(logs) == 1
    assert evm.topic_address(logs[0]["topics"][2]) == RECIPIENT
    assert int(logs[0]["data"], 16) == 7_000_000
    assert evm.token_balance(anvil_rpc, usdt, RECIPIENT) == 7_000_000


def test_rpc_errors_are_typed(anvil_rpc: JsonRpc) -> None:
    with pytest.raises(RpcError):
        anvil_rpc.send_raw("0x00")


def test_address_checks_follow_eip55() -> None:
    assert evm.is_valid_address(DEV_FUNDER_ADDRESS)
    assert evm.is_valid_address(DEV_FUNDER_ADDRESS.lower())
    i = next(i for i, c in enumerate(DEV_FUNDER_ADDRESS) if i > 1 and c.isalpha())
    broken = DEV_FUNDER_ADDRESS[:i] + DEV_FUNDER_ADDRESS[i].swapcase() + DEV_FUNDER_ADDRESS[i + 1 :]
    assert not evm.is_valid_address(broken)
    assert not evm.is_valid_address("0x1234")
    assert not evm.is_valid_address("bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh")


def test_node_object_is_a_context_manager() -> None:
    with start_anvil_or_skip() as node:
        assert isinstance(node, AnvilNode) and node.running()
    assert not node.running()


def test_committed_contract_matches_its_source() -> None:
    """chain/contracts/TetherUSD.sol compiled by the pinned npm solc is the committed artifact."""
    import shutil
    import subprocess
    from pathlib import Path

    from perpetua.chain.anvil import REPO_ROOT

    if not (REPO_ROOT / "chain" / "node_modules" / "solc").is_dir() or not shutil.which("node"):
        if os.environ.get("CI"):
            pytest.fail("chain/node_modules missing: run make chain")
        pytest.skip("solc not installed (make chain)")
    done = subprocess.run(
        ["node", str(Path(REPO_ROOT / "chain" / "compile.mjs")), "--check"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def test_the_node_dies_with_the_process_that_started_it() -> None:
    """A venue killed with SIGKILL leaves no anvil behind (PR_SET_PDEATHSIG, Linux)."""
    import signal
    import subprocess
    import sys
    import time

    code = (
        "from perpetua.chain.anvil import start_anvil; import time; "
        "n = start_anvil(); print(n.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        pytest.fail("anvil outlived its killed parent")
