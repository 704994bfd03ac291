"""The leading sequencer's shared-database services in cluster mode with real processes (one
nats-server, two sequencers, a projector and a gateway over PostgreSQL; decisions §28):

1. Compliance: a user whose approved KYC review came due is restricted to close-only by the
   leader's sync (through the stream: the gateway's replica shows it), with a periodic case
   in the operator's queue on the gateway; the KYC routes answer there.
2. Proof of reserves and liabilities: the leader publishes the day's proof at its start; an
   operator's snapshot asked on the gateway is taken by the leader and served by the gateway
   (snapshots, the account's nonce and balance, the file).
3. ``kill -9`` of the leader: the new leader measures the volume tiers (yesterday's executions
   in the read models) and sets the tier through the cluster; it restricts the next overdue
   user, opens the sanctions case its rescreen finds, takes the next proof asked for, and
   does not publish a second daily proof.
4. Back to the first sequencer (a clean stop of the second): nothing is done twice: one
   ``SetFeeTier``, one sanctions case, the same proofs, the same nonce.

Yesterday's executions and the KYC records are written straight into the database: a test
cannot let a day pass or a year of review come due.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, insert, select

from perpetua.core.calendar import NS_PER_DAY
from perpetua.core.catalogue import FEE_TIERS
from perpetua.core.commands import SetFeeTier
from perpetua.core.enums import ExecType
from perpetua.runtime.cluster_dev import DevCluster
from perpetua.runtime.natsd import free_port, nats_server_binary
from perpetua.services.server_key import load_server_key
from perpetua.store import open_engine
from perpetua.store.schema import (
    executions,
    kyc_cases,
    kyc_profiles,
    porl_publications,
    volume_runs,
)
from tests.store.databases import postgres_schema_url
from tests.transport.load import records_of
from tests.transport.test_cluster import OPERATOR, Client, leader, wait_http

pytestmark = pytest.mark.slow

TRADER, OVERDUE, LATE_OVERDUE, LISTED = 7, 8, 9, 10
WAIT_S = 60.0
TIER_STEP_USD = 100  # [fees] adv_usd_min: 0, 100, 200... so a small volume reaches tier 1
LISTED_NAME = "Ivan Listedperson Petrov"


@dataclass
class Rig:
    cluster: DevCluster
    url: str
    port: int
    shared: Path

    def client(self, user: int) -> Client:
        client = Client(self.port)
        key = client.admin("apiKey", {"userId": user, "permissions": "order"})
        client.key = (key["id"], key["secret"])
        return client

    def operator(self, method: str, path: str, **params: Any) -> Any:
        response = httpx.request(
            method, f"http://127.0.0.1:{self.port}/api/v1{path}",
            headers={"x-operator-key": OPERATOR}, timeout=WAIT_S,
            **({"json": params} if method == "POST" else {"params": params}),
        )  # fmt: skip
        assert response.status_code == 200, response.text
        return response.json()

    def sql(self, read: Callable[[Any], Any]) -> Any:
        engine = open_engine(self.url)
        try:
            with engine.begin() as conn:
                return read(conn)
        finally:
            engine.dispose()

    def log(self, name: str) -> str:
        return self.cluster.procs[name].log.read_text(errors="replace")


def until(check: Callable[[], Any], what: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed")
    root: Path = tmp_path_factory.mktemp("cluster-services")
    lists = root / "sanctions.csv"
    lists.write_text(f"name,id\n{LISTED_NAME},SDN-1\n")
    tiers = ", ".join(str(TIER_STEP_USD * i) for i in range(len(FEE_TIERS)))
    tables = "\n".join([
        "[fees]", f"adv_usd_min = [{tiers}]", "volume_check_interval_s = 1",
        "[compliance]", "sync_interval_s = 1",
        f'sanctions = [{{ path = "{lists}", format = "generic" }}]',
        "[porl]", "daily = true",
    ])  # fmt: skip
    with postgres_schema_url() as url:
        cluster = DevCluster(
            root / "c", nats_nodes=1, prefix="sv", database_url=url, reuse_port=False,
            tables=tables,
        )  # fmt: skip
        cluster.start_nats()
        try:
            for role, name in (("sequencer", "s1"), ("projector", "p1")):
                cluster.add(role, name)
                cluster.start(name)
            cluster.add("sequencer", "s2")  # a standby, started once s1 leads
            assert asyncio.run(leader(cluster)) == "s1"
            cluster.start("s2")
            port = free_port()
            cluster.add("gateway", "g1", port=port)
            cluster.start("g1")
            wait_http(port)
            yield Rig(cluster, url, port, root / "c" / "shared")
        except BaseException:
            for name, proc in cluster.procs.items():
                if proc.log.exists():
                    print(f"--- {name}\n{proc.log.read_text()[-4000:]}")
            raise
        finally:
            codes = cluster.stop()
        assert all(code in (0, -9, None) for code in codes.values()), codes


# --- what the test writes and reads in the database -------------------------------------------


def overdue_profile(rig: Rig, user: int, application: dict[str, Any] | None = None) -> None:
    """An approved level-1 user whose review came due a day ago (sealed as compliance does)."""
    now = time.time_ns()
    sealed = None
    if application is not None:
        sealed = load_server_key(rig.shared).encrypt(json.dumps(application).encode()).decode()
    rig.sql(lambda conn: conn.execute(insert(kyc_profiles).values(
        user_id=user, kind="individual", level=1, status="approved", requested_level=1,
        residence="CH", citizenship="CH", incorporation="", risk="normal", sanctioned=False,
        sealed=sealed, approved_ns=now - 400 * NS_PER_DAY,
        review_due_ns=now - NS_PER_DAY if application is None else 0, updated_ns=now,
    )))  # fmt: skip


def yesterdays_trade(rig: Rig, account: int, cost_usdt: int) -> None:
    """One Trade execution of ``cost_usdt`` on XBTUSDT at noon yesterday, in the read models."""
    noon = time.time_ns() // NS_PER_DAY * NS_PER_DAY - NS_PER_DAY // 2
    rig.sql(lambda conn: conn.execute(insert(executions).values(
        exec_id=9 * 10**15, order_id=9 * 10**15, exec_type=int(ExecType.TRADE), account=account,
        symbol="XBTUSDT", side=1, ord_type=2, time_in_force=1, exec_inst=0, order_qty=1,
        price=None, stop_px=None, display_qty=None, peg_price_type=0, peg_offset=None,
        contingency_type=0, cl_ord_id="", cl_ord_link_id="", ord_status=2, triggered=False,
        working=False, leaves_qty=0, cum_qty=1, cum_px_qty=0, text="", transact_ts_ns=noon,
        last_qty=1, last_px=None, trd_match_id=1, exec_cost=cost_usdt * 10**6, exec_comm=0,
        fee_rate_ppm=0, liquidity=0, timestamp_ns=noon, seq=0,
    )))  # fmt: skip


def count(rig: Rig, table: Any, *where: Any) -> int:
    return int(rig.sql(lambda conn: conn.execute(
        select(func.count()).select_from(table).where(*where)
    ).scalar()))  # fmt: skip


def cases(rig: Rig, user: int, kind: str) -> int:
    return count(rig, kyc_cases, kyc_cases.c.user_id == user, kyc_cases.c.kind == kind)


def today_measured(rig: Rig) -> bool:
    today = time.time_ns() // NS_PER_DAY * NS_PER_DAY
    return count(rig, volume_runs, volume_runs.c.boundary_ns == today) == 1


def fee_tier_commands(rig: Rig, account: int) -> int:
    _replica, records = asyncio.run(records_of(rig.cluster.nats.urls, rig.cluster.names))
    return sum(1 for c in records.values() if isinstance(c, SetFeeTier) and c.account == account)


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def restricted(client: Client) -> dict[str, Any]:
    return ok(client.signed("GET", "/user/restrictions"))  # type: ignore[no-any-return]


def leaderships(rig: Rig, name: str) -> int:
    return rig.log(name).count("leader jobs started")


# --- the run ----------------------------------------------------------------------------------


def test_leader_services_through_failovers(rig: Rig) -> None:
    trader = rig.client(TRADER)
    rig.operator("POST", "/admin/faucet", account=TRADER, currency="XBt", amount=10**8)
    until(lambda: leaderships(rig, "s1") == 1, "s1's jobs")
    assert leaderships(rig, "s2") == 0
    until(lambda: today_measured(rig), "s1's volume measurement")
    assert "sanctions: every account screened at leadership" in rig.log("s1")

    # 1. compliance: the leader's sync restricts an overdue review; the gateway's routes serve
    overdue = rig.client(OVERDUE)
    overdue_profile(rig, OVERDUE)
    row = until(lambda: (r := restricted(overdue))["restricted"] and r, "the overdue restriction")
    assert row["trading"] == "CloseOnly" and row["cause"] == "KycReviewOverdue", row
    queue = rig.operator("GET", "/admin/kyc/queue")
    assert [c["kind"] for c in queue if c["account"] == OVERDUE] == ["periodic"], queue
    assert ok(overdue.signed("GET", "/user/kyc"))["level"] == 1
    assert ok(trader.signed("GET", "/user/kyc"))["level"] == 0

    # 2. proofs: the day's, then one an operator asks the gateway for, served by the gateway
    until(lambda: count(rig, porl_publications) == 1, "the daily proof")
    manifest = rig.operator("POST", "/admin/porl/snapshot")
    rows = ok(httpx.get(f"http://127.0.0.1:{rig.port}/api/v1/porl/snapshots"))
    mine = [r for r in rows if r["height"] == manifest["height"] and r["currency"] == "XBt"]
    assert len(mine) == 1 and mine[0]["total"] >= 10**8, rows
    nonce = ok(trader.signed("GET", "/porl/nonce?currency=XBt"))
    assert nonce["height"] == manifest["height"] and nonce["balance"] == 10**8, nonce
    proof = httpx.get(f"http://127.0.0.1:{rig.port}{mine[0]['downloadUrl']}")
    assert proof.status_code == 200 and proof.content, proof.text

    # 3. kill -9 of the leader: the new leader's jobs carry on
    yesterdays_trade(rig, TRADER, 31 * TIER_STEP_USD)  # ADV 103 USD: tier 1
    assert ok(trader.signed("GET", "/user/tradingVolume"))[0]["feeTier"] == 0
    overdue_profile(
        rig, LISTED, {"kind": "individual", "name": LISTED_NAME, "dateOfBirth": "",
                      "citizenship": []},
    )  # fmt: skip
    rig.cluster.kill("s1")
    assert asyncio.run(leader(rig.cluster, exclude="s1")) == "s2"
    volume = until(
        lambda: (v := ok(trader.signed("GET", "/user/tradingVolume"))[0])["feeTier"] == 1 and v,
        "the tier set by the new leader",
    )
    until(
        lambda: ok(trader.signed("GET", "/user/tradingVolume"))[0]["advUsd"] == 103,
        "the gateway's figures",
    )
    assert volume["feeTier"] == 1
    late = rig.client(LATE_OVERDUE)
    overdue_profile(rig, LATE_OVERDUE)
    until(lambda: restricted(late)["restricted"], "the new leader's restriction")
    until(lambda: cases(rig, LISTED, "sanctions") == 1, "the new leader's rescreen")
    second = rig.operator("POST", "/admin/porl/snapshot")
    assert second["height"] > manifest["height"]
    assert (
        ok(trader.signed("GET", "/porl/nonce?currency=XBt"))["accountNonce"]
        == (nonce["accountNonce"])
    )

    # 4. back to s1 (s2 stops cleanly): nothing done twice
    rig.cluster.start("s1")
    time.sleep(3)  # s1 follows as a standby
    rig.cluster.terminate("s2")
    assert asyncio.run(leader(rig.cluster, exclude="s2")) == "s1"
    until(lambda: leaderships(rig, "s1") == 2, "s1's jobs again")
    until(lambda: "sanctions: every account screened" in rig.log("s1").split(
        "leader jobs started")[-1], "s1's rescreen")  # fmt: skip
    time.sleep(3)  # the volume job's first step and a few sync rounds
    assert fee_tier_commands(rig, TRADER) == 1
    assert cases(rig, LISTED, "sanctions") == 1
    assert cases(rig, OVERDUE, "periodic") == 1
    assert count(rig, porl_publications) == 3  # one daily, two asked for
    assert ok(trader.signed("GET", "/user/tradingVolume"))[0]["feeTier"] == 1
