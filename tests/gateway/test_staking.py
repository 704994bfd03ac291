"""BMEX staking over REST (BitMEX's /user/staking* and /user/unstakingRequests, our POST
/user/staking) against the real core: stake, the discount in /user/commission after the day
boundary, unstaking requests listed, cancelled and refused with clear 4xx that change nothing."""

import time

from perpetua.core.commands import Tick
from perpetua.core.limits import DAY_NS
from perpetua.core.staking import UNSTAKING_COOLING_OFF_NS
from tests.gateway.harness import ALICE, harness

BMEX = 1_000_000


def _next_midnight() -> int:
    return (time.time_ns() // DAY_NS + 1) * DAY_NS


def test_stake_discount_and_unstaking_requests() -> None:
    with harness() as h:
        h.deposit(ALICE, "BMEx", 20_000 * BMEX)
        staked = h.signed(
            "POST", "/user/staking", body={"currency": "BMEX", "amount": 10_000 * BMEX}
        )
        assert staked.status_code == 200, staked.text
        assert staked.json()["amount"] == 10_000 * BMEX
        assert staked.json()["tier"] == 0  # counts from the next full day
        wallet = h.signed("GET", "/user/wallet", params={"currency": "BMEx"}).json()
        assert wallet["amount"] == 10_000 * BMEX
        assert h.signed("GET", "/user/commission").json()["XBTUSD"]["takerFee"] == 0.00075

        h.sequencer.execute(Tick(_next_midnight()))
        row = h.signed("GET", "/user/staking").json()[0]
        assert (row["account"], row["currency"], row["amount"], row["tier"]) == (
            ALICE,
            "BMEx",
            10_000 * BMEX,
            2,
        )
        assert row["feeDiscount"] == 0.1
        # 0.075% less 10%
        assert h.signed("GET", "/user/commission").json()["XBTUSD"]["takerFee"] == 0.000675

        made = h.signed(
            "POST", "/user/unstakingRequests", body={"symbol": "BMEX", "amount": 4_000 * BMEX}
        )
        assert made.status_code == 200, made.text
        request = made.json()
        assert request["status"] == "Pending" and request["amount"] == 4_000 * BMEX
        pending = h.signed("GET", "/user/unstakingRequests", params={"status": "Pending"}).json()
        assert [r["redemptionID"] for r in pending] == [request["redemptionID"]]
        # 6,000 left staked: tier 1 at once (5%)
        assert (
            h.signed("GET", "/user/commission").json()["XBTUSD"]["takerFee"] == 0.000713
        )  # 750 less floor(37.5) ppm
        cancelled = h.signed(
            "DELETE", "/user/unstakingRequests", body={"redemptionID": request["redemptionID"]}
        )
        assert cancelled.json()["status"] == "Canceled"
        assert h.signed("GET", "/user/unstakingRequests", params={"status": "Pending"}).json() == []
        assert len(h.signed("GET", "/user/unstakingRequests", params={"status": "All"}).json()) == 1
        assert h.signed("GET", "/user/staking").json()[0]["amount"] == 10_000 * BMEX

        again = h.signed(
            "POST", "/user/unstakingRequests", body={"symbol": "BMEX", "amount": BMEX}
        ).json()
        release = again["releaseTime"]
        h.sequencer.execute(Tick(_next_midnight() + UNSTAKING_COOLING_OFF_NS + DAY_NS))
        released = h.signed("GET", "/user/unstakingRequests", params={"status": "Released"}).json()
        assert [r["redemptionID"] for r in released] == [again["redemptionID"]]
        assert released[0]["releaseTime"] == release
        wallet = h.signed("GET", "/user/wallet", params={"currency": "BMEx"}).json()
        assert wallet["amount"] == 10_001 * BMEX  # the released 1 BMEX is back


def test_bad_staking_requests_are_refused_and_change_nothing() -> None:
    with harness() as h:
        h.deposit(ALICE, "BMEx", 100 * BMEX)
        cases = [
            ("POST", "/user/staking", {"currency": "XBt", "amount": 1}, 400, "only BMEX"),
            ("POST", "/user/staking", {"amount": 0}, 400, "Invalid amount"),
            ("POST", "/user/staking", {"amount": 101 * BMEX}, 400, "insufficient"),
            (
                "POST",
                "/user/unstakingRequests",
                {"symbol": "BMEX", "amount": 1},
                400,
                "more than is staked",
            ),
            ("POST", "/user/unstakingRequests", {"amount": 1}, 400, "required"),
            ("DELETE", "/user/unstakingRequests", {"redemptionID": "nope"}, 404, "not found"),
        ]
        for method, path, body, status, text in cases:
            response = h.signed(method, path, body=body)
            assert response.status_code == status, (path, body, response.text)
            assert text in response.json()["error"]["message"], response.text
        bad_status = h.signed("GET", "/user/unstakingRequests", params={"status": "Done"})
        assert bad_status.status_code == 400
        assert h.signed("GET", "/user/staking").json()[0]["amount"] == 0
        wallet = h.signed("GET", "/user/wallet", params={"currency": "BMEx"}).json()
        assert wallet["amount"] == 100 * BMEX


def test_staking_tiers_are_public_and_routes_are_in_the_served_spec() -> None:
    with harness() as h:
        tiers = h.client.get("/api/v1/user/staking/tiers", params={"currency": "BMEX"})
        assert tiers.status_code == 200
        assert tiers.json()[2] == {
            "tier": 2,
            "minStaked": 10_000 * BMEX,
            "feeDiscount": 0.1,
            "apr": 0.03,
        }
        instruments = h.signed("GET", "/user/staking/instruments").json()
        assert instruments[0]["symbol"] == "BMEX" and instruments[0]["coolingOffDays"] == 7
        paths = h.client.get("/api/explorer/swagger.json").json()["paths"]
        assert set(paths["/user/unstakingRequests"]) == {"get", "post", "delete"}
        assert set(paths["/user/staking"]) == {"get", "post"}
        assert paths["/user/staking"]["post"]["tags"] == ["Trading costs"]


def test_the_operator_funds_staking_rewards_once_per_transfer_id() -> None:
    with harness() as h:
        headers = {"x-operator-key": "operator-secret"}
        body = {"amount": 5 * BMEX, "transferID": "r-1"}
        first = h.client.post("/api/v1/admin/stakingRewards", json=body, headers=headers)
        assert first.status_code == 200, first.text
        again = h.client.post("/api/v1/admin/stakingRewards", json=body, headers=headers)
        assert again.status_code == 400 and "Duplicate" in again.json()["error"]["message"]
        anonymous = h.client.post("/api/v1/admin/stakingRewards", json=body)
        assert anonymous.status_code in (401, 403)


def test_a_restricted_account_may_not_stake_and_is_told_why() -> None:
    from perpetua.core.commands import SetAccountRestriction
    from perpetua.core.enums import RestrictionCause, TradingMode

    with harness() as h:
        h.deposit(ALICE, "BMEx", 100 * BMEX)
        h.sequencer.execute(
            SetAccountRestriction(
                0, ALICE, TradingMode.CLOSE_ONLY, cause=RestrictionCause.KYC_REVIEW_OVERDUE
            )
        )
        refused = h.signed("POST", "/user/staking", body={"currency": "BMEX", "amount": BMEX})
        assert refused.status_code == 403, refused.text
        message = refused.json()["error"]["message"]
        assert "close-only" in message and "periodic KYC review overdue" in message
        assert all(row["amount"] == 0 for row in h.signed("GET", "/user/staking").json())
        wallet = h.signed("GET", "/user/wallet", params={"currency": "BMEx"}).json()
        assert wallet["amount"] == 100 * BMEX
