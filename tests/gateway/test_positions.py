"""The risk engine through the gateway: /position/leverage, isolate, riskLimit and
transferMargin, the Position and Margin models (reference §3), instrument marks and funding,
and the risk-engine rejections in BitMEX's error shape."""

from decimal import Decimal
from typing import Any

from tests.gateway.harness import ALICE, BOB, harness

ETH = "ETHUSDT"
USDT = 1_000_000


def _sample(h: Any) -> dict[str, Any]:
    """§3: Alice 2000 ETHUSDT long at 1963, isolated 3x (the ccxt sample)."""
    h.deposit(ALICE, "USDt", 1_000 * USDT)
    h.deposit(BOB, "USDt", 1_000 * USDT)
    h.index(".BETHT", 1963)
    response = h.signed("POST", "/position/leverage", body={"symbol": ETH, "leverage": 3})
    assert response.status_code == 200, response.text
    assert response.json()["leverage"] == 3 and response.json()["crossMargin"] is False
    sold = h.signed(
        "POST",
        "/order",
        key=h.bob,
        body={"symbol": ETH, "side": "Sell", "orderQty": 2000, "price": 1963},
    )
    assert sold.status_code == 200, sold.text
    bought = h.signed(
        "POST", "/order", body={"symbol": ETH, "side": "Buy", "orderQty": 2000, "price": 1963}
    )
    assert bought.json()["ordStatus"] == "Filled", bought.text
    (row,) = h.signed("GET", "/position").json()
    return row


def test_position_model_reproduces_the_sample() -> None:
    with harness() as h:
        row = _sample(h)
        assert (row["symbol"], row["currency"], row["currentQty"]) == (ETH, "USDt", 2000)
        assert row["currentCost"] == row["posCost"] == row["unrealisedCost"] == 39_260_000
        assert (row["posInit"], row["posComm"], row["posMargin"], row["posMaint"]) == (
            13_086_667,
            39_261,
            13_125_928,
            435_787,
        )
        assert (row["bankruptPrice"], row["liquidationPrice"]) == (1308.7, 1328.5)
        assert row["marginCallPrice"] == row["liquidationPrice"]
        assert row["avgEntryPrice"] == 1963 and row["leverage"] == 3
        mark = Decimal(str(row["markPrice"]))
        assert Decimal(1963) <= mark < Decimal("1963.2")  # index plus the funding basis
        assert row["markValue"] == int(2000 * 10 * mark)  # linear: qty x 10 USDt x mark
        assert row["unrealisedPnl"] == row["markValue"] - row["currentCost"]
        assert row["maintMargin"] == row["posMargin"] + row["unrealisedPnl"]
        assert row["homeNotional"] == 0.02  # 2000 contracts of 0.00001 ETH
        assert (
            Decimal(str(row["foreignNotional"]))
            == -(Decimal("0.02") * mark).quantize(Decimal("1e-8")).normalize()
        )
        assert row["unrealisedPnlPcnt"] == round(row["unrealisedPnl"] / 39_260_000, 4)
        assert row["unrealisedRoePcnt"] == round(row["unrealisedPnl"] / 13_086_667, 4)
        assert (row["initMarginReq"], row["maintMarginReq"]) == (0.333334, 0.01)


def test_margin_model_identities() -> None:
    with harness() as h:
        row = _sample(h)
        h.signed(
            "POST", "/order", body={"symbol": ETH, "side": "Buy", "orderQty": 1000, "price": 1900}
        )
        margin = h.signed("GET", "/user/margin", params={"currency": "USDt"}).json()
        wallet = h.signed("GET", "/user/wallet", params={"currency": "USDt"}).json()
        upnl = h.signed("GET", "/position").json()[0]["unrealisedPnl"]
        assert margin["walletBalance"] == wallet["amount"] == margin["amount"]
        assert margin["unrealisedPnl"] == upnl
        assert margin["marginBalance"] == margin["walletBalance"] + upnl
        assert margin["maintMargin"] == row["posMargin"]
        assert margin["initMargin"] > 0  # the working buy's margin
        assert margin["availableMargin"] == (
            margin["marginBalance"] - margin["initMargin"] - margin["maintMargin"]
        )
        assert margin["withdrawableMargin"] <= margin["availableMargin"]
        assert Decimal(str(margin["marginUsedPcnt"])) == round(
            Decimal(margin["initMargin"] + margin["maintMargin"]) / margin["marginBalance"], 4
        )
        assert margin["marginLeverage"] > 0
        everything = h.signed("GET", "/user/margin", params={"currency": "all"}).json()
        assert [m["currency"] for m in everything] == ["USDt"]


