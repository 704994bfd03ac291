"""The funding series as BitMEX index rows (reference §7.6, §7.8): ``.XBTUSDPI`` (the premium
index each minute), ``.XBTUSDPI8H`` (the interval's average so far), ``.XBTBON8H`` and
``.USDBON8H`` (interest, ``I = (quote - base) / 3``), over REST and the WebSocket
``instrument`` table, equal to what the core computed; and seeded from a recovered engine."""

import json
import time
from decimal import Decimal
from typing import Any

from perpetua.core.catalogue import default_catalogue
from perpetua.core.commands import Deposit, IndexPrice, PlaceOrder, SetInterestRate, Tick
from perpetua.core.engine import Engine
from perpetua.core.enums import Side
from perpetua.core.events import MarkUpdated, PremiumSampled
from perpetua.gateway.auth import sign
from perpetua.marketdata.hub import MarketData
from perpetua.sequencer.seed import engine_seed
from perpetua.wire.values import decode_json
from tests.gateway.harness import ALICE, harness

XBT = "XBTUSD"
SERIES = (".XBTUSDPI", ".XBTUSDPI8H", ".XBTBON8H", ".USDBON8H")
INTEREST_PPB = 250_000  # 0.025% per 8 h: not the default, so the BON8H pair shows it
MINUTE_NS = 60 * 10**9
DAY_NS = 86_400 * 10**9
BID_TICKS = 502_500  # 50,250.0: 0.5% over the index, deeper than the 10 XBT impact notional
BID_QTY = 600_000
PPB = 10**9


