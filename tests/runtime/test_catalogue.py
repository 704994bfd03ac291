"""The futures catalogue file (issue 16): the embedded ``catalogue.toml`` lists linear USDT
quarterlies on XBT and ETH and ETH quanto quarterlies; the runtime turns it into core commands
at start (journaled: a restart recovers them from the journal and sends nothing again); a bad
file is refused with the series and key named."""

import os
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from perpetua.core.catalogue import quarterly_expiry_ns
from perpetua.core.commands import DefineFutureSeries, ListFuture
from perpetua.core.instruments import Payout
from perpetua.runtime.catalogue import (
    CatalogueError,
    CatalogueLister,
    default_catalogue_path,
    load_catalogue,
    parse_catalogue,
)
from perpetua.runtime.config import ConfigError, FeedsConfig, VenueConfig, parse_config
from perpetua.runtime.venue import open_venue

LISTED = ("XBTUSDTH27", "ETHUSDTH27", "ETHUSDH27", "XBTUSDTM27", "ETHUSDTM27", "ETHUSDM27")
DEC_2026_NS = 1_796_000_000 * 10**9  # 2026-12-01


def test_the_embedded_catalogue() -> None:
    entries = {e.series.key: e for e in load_catalogue(default_catalogue_path())}
    assert set(entries) == {"XBTUSDT", "ETHUSDT", "ETHUSD"}
    xbt = entries["XBTUSDT"].series
    assert (xbt.payout, xbt.tick_num, xbt.tick_den, xbt.settl) == (Payout.LINEAR, 1, 2, "USDt")
    assert (xbt.init_margin_ppm, xbt.maint_margin_ppm) == (10_000, 5_000)
    assert (xbt.reference, xbt.settlement_index) == (".BXBTT", ".BXBTT30M")
    eth = entries["ETHUSD"].series
    assert (eth.payout, eth.settl, eth.multiplier, eth.q2s) == (Payout.QUANTO, "XBt", 100, 0)
    assert entries["ETHUSDT"].listings == ((2027, 1), (2027, 2)) and entries["ETHUSDT"].auto


BASE: dict[str, Any] = {
    "key": "SOLUSDT", "payout": "linear", "rootSymbol": "SOL", "quoteCurrency": "USDT",
    "settlCurrency": "USDt", "referenceSymbol": ".BETHT", "settlementIndex": ".BETHT30M",
    "tickSize": "0.01", "lotSize": 1, "maxOrderQty": 1000, "maxPrice": "1000",
    "multiplier": 1, "underlyingToPositionMultiplier": 1_000_000,
    "quoteToSettleMultiplier": 1_000_000, "initMargin": "0.05", "maintMargin": "0.025",
    "riskLimit": 1, "riskStep": 1, "impactNotional": 1,
}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, "unknown key 'colour'"),
        ({"payout": "spot"}, "payout must be one of"),
        ({"tickSize": "a lot"}, "tickSize is not a decimal"),
        ({"initMargin": "0.0000001"}, "initMargin has more than 6 decimals"),
        ({"lotSize": "1"}, "lotSize must be an integer"),
        ({"listings": [[2027, 5]]}, "quarter 1..4"),
        ({"auto": "yes"}, "auto must be true or false"),
    ],
)
def test_a_bad_file_names_the_series_and_key(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CatalogueError, match=message) as raised:
        parse_catalogue({"series": [{**BASE, **change}]})
    assert "SOLUSDT" in str(raised.value) or "colour" in str(raised.value)


def test_missing_keys_duplicates_and_config() -> None:
    with pytest.raises(CatalogueError, match="maxPrice is required"):
        parse_catalogue({"series": [{k: v for k, v in BASE.items() if k != "maxPrice"}]})
    with pytest.raises(CatalogueError, match="twice"):
        parse_catalogue({"series": [BASE, BASE]})
    with pytest.raises(CatalogueError, match="unknown key 'instruments'"):
        parse_catalogue({"instruments": []})
    assert parse_config({"catalogue": "futures.toml"}, Path("/etc/p")).catalogue == Path(
        "/etc/p/futures.toml"
    )
    assert parse_config({}).catalogue is None


def test_the_lister_defines_then_lists_what_is_due_and_not_expired() -> None:
    entries = load_catalogue(default_catalogue_path())
    known: dict[str, Any] = {}
    listed: set[str] = set()
    lister = CatalogueLister(entries, lambda: known, lambda: listed, None, lambda: 0)  # type: ignore[arg-type]
    due = lister.due(DEC_2026_NS)
    assert [type(c).__name__ for c in due[:3]] == ["DefineFutureSeries"] * 3
    quarters = ((2026, 4), (2027, 1), (2027, 2))  # Z26 is live (auto), H27 and M27 listed
    assert {(c.root, c.year, c.quarter) for c in due if isinstance(c, ListFuture)} == {
        (key, y, q) for key in ("XBTUSDT", "ETHUSDT", "ETHUSD") for y, q in quarters
    }
    for command in due:
        if isinstance(command, DefineFutureSeries):
            known[command.key] = entries[[e.series.key for e in entries].index(command.key)].series
    listed.update(LISTED)
    listed.update(("XBTUSDTZ26", "ETHUSDTZ26", "ETHUSDZ26"))
    assert lister.due(DEC_2026_NS) == []
    after_q1 = quarterly_expiry_ns(2027, 1) + 1
    assert all(c.quarter != 1 for c in lister.due(after_q1) if isinstance(c, ListFuture))


