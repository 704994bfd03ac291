"""One funding rate, the one paid, the same on every route (issue 22).

A client reconstructs each Funding execution from the row alone, as reconciliation tools do:
``|execCost|`` is the value of ``lastQty`` contracts at ``lastPx`` (the instrument's
``multiplier``: ``q*m*P`` linear and quanto, ``q*|m|/P`` inverse, truncated), and ``execComm``
is ``ceil(|execCost| x commission)`` when paid, ``-floor(...)`` when received. The row's
``commission`` is the ``/funding`` row's ``fundingRate`` for the same time and symbol, which is
the instrument's ``fundingRate`` announced before that time, at BitMEX's six decimals.
"""

import json
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal
from typing import Any

from perpetua.core.commands import SetInterestRate, Tick
from perpetua.wire.values import parse_iso_ns
from tests.gateway.harness import harness

USDT = 1_000_000
XBT = 100_000_000
HOUR_NS = 3_600 * 10**9
# symbol, index, index price (num, den): inverse, linear and quanto perpetuals
MARKETS = (
    ("XBTUSD", ".BXBT", (8_955_437, 100)),
    ("XBTUSDT", ".BXBTT", (8_955_411, 100)),
    ("ETHUSD", ".BETH", (312_347, 100)),
)
# account, side, contracts per market: odd sizes so each value truncates differently
TRADERS = (
    (2001, "Buy", {"XBTUSD": 1_700, "XBTUSDT": 7_000, "ETHUSD": 13}),
    (2002, "Buy", {"XBTUSD": 300, "XBTUSDT": 3_000, "ETHUSD": 29}),
    (2003, "Sell", {"XBTUSD": 1_100, "XBTUSDT": 9_000, "ETHUSD": 17}),
    (2004, "Sell", {"XBTUSD": 900, "XBTUSDT": 1_000, "ETHUSD": 25}),
)
PRICES = {"XBTUSD": 89_554, "XBTUSDT": 89_554, "ETHUSD": 3_123}
RATES_PPB = (143_901, -87_654)  # interest components: the rates announced are 0.000144, -0.000088


def _ns(stamp: str) -> int:
    parsed = parse_iso_ns(stamp)
    assert parsed is not None
    return parsed


def _rows(response: Any) -> Any:
    """A JSON body with its numbers exact (no binary floats)."""
    assert response.status_code == 200, response.text
    return json.loads(response.text, parse_float=Decimal)


def _value(instrument: dict[str, Any], qty: int, price: Any) -> int:
    """|value| of ``qty`` contracts at ``price`` in settlement minor units, from the wire."""
    multiplier, px = Decimal(instrument["multiplier"]), Decimal(price)
    exact = qty * abs(multiplier) / px if instrument["isInverse"] else qty * multiplier * px
    return int(abs(exact).to_integral_value(rounding=ROUND_DOWN))


def _expected_comm(value: int, rate: Any, pays: bool) -> int:
    amount = value * abs(rate)
    if pays:
        return int(amount.to_integral_value(rounding=ROUND_CEILING))
    return -int(amount.to_integral_value(rounding=ROUND_FLOOR))


def _open_positions(h: Any) -> dict[int, Any]:
    keys = {}
    for account, _, _ in TRADERS:
        keys[account] = h.accounts.create_api_key(
            account, ["order"], key_id=f"k{account}", secret=f"s{account}"
        )
        h.deposit(account, "XBt", 10 * XBT)
        h.deposit(account, "USDt", 1_000_000 * USDT)
    for symbol, _, _ in MARKETS:  # before the index arrives: the first announced rate
        h.sequencer.execute(SetInterestRate(0, symbol, RATES_PPB[0]))
    for _, index, (num, den) in MARKETS:
        h.index(index, num, den)
    for symbol, _, _ in MARKETS:  # sellers rest first, buyers take them
        for side in ("Sell", "Buy"):
            for account, trader_side, sizes in TRADERS:
                if trader_side != side:
                    continue
                response = h.signed(
                    "POST",
                    "/order",
                    key=keys[account],
                    body={
                        "symbol": symbol,
                        "side": side,
                        "orderQty": sizes[symbol],
                        "price": PRICES[symbol],
                    },
                )
                assert response.status_code == 200, response.text
    return keys


def test_every_funding_execution_reconstructs_from_its_own_row() -> None:
    with harness() as h:
        keys = _open_positions(h)
        instruments = {
            row["symbol"]: row
            for row in _rows(h.client.get("/api/v1/instrument", params={"count": 500}))
        }
        announced: dict[tuple[str, str], Any] = {}
        funding_ns = _ns(instruments["XBTUSD"]["fundingTimestamp"])
        for step, _ in enumerate(RATES_PPB):
            at = funding_ns + step * 8 * HOUR_NS
            for symbol, _, _ in MARKETS:
                row = _rows(h.client.get("/api/v1/instrument", params={"symbol": symbol}))[0]
                assert _ns(row["fundingTimestamp"]) == at
                announced[(symbol, row["fundingTimestamp"])] = row["fundingRate"]
                if step + 1 < len(RATES_PPB):  # the interval's interest sets the next rate
                    h.sequencer.execute(SetInterestRate(0, symbol, RATES_PPB[step + 1]))
            h.sequencer.execute(Tick(at))
        assert sorted(set(announced.values())) == [Decimal("-0.000088"), Decimal("0.000144")]
        funding = {
            (r["symbol"], r["timestamp"]): r["fundingRate"]
            for r in _rows(h.client.get("/api/v1/funding", params={"count": 500}))
        }
        assert funding == announced  # the rate announced is the rate published as paid
        checked = set()
        for account, side, sizes in TRADERS:
            rows = _rows(
                h.signed(
                    "GET",
                    "/execution/tradeHistory",
                    key=keys[account],
                    params={"filter": json.dumps({"execType": "Funding"}), "count": 500},
                )
            )
            assert len(rows) == len(MARKETS) * len(RATES_PPB)
            for row in rows:
                symbol = row["symbol"]
                rate = row["commission"]
                assert rate == funding[(symbol, row["timestamp"])]
                assert row["lastQty"] == sizes[symbol]
                value = _value(instruments[symbol], row["lastQty"], row["lastPx"])
                assert abs(row["execCost"]) == value
                pays = (side == "Buy") == (rate > 0)
                assert row["execComm"] == _expected_comm(value, rate, pays), row
                checked.add((symbol, pays))
        assert checked == {(s, p) for s, _, _ in MARKETS for p in (True, False)}