def test_leverage_cross_and_isolate() -> None:
    with harness() as h:
        h.deposit(ALICE, "USDt", 1_000 * USDT)
        cross = h.signed("POST", "/position/leverage", body={"symbol": ETH, "leverage": 0})
        assert cross.status_code == 200, cross.text
        assert cross.json()["crossMargin"] is True and cross.json()["leverage"] == 50  # 1/2%
        half = h.signed("POST", "/position/leverage", body={"symbol": ETH, "leverage": "2.5"})
        assert half.json()["leverage"] == 2.5 and half.json()["crossMargin"] is False
        for bad in (2.555, 150, -1, "x"):
            response = h.signed("POST", "/position/leverage", body={"symbol": ETH, "leverage": bad})
            assert response.status_code == 400, bad
            assert response.json()["error"]["message"].startswith("Invalid leverage")
        too_high = h.signed("POST", "/position/leverage", body={"symbol": ETH, "leverage": 75})
        assert too_high.status_code == 400
        assert too_high.json()["error"]["message"] == (
            "Invalid leverage: the maximum for risk limit 500000000000 is 50"
        )
        back = h.signed("POST", "/position/isolate", body={"symbol": ETH, "enabled": False})
        assert back.json()["crossMargin"] is True
        isolated = h.signed("POST", "/position/isolate", body={"symbol": ETH, "enabled": "true"})
        assert isolated.json()["crossMargin"] is False and isolated.json()["leverage"] == 50
        spot = h.signed("POST", "/position/leverage", body={"symbol": "XBT_USDT", "leverage": 2})
        assert spot.status_code == 400


def test_risk_limit_and_transfer_margin() -> None:
    with harness() as h:
        _sample(h)
        off_grid = h.signed("POST", "/position/riskLimit", body={"symbol": ETH, "riskLimit": 1})
        assert off_grid.status_code == 400
        assert off_grid.json()["error"]["message"].startswith(
            "Invalid riskLimit: must be 500000000000 + n x 250000000000"
        )
        raised = h.signed(
            "POST", "/position/riskLimit", body={"symbol": ETH, "riskLimit": 750_000_000_000}
        )
        assert raised.status_code == 200, raised.text
        assert raised.json()["riskLimit"] == 750_000_000_000
        assert raised.json()["maintMarginReq"] == 0.02  # MM x (1 + 1 step)
        before = h.signed("GET", "/position").json()[0]
        added = h.signed(
            "POST", "/position/transferMargin", body={"symbol": ETH, "amount": 5 * USDT}
        )
        assert added.status_code == 200, added.text
        assert added.json()["posMargin"] == before["posMargin"] + 5 * USDT
        assert added.json()["liquidationPrice"] < before["liquidationPrice"]
        removed = h.signed(
            "POST", "/position/transferMargin", body={"symbol": ETH, "amount": -6 * USDT}
        )
        assert removed.status_code == 400
        assert removed.json()["error"]["message"] == (
            "Invalid amount: the transfer would leave too little margin"
        )
        h.signed("POST", "/position/leverage", body={"symbol": ETH, "leverage": 0})
        cross = h.signed("POST", "/position/transferMargin", body={"symbol": ETH, "amount": USDT})
        assert cross.status_code == 400
        assert cross.json()["error"]["message"].startswith("Position is not isolated")
        nothing = h.signed(
            "POST", "/position/transferMargin", key=h.bob, body={"symbol": "XBTUSD", "amount": 100}
        )
        assert nothing.status_code == 400
        assert "no open position" in nothing.json()["error"]["message"]
        poor = h.signed("POST", "/position/transferMargin", body={"symbol": ETH, "amount": 10**13})
        assert poor.status_code == 400


def test_orders_beyond_the_risk_limit_are_refused() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10 * 10**8)
        h.index(".BXBT", 40_000)
        big = h.signed(
            "POST",
            "/order",
            body={"symbol": "XBTUSD", "side": "Buy", "orderQty": 9_000_000, "price": 40_000},
        )
        assert big.status_code == 400
        assert big.json()["error"]["message"] == (
            "Order would exceed your risk limit: raise the risk limit of this position"
        )


def test_instrument_marks_funding_and_impact_prices() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", 10 * 10**8)
        h.deposit(BOB, "XBt", 10 * 10**8)
        h.index(".BXBT", 50_000)
        for price, side, key in ((49_990, "Buy", h.alice), (50_010, "Sell", h.bob)):
            h.signed(
                "POST",
                "/order",
                key=key,
                body={"symbol": "XBTUSD", "side": side, "orderQty": 600_000, "price": price},
            )
        row = h.client.get("/api/v1/instrument", params={"symbol": "XBTUSD"}).json()[0]
        assert row["indicativeSettlePrice"] == 50_000
        assert row["fundingRate"] == 0.0001 and row["indicativeFundingRate"] == 0.0001
        assert Decimal(str(row["fairBasisRate"])) == Decimal("0.1095")  # 0.0001 x 3 x 365
        mark = Decimal(str(row["markPrice"]))
        assert row["fairPrice"] == row["markPrice"]
        assert Decimal(str(row["fairBasis"])) == mark - 50_000
        assert row["fundingTimestamp"].endswith(("04:00:00.000Z", "12:00:00.000Z", "20:00:00.000Z"))
        assert (row["impactBidPrice"], row["impactAskPrice"]) == (49_990, 50_010)
        assert row["impactMidPrice"] == 50_000 and row["hasLiquidity"] is True
        h.signed(
            "POST",
            "/order",
            key=h.bob,
            body={"symbol": "XBTUSD", "side": "Sell", "orderQty": 1000, "price": 49_990},
        )
        after = h.client.get("/api/v1/instrument", params={"symbol": "XBTUSD"}).json()[0]
        assert after["openInterest"] == 1000
        assert after["openValue"] == int(Decimal(1000) * 10**8 / mark)