def _venue(path: Path) -> Any:
    saved = os.umask(0o022)
    try:
        return open_venue(
            VenueConfig(data_dir=path, operator_key="k", feeds=FeedsConfig(default="none"))
        )
    finally:
        os.umask(saved)


def _symbols(client: TestClient) -> set[str]:
    return {row["symbol"] for row in client.get("/api/v1/instrument").json()}


def test_the_venue_lists_the_catalogue_once_and_a_restart_recovers_it(tmp_path: Path) -> None:
    venue = _venue(tmp_path / "data")
    venue.start()
    try:
        with TestClient(venue.app) as client:
            deadline = time.monotonic() + 10
            while not set(LISTED[:3]) <= _symbols(client) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert set(LISTED[:3]) <= _symbols(client)
            (row,) = client.get("/api/v1/instrument", params={"symbol": "ETHUSDTH27"}).json()
            assert (row["typ"], row["rootSymbol"], row["settlCurrency"]) == (
                "FFCCSX", "ETH", "USDt",
            )  # fmt: skip
            assert (row["isInverse"], row["isQuanto"], row["tickSize"]) == (False, False, 0.05)
            assert row["referenceSymbol"] == ".BETHT" and row["expiry"].startswith("2027-03-26")
            (quanto,) = client.get("/api/v1/instrument", params={"symbol": "ETHUSDH27"}).json()
            assert quanto["isQuanto"] is True and quanto["settlCurrency"] == "XBt"
        journaled = venue.sequencer.engine.state.series
        assert set(journaled) == {"XBTUSDT", "ETHUSDT", "ETHUSD"}
    finally:
        venue.stop()
    again = _venue(tmp_path / "data")  # recovered from the journal, before any job runs
    try:
        assert set(again.sequencer.engine.state.series) == set(journaled)
        symbols = {spec.symbol for spec in again.sequencer.engine.instruments}
        assert set(LISTED[:3]) <= symbols
    finally:
        again.stop()


def test_a_bad_catalogue_stops_the_start_before_anything_opens(tmp_path: Path) -> None:
    bad = tmp_path / "futures.toml"
    bad.write_text('[[series]]\nkey = "SOLUSDT"\n', encoding="utf-8")
    config = VenueConfig(data_dir=tmp_path / "data", operator_key="k", catalogue=bad)
    with pytest.raises(ConfigError, match="SOLUSDT"):
        open_venue(config)
    assert not (tmp_path / "data").exists()


def test_the_operator_defines_and_lists_a_catalogue_file_at_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``perpetua operator catalogue FILE`` against a running venue (its requests go to the
    in-process gateway here): series defined, quarters listed, a second run reports them."""
    import argparse

    from perpetua.runtime import operator_client
    from tests.gateway.harness import OPERATOR_KEY, harness

    file = tmp_path / "futures.toml"
    file.write_text(
        "[[series]]\n"
        + "".join(f"{k} = {v!r}\n" for k, v in BASE.items()).replace("'", '"')
        + "listings = [[2027, 3]]\n",
        encoding="utf-8",
    )
    with harness() as h:

        def send(url: str, key: str, method: str, path: str, body: Any) -> Any:
            answer = h.client.request(
                method, "/api/v1" + path, json=body, headers={"x-operator-key": key}
            )
            if answer.status_code != 200:
                raise operator_client.OperatorError(
                    f"{answer.status_code}: {answer.json()['error']['message']}"
                )
            return answer.json()

        monkeypatch.setattr(operator_client, "_send", send)
        args = argparse.Namespace(
            operator_command="catalogue", file=file, url="http://venue", operator_key=OPERATOR_KEY
        )
        first = operator_client.run_operator(args)
        assert [a.get("already") for a in first] == [None, None]
        (row,) = h.client.get("/api/v1/instrument", params={"symbol": "SOLUSDTU27"}).json()
        assert (row["rootSymbol"], row["settlCurrency"], row["tickSize"]) == ("SOL", "USDt", 0.01)
        assert [a.get("already") for a in operator_client.run_operator(args)] == [True, True]
        bad = h.client.post(
            "/api/v1/admin/futureSeries",
            json={**first[0], "payout": "spot"},
            headers={"x-operator-key": OPERATOR_KEY},
        )
        assert bad.status_code == 400
        refused = h.client.post("/api/v1/admin/futureSeries", json={"key": "X", "payout": "linear"})
        assert refused.status_code == 403
