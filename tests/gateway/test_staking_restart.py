"""Unstaking requests after a restart: the engine keeps only the pending ones, so the ended
ones (Canceled, Released) come back from the read models (``unstaking_requests``) and
``GET /user/unstakingRequests`` answers exactly what it answered before the stop. (A release
needs the venue's clock past the cooling-off: the projector writes it by the same path as a
cancel, and ``test_staking`` checks the release itself.)"""

from pathlib import Path

from perpetua.core.commands import Deposit
from tests.gateway.test_restart import ALICE, running

BMEX = 1_000_000


def test_ended_unstaking_requests_survive_a_restart(tmp_path: Path) -> None:
    with running(tmp_path) as c:
        c.execute(Deposit(0, ALICE, "BMEx", 5_000 * BMEX, "a-bmex"))
        c.signed("POST", "/user/staking", body={"currency": "BMEX", "amount": 3_000 * BMEX})
        cancelled = c.signed(
            "POST", "/user/unstakingRequests", body={"symbol": "BMEX", "amount": 1_000 * BMEX}
        )
        c.signed(
            "DELETE", "/user/unstakingRequests", body={"redemptionID": cancelled["redemptionID"]}
        )
        pending = c.signed(
            "POST", "/user/unstakingRequests", body={"symbol": "BMEX", "amount": 200 * BMEX}
        )
        before = c.signed("GET", "/user/unstakingRequests", params={"status": "All"})
        assert {r["redemptionID"]: r["status"] for r in before} == {
            cancelled["redemptionID"]: "Canceled",
            pending["redemptionID"]: "Pending",
        }
    with running(tmp_path) as c:
        after = c.signed("GET", "/user/unstakingRequests", params={"status": "All"})
        assert after == before
        ended = c.signed("GET", "/user/unstakingRequests", params={"status": "Canceled"})
        assert [r["redemptionID"] for r in ended] == [cancelled["redemptionID"]]
