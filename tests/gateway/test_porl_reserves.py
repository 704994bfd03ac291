"""The operator's cold-wallet flow over the routes, on a real anvil: ask the message for a
height, sign it offline, import the signature (a wrong one is refused), publish the snapshot at
that height; the reserves file verifies against the node and the solvency report is beside it."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from starlette.testclient import TestClient

from perpetua.chain.rpc import JsonRpc
from perpetua.cli import main
from perpetua.core.commands import Deposit
from perpetua.gateway import GatewayConfig, MemoryAccounts, create_app
from perpetua.gateway.history import History
from perpetua.gateway.ratelimit import RateLimitConfig
from perpetua.sequencer.runner import Sequencer
from perpetua.services.porl.reserves import EvmReserveChain, ReserveAddress, StaticReserveAddresses
from perpetua.services.porl.service import ProofService, Reserves
from perpetua.services.server_key import load_server_key
from tests.chain.fixtures import anvil, anvil_rpc  # noqa: F401
from tests.gateway.harness import ALICE, OPERATOR_KEY, read_models
from tests.services.porl.test_reserves import ETH, pay

pytestmark = pytest.mark.slow  # a real anvil process

ADMIN = {"x-operator-key": OPERATOR_KEY}


@pytest.fixture
def venue(tmp_path: Path, anvil_rpc: JsonRpc) -> Iterator[tuple[TestClient, Sequencer, object]]:  # noqa: F811
    from perpetua.chain.anvil import DEV_FUNDER_KEY

    cold = Account.create()
    pay(anvil_rpc, DEV_FUNDER_KEY, cold.address, 7 * ETH)
    data_dir = tmp_path / "data"
    sequencer = Sequencer.open(data_dir)
    book = StaticReserveAddresses([ReserveAddress(cold.address, "cold", "Gwei")])
    reserves = Reserves(book, EvmReserveChain(anvil_rpc), None)
    proofs = ProofService(data_dir, load_server_key(data_dir), sequencer, reserves=reserves)
    config = GatewayConfig(operator_key=OPERATOR_KEY, rate_limits=RateLimitConfig(enabled=False))
    with read_models() as projector:
        app = create_app(
            config, sequencer, History.over(projector.projector), MemoryAccounts(), proofs=proofs
        )
        sequencer.start()
        try:
            with TestClient(app, client=("127.0.0.1", 50000)) as client:
                yield client, sequencer, cold
        finally:
            sequencer.stop()


def test_cold_signature_flow(venue, anvil_rpc: JsonRpc, anvil, tmp_path: Path) -> None:  # noqa: F811
    client, sequencer, cold = venue
    sequencer.execute(Deposit(0, ALICE, "Gwei", 8 * 10**9, "g1"))
    height = anvil_rpc.block_number()
    asked = client.get(f"/api/v1/admin/porl/message?height={height}", headers=ADMIN)
    assert asked.status_code == 200, asked.text
    message = asked.json()["message"]
    assert f"height: {height}" in message and asked.json()["unsigned"] == [cold.address]
    assert client.get(f"/api/v1/admin/porl/message?height={height}").status_code == 403

    def signature(key: bytes, text: str) -> str:
        signed: bytes = Account.sign_message(encode_defunct(text=text), private_key=key).signature
        return "0x" + signed.hex().removeprefix("0x")

    wrong = {"height": height, "address": cold.address,
             "signature": signature(Account.create().key, message)}  # fmt: skip
    refused = client.post("/api/v1/admin/porl/signature", json=wrong, headers=ADMIN)
    assert refused.status_code == 400
    right = {**wrong, "signature": signature(cold.key, message)}
    assert client.post("/api/v1/admin/porl/signature", json=right, headers=ADMIN).status_code == 200

    beyond = client.post("/api/v1/admin/porl/snapshot", json={"height": height + 50}, headers=ADMIN)
    assert beyond.status_code == 400 and "tip" in beyond.json()["error"]["message"]
    taken = client.post("/api/v1/admin/porl/snapshot", json={"height": height}, headers=ADMIN)
    assert taken.status_code == 200, taken.text
    row = client.get("/api/v1/porl/snapshots").json()[0]
    reserves = client.get(row["reservesUrl"]).json()
    assert reserves["totals"] == {"Gwei": 7 * 10**9} and reserves["unsigned"] == {}
    solvency = client.get(row["solvencyUrl"]).json()["currencies"]
    assert solvency == [
        {
            "currency": "Gwei", "reserves": 7 * 10**9, "liabilities": 8 * 10**9,
            "ratio": "0.875000", "difference": -(10**9), "negativeEquity": 0,
            "pendingWithdrawals": 0,
        }
    ]  # fmt: skip
    path = tmp_path / "reserves.json"
    path.write_text(json.dumps(reserves))
    assert main(["verify-reserves", "--reserves", str(path), "--rpc", anvil.url]) == 0
