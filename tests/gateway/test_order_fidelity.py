"""What unchanged BitMEX clients trip on (issue 16), through REST: a ReduceOnly or Close order
with nothing to reduce comes back accepted and Canceled with BitMEX's text, and a trailing
stop's pegOffsetValue amend moves its stopPx; a trailing offset on the wrong side is a 400."""

from typing import Any

from tests.gateway.harness import ALICE, harness

XBT = 100_000_000
NOTHING = (
    "Canceled: Order had execInst of Close or ReduceOnly and side of {side} but current "
    "position is {held}\nSubmitted via API."
)


def _order(h: Any, method: str = "POST", **body: Any) -> Any:
    return h.signed(method, "/order", body={"symbol": "XBTUSD", **body})


def test_reduce_only_and_close_with_nothing_to_reduce_are_accepted_and_canceled() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", XBT)
        h.index(".BXBT", 50_000)
        for exec_inst, side in (("ReduceOnly", "Sell"), ("Close", "Buy")):
            response = _order(h, side=side, orderQty=100, price=50_000, execInst=exec_inst)
            assert response.status_code == 200, response.text
            row = response.json()
            assert (row["ordStatus"], row["leavesQty"], row["cumQty"]) == ("Canceled", 0, 0)
            assert row["text"] == NOTHING.format(side=side, held=0)
            assert row["execInst"] == exec_inst
        assert (
            h.signed("GET", "/order", params={"reverse": "true"}).json()[0]["ordStatus"]
            == "Canceled"
        )


def test_a_trailing_stop_offset_amend_moves_its_stop_and_the_sign_is_checked() -> None:
    with harness() as h:
        h.deposit(ALICE, "XBt", XBT)
        h.index(".BXBT", 50_000)
        wrong = _order(
            h,
            side="Sell",
            orderQty=100,
            ordType="Stop",
            pegPriceType="TrailingStopPeg",
            pegOffsetValue=500,
        )
        assert wrong.status_code == 400
        assert "pegOffsetValue" in wrong.json()["error"]["message"]
        placed = _order(
            h,
            side="Sell",
            orderQty=100,
            ordType="Stop",
            execInst="IndexPrice",
            pegPriceType="TrailingStopPeg",
            pegOffsetValue=-500,
        )
        assert placed.status_code == 200, placed.text
        order_id = placed.json()["orderID"]
        assert placed.json()["stopPx"] == 49_500
        for offset, stop in ((-800, 49_200), (-300, 49_700)):
            amended = h.signed(
                "PUT", "/order", body={"orderID": order_id, "pegOffsetValue": offset}
            )
            assert amended.status_code == 200, amended.text
            assert (amended.json()["stopPx"], amended.json()["pegOffsetValue"]) == (stop, offset)
        flipped = h.signed("PUT", "/order", body={"orderID": order_id, "pegOffsetValue": 300})
        assert flipped.status_code == 400
