"""Rate limits are one allowance per client across gateways (issue 21: "rate limits shared
across gateways (per account) so adding gateways does not multiply a client's allowance"),
with real processes: one nats-server, a sequencer, two gateways on their own ports, PostgreSQL.

A client alternates signed requests between the two gateways. Each gateway alone would accept
``ACCOUNT_REQUESTS_PER_MINUTE`` (120) of them, so without sharing the client would get about
twice that; shared (each gateway publishes the charges it accepted every 50 ms and the other
takes the same tokens), the two together accept about one allowance: 120, plus the refill
while the test runs (2 a second) and what the 50 ms gossip lets through before it arrives.
"""

import time
from pathlib import Path

import pytest

from perpetua.gateway.ratelimit import ACCOUNT_REQUESTS_PER_MINUTE
from perpetua.runtime.cluster_dev import DevCluster
from perpetua.runtime.natsd import free_port, nats_server_binary
from tests.store.databases import postgres_schema_url
from tests.transport.test_cluster import Client, wait_http

pytestmark = pytest.mark.slow
USER = 7
REQUESTS = 2 * ACCOUNT_REQUESTS_PER_MINUTE
PACE_S = 0.01  # between requests: a few requests per gossip interval reach each gateway
GOSSIP_SLACK = 15  # requests accepted before the other gateway's charges arrive


def test_two_gateways_share_one_allowance(tmp_path: Path) -> None:
    if nats_server_binary() is None:
        pytest.skip("nats-server is not installed")
    with postgres_schema_url() as url:
        cluster = DevCluster(tmp_path / "c", nats_nodes=1, prefix="rl", database_url=url,
                             reuse_port=False)  # fmt: skip
        cluster.start_nats()
        try:
            cluster.add("sequencer", "s1")
            cluster.start("s1")
            ports = {"g1": free_port(), "g2": free_port()}
            for name, port in ports.items():
                cluster.add("gateway", name, port=port)
                cluster.start(name)
            for port in ports.values():
                wait_http(port)
            g1, g2 = Client(ports["g1"]), Client(ports["g2"])
            key = g1.admin("apiKey", {"userId": USER, "permissions": "order"})
            g1.key = g2.key = (key["id"], key["secret"])
            accepted = {"g1": 0, "g2": 0}
            refused = {"g1": 0, "g2": 0}
            began = time.monotonic()
            for number in range(REQUESTS):
                name, client = (("g1", g1), ("g2", g2))[number % 2]
                status = client.signed("GET", "/user/wallet").status_code
                assert status in (200, 429), status
                (accepted if status == 200 else refused)[name] += 1
                time.sleep(PACE_S)
            refill = int((time.monotonic() - began) * ACCOUNT_REQUESTS_PER_MINUTE / 60) + 1
        finally:
            codes = cluster.stop()
        assert all(code in (0, -9, None) for code in codes.values()), codes
    total = accepted["g1"] + accepted["g2"]
    assert total <= ACCOUNT_REQUESTS_PER_MINUTE + refill + GOSSIP_SLACK, (accepted, refill)
    assert total >= ACCOUNT_REQUESTS_PER_MINUTE - GOSSIP_SLACK, (accepted, refill)
    assert refused["g1"] > 0 and refused["g2"] > 0, refused  # each refuses the shared overdraft
