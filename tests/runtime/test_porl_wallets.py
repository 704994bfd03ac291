"""Proof of Reserves over the venue's own wallets (``[wallets] chain = "local"``): the snapshot
lists the hot wallet (signed by its key), a deposit address handed out (signed by the key from
the deposit seed) and the cold address (its key was never kept: unsigned, not counted), with
balances at the block; the document verifies against the node."""

import os
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from perpetua.runtime.config import FeedsConfig, PorlConfig, VenueConfig, WalletsConfig
from perpetua.runtime.venue import open_venue
from perpetua.services.porl.reserves import EvmReserveChain, verify_reserves

pytestmark = pytest.mark.slow  # a real anvil process

ADMIN = {"x-operator-key": "op"}


def test_the_wallets_are_the_reserves(tmp_path: Path) -> None:
    config = VenueConfig(
        data_dir=tmp_path / "data",
        operator_key="op",
        feeds=FeedsConfig(default="none"),
        porl=PorlConfig(daily=False),  # the daily job would publish at start: this test asks
    )
    saved = os.umask(0o022)
    try:
        venue = open_venue(replace(config, wallets=WalletsConfig(chain="local")))
    finally:
        os.umask(saved)
    try:
        assert venue.chain is not None and venue.wallets is not None
        deposit = venue.wallets.book.deposit_address(1001, "Gwei", "eth")
        venue.start()
        with TestClient(venue.app) as client:
            before = venue.chain.rpc.block_number()
            taken = client.post("/api/v1/admin/porl/snapshot", json={}, headers=ADMIN)
            assert taken.status_code == 200, taken.text
            # the chain's head when asked: the local chain mines every second, so a block may
            # come between the snapshot and this read (it did once in a loaded run)
            assert before <= taken.json()["height"] <= venue.chain.rpc.block_number()
            row = client.get("/api/v1/porl/snapshots").json()
            manifest = taken.json()
            reserves = client.get(f"/porl/{manifest['height']}/{manifest['reserves']}").json()
        kinds = {(r["address"], r["kind"]) for r in reserves["addresses"]}
        assert (deposit, "deposit") in kinds
        assert {kind for _, kind in kinds} == {"hot", "deposit", "cold"}
        signed = {r["kind"] for r in reserves["addresses"] if r["signature"]}
        assert signed == {"hot", "deposit"}  # the cold key was never kept
        # the hot wallet's funding, wherever it sits: the sweeper moves the hot wallet's excess
        # to cold in the background, before or after the snapshot's block; cold is unsigned
        signed_sum, unsigned_sum = reserves["totals"], reserves["unsigned"]
        cold = {c: sum(r["balance"] for r in reserves["addresses"]
                       if r["kind"] == "cold" and r["currency"] == c)
                for c in ("Gwei", "USDt")}  # fmt: skip
        for currency, funded in (("Gwei", 1_000 * 10**9 - 10**9), ("USDt", 10_000_000 * 10**6)):
            assert unsigned_sum.get(currency, 0) == cold[currency]
            held = signed_sum[currency] + unsigned_sum.get(currency, 0)
            assert held >= funded if currency == "Gwei" else held == funded, (currency, held)
        tokens = {"USDt": venue.chain.token}
        assert verify_reserves(reserves, EvmReserveChain(venue.chain.rpc, tokens)) == []
        assert {r["height"] for r in row} == {manifest["height"]}
    finally:
        venue.stop()
