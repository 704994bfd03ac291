"""The /porl routes over a real sequencer and proof service: the operator takes a snapshot, the
list shows it, the files download byte for byte, each account's nonce opens exactly its own
balance, and the nonce route answers only for the signed-in account."""

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from perpetua.core.commands import Deposit
from perpetua.gateway import GatewayConfig, MemoryAccounts, create_app
from perpetua.gateway.auth import sign
from perpetua.gateway.history import History
from perpetua.gateway.ratelimit import RateLimitConfig
from perpetua.sequencer.runner import Sequencer
from perpetua.services.porl.service import ProofService
from perpetua.services.server_key import load_server_key
from tests.gateway.harness import ALICE, BOB, OPERATOR_KEY, read_models
from tests.services.porl import independent


class Venue:
    def __init__(self, client: TestClient, sequencer: Sequencer, accounts: MemoryAccounts) -> None:
        self.client = client
        self.sequencer = sequencer
        self.alice = accounts.create_api_key(ALICE, [], key_id="alice-key", secret="a-secret")
        self.bob = accounts.create_api_key(BOB, [], key_id="bob-key", secret="b-secret")

    def get(self, path: str, key: Any = None, query: str = "") -> Any:
        target = "/api/v1" + path + (f"?{query}" if query else "")
        headers = {}
        if key is not None:
            expires = str(int(time.time()) + 60)
            headers = {
                "api-key": key.key_id,
                "api-expires": expires,
                "api-signature": sign(key.secret, "GET", target, expires, b""),
            }
        return self.client.get(target, headers=headers)

    def snapshot(self, key: str = OPERATOR_KEY, body: Any = None) -> Any:
        return self.client.post(
            "/api/v1/admin/porl/snapshot", json=body or {}, headers={"x-operator-key": key}
        )


@pytest.fixture
def venue(tmp_path: Path) -> Iterator[Venue]:
    data_dir = tmp_path / "data"
    sequencer = Sequencer.open(data_dir)
    proofs = ProofService(data_dir, load_server_key(data_dir), sequencer)
    accounts = MemoryAccounts()
    config = GatewayConfig(operator_key=OPERATOR_KEY, rate_limits=RateLimitConfig(enabled=False))
    with read_models() as projector:
        sequencer.subscribe(projector.publish)
        app = create_app(
            config, sequencer, History.over(projector.projector), accounts, proofs=proofs
        )
        sequencer.start()
        try:
            with TestClient(app, client=("127.0.0.1", 50000)) as client:
                yield Venue(client, sequencer, accounts)
        finally:
            sequencer.stop()


def test_snapshot_list_download_and_own_nonce(venue: Venue) -> None:
    venue.sequencer.execute(Deposit(0, ALICE, "XBt", 150_000, "a1"))
    venue.sequencer.execute(Deposit(0, BOB, "XBt", 42, "b1"))
    assert venue.get("/porl/snapshots").json() == []
    assert venue.snapshot(key="wrong").status_code == 403
    taken = venue.snapshot()
    assert taken.status_code == 200, taken.text
    height = taken.json()["height"]
    again = venue.snapshot(body={"height": height})
    assert again.status_code == 400 and "published already" in again.json()["error"]["message"]

    rows = venue.get("/porl/snapshots").json()
    assert [(r["height"], r["currency"], r["total"]) for r in rows] == [(height, "XBt", 150_042)]
    data = venue.client.get(rows[0]["downloadUrl"]).content
    assert data.startswith(f"block_height:{height}\n".encode())
    assert venue.client.get(rows[0]["solvencyUrl"]).json()["currencies"][0]["liabilities"] == (
        150_042
    )

    assert venue.get("/porl/nonce").status_code == 401
    for key, account, amount in ((venue.alice, ALICE, 150_000), (venue.bob, BOB, 42)):
        mine = venue.get("/porl/nonce", key).json()
        assert mine["account"] == account and mine["balance"] == amount
        assert (mine["total"], mine["height"], mine["filename"]) == (
            150_042,
            height,
            rows[0]["filename"],
        )
        nonce, account_nonce = bytes.fromhex(mine["nonce"]), bytes.fromhex(mine["accountNonce"])
        found = independent.validate(data, account, nonce=nonce)
        assert found == (amount, 150_042, rows[0]["rootDigest"])
        assert independent.validate(data, account, account_nonce=account_nonce)[0] == amount
    # the route never answers for another account
    refused = venue.get("/porl/nonce", venue.alice, query=f"account={BOB}")
    assert refused.status_code == 403
    assert venue.get("/porl/nonce", venue.alice, query=f"account={ALICE}").status_code == 200
    alice = venue.get("/porl/nonce", venue.alice).json()
    bob = venue.get("/porl/nonce", venue.bob).json()
    assert alice["accountNonce"] != bob["accountNonce"]
    assert (
        independent.validate(data, ALICE, account_nonce=bytes.fromhex(bob["accountNonce"]))[0] == 0
    )


def test_files_outside_the_published_names_are_not_served(venue: Venue) -> None:
    venue.sequencer.execute(Deposit(0, ALICE, "XBt", 7, "a1"))
    height = venue.snapshot().json()["height"]
    for path in (
        f"/porl/{height}/manifest.json",
        f"/porl/{height}/liabilities-{height}-XBt.csv",
    ):
        assert venue.client.get(path).status_code == 200
    for path in (
        f"/porl/{height}/nonces.txt",
        f"/porl/{height + 1}/manifest.json",
        "/porl/..%2Fsecrets/porl-nonces",
        f"/porl/{height}/..%2F..%2Fsecrets%2Fserver.key",
    ):
        assert venue.client.get(path).status_code == 404, path
