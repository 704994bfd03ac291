"""Proofs in the shared database (services.porl.shared, decisions §28), on PostgreSQL: a proof
published by one process is served by another (snapshots, nonce and balance, files byte for
byte); a height is published once; a nonce is made once across processes; an operator's request
is claimed by one leader, answered to the gateway that asked, and a claim a dead leader left is
taken again only once it is stale."""

import asyncio
import threading
from pathlib import Path

import pytest

from perpetua.core.commands import Deposit
from perpetua.sequencer.runner import Sequencer
from perpetua.services.porl.proof import parse_proof
from perpetua.services.porl.publication import AlreadyPublished
from perpetua.services.porl.service import ProofService
from perpetua.services.porl.shared import (
    RECLAIM_AFTER_S,
    ClusterProofs,
    SnapshotRequests,
    requests_job,
    sql_store,
)
from perpetua.services.server_key import load_server_key
from perpetua.store import migrate, open_engine
from tests.store.databases import postgres_schema_url


def test_a_proof_published_by_the_leader_is_served_by_a_gateway(tmp_path: Path) -> None:
    data_dir = tmp_path / "leader"
    key = load_server_key(data_dir)
    with postgres_schema_url() as url:
        migrate(url)
        engine = open_engine(url)
        try:
            sequencer = Sequencer.open(data_dir)
            with sequencer:
                sequencer.execute(Deposit(0, 7, "XBt", 1_000, "d1"))
                leader = ProofService(
                    data_dir, key, sequencer, store=sql_store(engine, key, data_dir)
                )
                requests = SnapshotRequests(engine)
                gateway = ClusterProofs(
                    requests, tmp_path / "gateway", key, venue="perpetua", reserves=None
                )
                # the gateway's nonce first: the leader's proof uses the same one
                nonce = gateway.nonce(7, "XBt")["accountNonce"]
                job = requests_job(leader, requests)
                stop = threading.Event()

                def lead() -> None:
                    while not stop.is_set():
                        asyncio.run(job.run_once())
                        stop.wait(0.1)

                thread = threading.Thread(target=lead)
                thread.start()
                try:
                    manifest = gateway.take_snapshot()
                    with pytest.raises(ValueError, match="published already"):
                        gateway.take_snapshot(manifest["height"])  # the leader refused it
                finally:
                    stop.set()
                    thread.join()
                with pytest.raises(AlreadyPublished):
                    leader.take_snapshot(manifest["height"])
            height = manifest["height"]
            assert [m["height"] for m in gateway.snapshots()] == [height]
            mine = gateway.nonce(7, "XBt")
            assert (mine["accountNonce"], mine["balance"], mine["height"]) == (nonce, 1_000, height)
            name = manifest["liabilities"][0]["filename"]
            served = gateway.file(str(height), name)
            assert served is not None  # the file, from the database, parsed as a proof
            assert parse_proof(served.read_text("ascii")).root.value == 1_000
            assert gateway.file(str(height), name) == served  # from the cache now
            assert gateway.file(str(height), "../secrets") is None
            assert gateway.file(str(height + 1), name) is None
        finally:
            engine.dispose()


def test_a_nonce_is_made_once_across_processes(tmp_path: Path) -> None:
    key = load_server_key(tmp_path)
    with postgres_schema_url() as url:
        migrate(url)
        engine = open_engine(url)
        try:
            one, two = (sql_store(engine, key, tmp_path).nonces for _ in range(2))
            first = one.nonces_for([1, 2])
            assert two.nonces_for([2, 1, 3]) == {**first, 3: two.nonce_of(3)}
            assert one.nonce_of(3) == two.nonce_of(3)
        finally:
            engine.dispose()


def test_a_request_is_claimed_once_and_again_only_when_stale(tmp_path: Path) -> None:
    with postgres_schema_url() as url:
        migrate(url)
        engine = open_engine(url)
        try:
            now = [10**18]
            requests = SnapshotRequests(engine, lambda: now[0])
            asked = requests.ask(None)
            assert requests.claim() == (asked, None)
            assert requests.claim() is None  # a second leader finds nothing to take
            now[0] += int(RECLAIM_AFTER_S * 1e9) + 1  # the first died with it
            assert requests.claim() == (asked, None)
            requests.answer(asked, "failed", "no such height")
            with pytest.raises(ValueError, match="no such height"):
                requests.wait(asked, 1.0)
            with pytest.raises(TimeoutError):
                requests.wait(requests.ask(5), 0.3)
        finally:
            engine.dispose()