def test_break_even_price_covers_the_opening_fee() -> None:
    with harness() as h:
        row = _sample(h)
        fills = h.signed("GET", "/execution/tradeHistory", params={"symbol": ETH}).json()
        fee = sum(f["execComm"] for f in fills if f["account"] == ALICE)
        assert fee > 0
        # Long: entry + fee / (qty x 10 USDt per contract per dollar), up to the 0.05 tick.
        ticks = -(-(1963 * 20 * 2000 * 10 + fee * 20) // (2000 * 10))  # ceil, in 0.05s
        assert Decimal(str(row["breakEvenPrice"])) == Decimal(ticks) / 20
        assert Decimal(str(row["breakEvenPrice"])) > Decimal(str(row["avgEntryPrice"]))


def test_deleverage_percentile_ranks_each_side_in_fifths() -> None:
    with harness() as h:
        keys = {ALICE: h.alice, BOB: h.bob}
        longs = {ALICE: 50, 3001: 2, 3002: 5, 3003: 10, 3004: 20}
        for account in longs:
            if account not in keys:
                keys[account] = h.accounts.create_api_key(
                    account, ["order"], key_id=f"k{account}", secret=f"s{account}"
                )
        for account in (*longs, BOB):
            h.deposit(account, "USDt", 10_000 * USDT)
        h.index(".BETHT", 2000)
        for account, leverage in longs.items():
            assert (
                h.signed(
                    "POST",
                    "/position/leverage",
                    key=keys[account],
                    body={"symbol": ETH, "leverage": leverage},
                ).status_code
                == 200
            )
            h.signed(
                "POST",
                "/order",
                key=h.bob,
                body={"symbol": ETH, "side": "Sell", "orderQty": 1000, "price": 2000},
            )
            bought = h.signed(
                "POST",
                "/order",
                key=keys[account],
                body={"symbol": ETH, "side": "Buy", "orderQty": 1000, "price": 2000},
            )
            assert bought.json()["ordStatus"] == "Filled", bought.text
        h.index(".BETHT", 2100)  # every long in profit: the most leveraged rank first

        def percentile(account: int) -> Any:
            (row,) = h.signed("GET", "/position", key=keys[account]).json()
            return row["deleveragePercentile"]

        assert [percentile(a) for a in (ALICE, 3004, 3003, 3002, 3001)] == [1, 0.8, 0.6, 0.4, 0.2]
        assert percentile(BOB) == 1  # the only short
        h.signed(
            "POST",
            "/order",
            key=keys[3001],
            body={"symbol": ETH, "side": "Sell", "orderQty": 1000, "price": 2000},
        )
        h.signed(
            "POST",
            "/order",
            key=h.bob,
            body={"symbol": ETH, "side": "Buy", "orderQty": 1000, "price": 2000},
        )
        assert (
            h.signed("GET", "/position", key=keys[3001]).json()[0]["deleveragePercentile"] is None
        )  # flat
        assert [percentile(a) for a in (ALICE, 3004, 3003, 3002)] == [1, 0.8, 0.6, 0.4]


def test_working_orders_margin_is_the_cores_with_no_position_held() -> None:
    """The margin of working orders comes from the core with every order change
    (OrderMarginChanged), also on a symbol where no position was ever held."""
    with harness() as h:
        h.deposit(ALICE, "USDt", 1_000 * USDT)
        h.index(".BETHT", 2000)
        placed = h.signed(
            "POST", "/order", body={"symbol": ETH, "side": "Buy", "orderQty": 1000, "price": 1990}
        )
        assert placed.status_code == 200, placed.text
        margin = h.signed("GET", "/user/margin", params={"currency": "USDt"}).json()
        state = h.sequencer.engine.state
        pos = state.markets[ETH].positions[ALICE]
        assert margin["initMargin"] == pos.margin_required > 0
        assert margin["availableMargin"] == 1_000 * USDT - pos.margin_required
        cancelled = h.signed("DELETE", "/order", body={"orderID": placed.json()["orderID"]})
        assert cancelled.status_code == 200, cancelled.text
        margin = h.signed("GET", "/user/margin", params={"currency": "USDt"}).json()
        assert margin["initMargin"] == 0