def _start_ns() -> int:
    """06:00:30 UTC tomorrow: ahead of the wall clock (every command is stamped just after it,
    so the samples fall on the minutes this test ticks) and hours from a funding time."""
    return (time.time_ns() // DAY_NS + 1) * DAY_NS + 6 * 3_600 * 10**9 + 30 * 10**9


def _rate(ppb: int) -> Decimal:
    return Decimal(ppb) / PPB


def _premium_by_hand(mark: MarkUpdated) -> int:
    """P = (impactBid - mark) / index in ppb, to the nearest millionth (BitMEX's six decimals):
    the only bid holds the whole impact notional, so the impact bid is its price; nothing is
    offered (the ask side adds 0)."""
    bid_fine = BID_TICKS * 10**6
    assert bid_fine > mark.mark_fine
    return _nearest_millionth((bid_fine - mark.mark_fine) * PPB, mark.index_fine)


def _nearest_millionth(num_ppb: int, den: int) -> int:
    """``num_ppb / den`` (both > 0) in ppb, rounded to a whole millionth, halves up."""
    return (2 * num_ppb + 1_000 * den) // (2_000 * den) * 1_000


def _changes(values: list[Decimal]) -> list[Decimal]:
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def _get(h: Any, path: str, **params: str) -> Any:
    response = h.client.get("/api/v1" + path, params=params)
    assert response.status_code == 200, response.text
    return decode_json(response.content)  # exact decimals


class Stream:
    """The events of every command, as the gateway receives them."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def __call__(self, seq: int, ts_ns: int, command: Any, events: list[object]) -> None:
        self.events.extend(events)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if type(e) is kind and e.symbol == XBT]  # type: ignore


def _receive(ws: Any) -> Any:
    return decode_json(ws.receive_text())


def _subscribe(ws: Any, topic: str) -> dict[str, Any]:
    _receive(ws)  # welcome
    expires = int(time.time()) + 60
    ws.send_text(
        json.dumps(
            {
                "op": "authKeyExpires",
                "args": [
                    "alice-key",
                    expires,
                    sign("alice-secret", "GET", "/realtime", str(expires)),
                ],
            }
        )
    )
    assert _receive(ws)["success"] is True
    ws.send_text(json.dumps({"op": "subscribe", "args": [topic]}))
    assert _receive(ws)["success"] is True
    partial = _receive(ws)
    assert partial["action"] == "partial" and partial["table"] == "instrument"
    return {row["symbol"]: row for row in partial["data"]}


def _updates(ws: Any, count: int) -> dict[str, list[dict[str, Any]]]:
    """Instrument updates by symbol, read until each series has ``count`` (other rows kept)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for _ in range(500):
        message = _receive(ws)
        if message.get("table") == "instrument" and message.get("action") == "update":
            for row in message["data"]:
                found.setdefault(row["symbol"], []).append(row)
        if all(len(found.get(s, [])) >= count for s in SERIES[:2]):
            return found
    raise AssertionError(f"{count} updates of {SERIES[:2]} not received")


def test_series_rows_equal_the_core_samples_over_rest_and_websocket() -> None:
    with harness() as h:
        stream = Stream()
        h.sequencer.subscribe(stream)
        start = _start_ns()
        h.sequencer.execute(Tick(start))
        h.deposit(ALICE, "XBt", 10**8)
        h.sequencer.execute(SetInterestRate(0, XBT, INTEREST_PPB))
        h.index(".BXBT", 50_000)
        placed = h.signed(
            "POST",
            "/order",
            body={"symbol": XBT, "side": "Buy", "orderQty": BID_QTY, "price": 50_250},
        )
        assert placed.status_code == 200, placed.text
        rows = {r["symbol"]: r for r in _get(h, "/instrument/indices")}
        assert set(SERIES) <= set(rows) and rows[".BXBT"]["typ"] == "MRCXXX"
        assert all(rows[s]["lastPrice"] is None and rows[s]["typ"] == "MRRXXX" for s in SERIES)
        with h.client.websocket_connect("/realtime") as ws:
            partial = _subscribe(ws, "instrument")
            assert set(SERIES) <= set(partial) and "lastPrice" not in partial[".XBTUSDPI"]
            for minute in (1, 2, 3):
                h.sequencer.execute(Tick(start + minute * MINUTE_NS))
            updates = _updates(ws, 3)
        premiums, averages = updates[".XBTUSDPI"], updates[".XBTUSDPI8H"]
        assert [r["lastPrice"] for r in updates[".USDBON8H"]] == [Decimal("0.00105")]
        samples = stream.of(PremiumSampled)
        assert len(samples) == 3 and not any(type(e).__name__ == "Funding" for e in stream.events)
        marks = {m.ts_ns: m for m in stream.of(MarkUpdated)}
        by_hand = [_premium_by_hand(marks[s.ts_ns]) for s in samples]
        assert [s.premium_ppb for s in samples] == by_hand and all(p > 0 for p in by_hand)
        assert [s.average_ppb for s in samples] == [
            _nearest_millionth(sum(by_hand[:n]), n) for n in (1, 2, 3)
        ]
        # an update carries the fields that changed: a value equal to the last is left out
        assert [r["lastPrice"] for r in premiums if "lastPrice" in r] == _changes(
            [_rate(s.premium_ppb) for s in samples]
        )
        assert [r["lastPrice"] for r in averages if "lastPrice" in r] == _changes(
            [_rate(s.average_ppb) for s in samples]
        )

        last = samples[-1]
        (average,) = _get(h, "/instrument", symbol=".XBTUSDPI8H")
        assert (average["lastPrice"], average["markPrice"]) == (
            _rate(last.average_ppb),
            _rate(last.average_ppb),
        )
        assert average["referenceSymbol"] == ".XBTUSDPI8H" and average["state"] == "Unlisted"
        (premium,) = _get(h, "/instrument", symbol=".xbtusdpi")  # any case, as symbols
        assert premium["lastPrice"] == _rate(last.premium_ppb)
        base = _get(h, "/instrument", symbol=".XBTBON8H")[0]["lastPrice"]
        quote = _get(h, "/instrument", symbol=".USDBON8H")[0]["lastPrice"]
        assert (base, quote) == (Decimal("0.0003"), Decimal("0.00105"))
        assert (quote - base) / 3 == _rate(last.interest_ppb) == _rate(INTEREST_PPB)
        (perpetual,) = _get(h, "/instrument", symbol=XBT)
        assert (
            perpetual["fundingBaseSymbol"],
            perpetual["fundingQuoteSymbol"],
            perpetual["fundingPremiumSymbol"],
        ) == (".XBTBON8H", ".USDBON8H", ".XBTUSDPI8H")
        assert (perpetual["fundingBaseRate"], perpetual["fundingQuoteRate"]) == (base, quote)
        assert not set(SERIES) & {r["symbol"] for r in _get(h, "/instrument/active")}
        assert set(SERIES) <= {r["symbol"] for r in _get(h, "/instrument/activeAndIndices")}
        with h.client.websocket_connect("/realtime") as ws:
            one = _subscribe(ws, "instrument:.XBTUSDPI8H")
        assert list(one) == [".XBTUSDPI8H"]
        assert one[".XBTUSDPI8H"]["lastPrice"] == _rate(last.average_ppb)


def test_a_restarted_gateway_seeds_the_series_from_the_engine() -> None:
    """The recovered engine keeps the interval's sample sum and count and the interest: the
    average and the interest indices come back as they were; the premium index itself waits
    for the next minute's sample."""
    engine = Engine(default_catalogue())
    live = MarketData(default_catalogue())
    start = _start_ns()
    commands = [
        Deposit(start, ALICE, "XBt", 10**8, "seed-deposit"),
        SetInterestRate(start + 1, XBT, INTEREST_PPB),
        IndexPrice(start + 2, ".BXBT", 50_000, 1),
        PlaceOrder(start + 3, ALICE, XBT, Side.BUY, BID_QTY, price=BID_TICKS),
    ]
    commands += [Tick(start + minute * MINUTE_NS) for minute in (1, 2, 3)]
    for seq, command in enumerate(commands, 1):
        live.apply(seq, command.ts_ns, command, engine.apply(command))
    restarted = MarketData(default_catalogue())
    seed = engine_seed(engine, len(commands))
    restarted.seed(seed.markets, seed.ts_ns)
    for symbol in (".XBTUSDPI8H", ".XBTBON8H", ".USDBON8H"):
        value = live.live(symbol)["lastPrice"]
        assert value is not None and restarted.live(symbol)["lastPrice"] == value
    assert live.live(".XBTUSDPI")["lastPrice"] is not None
    assert restarted.live(".XBTUSDPI")["lastPrice"] is None
    for field in ("fundingBaseRate", "fundingQuoteRate"):
        assert restarted.instrument_row(XBT)[field] == live.instrument_row(XBT)[field]
