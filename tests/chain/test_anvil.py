"""The local node: anvil starts on a free port, answers JSON-RPC, runs the committed USDT
contract, stops (its pid gone), and is stopped by the venue, not by a Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from perpetua.chain import evm
from perpetua.chain.anvil import DEV_CHAIN_ID, DEV_FUNDER_ADDRESS, DEV_FUNDER_KEY, AnvilNode
from perpetua.chain.rpc import JsonRpc, RpcError
from tests.chain.fixtures import USDT_MINTED, start_anvil_or_skip
from tests.runtime.sessions import ctrl_c, foreground_job

pytestmark = pytest.mark.slow
RECIPIENT = "0x000000000000000000000000000000000000dEaD"
SIGINT_WAIT_S = 30.0
NODE_EXIT_WAIT_S = 1.0


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
    import subprocess
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


# A venue's side of a terminal's Ctrl-C: it catches the SIGINT sent to its whole process group,
# then (as the venue's wallet jobs would) asks the node for its chain id, and stops it.
INTERRUPTED_SCRIPT = f"""
import signal, threading, time
from perpetua.chain.anvil import start_anvil
from perpetua.chain.rpc import JsonRpc
interrupted = threading.Event()
signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set())
node = start_anvil()
print(node.pid, flush=True)
interrupted.wait({SIGINT_WAIT_S})
time.sleep({NODE_EXIT_WAIT_S})  # long enough for a node that got the SIGINT to be gone
rpc = JsonRpc(node.url)
print(interrupted.is_set(), node.running(), rpc.chain_id(), flush=True)
rpc.close()
node.stop()
"""


def test_a_ctrl_c_to_the_venues_process_group_leaves_the_node_to_the_venue() -> None:
    """Invariant 6: the SIGINT a terminal sends its foreground process group (the venue's)
    does not reach the node, which answers until the venue stops it."""
    start_anvil_or_skip().stop()  # skips here, not in the script, when anvil is missing
    with foreground_job(INTERRUPTED_SCRIPT) as venue:
        assert venue.stdout is not None
        node_pid = int(venue.stdout.readline())
        out, err = ctrl_c(venue, SIGINT_WAIT_S)
    assert venue.returncode == 0, err
    assert out.split() == ["True", "True", str(DEV_CHAIN_ID)], err
    with pytest.raises(ProcessLookupError):
        os.kill(node_pid, 0)
