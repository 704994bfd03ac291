"""The live adapter interface: pure ticker parsing, error groups, and a LiveSource driven by the
fake transport (no live venue is reachable from the tests)."""

import pytest

from perpetua.feeds import ConstituentStatus, IndexStatus
from perpetua.feeds.live import (
    FakeTransport,
    FeedRejected,
    FeedRetryable,
    FeedStopped,
    HttpTransport,
    LiveIndexConfig,
    LiveSource,
    LiveVenueConfig,
    parse_ticker,
)

S = 10**9
NOW_NS = 1_796_083_200 * S
BITSTAMP = b'{"high": "1", "last": "97843.77", "timestamp": "1796083190", "bid": "97843.70"}'
COINBASE = b'{"price": "97850.125", "size": "0.1", "time": "2026-12-01T00:00:02.500Z"}'
BITSTAMP_LATER = b'{"last": "97900.00", "timestamp": "1796084150"}'  # 15 min 50 s on
KRAKEN = b'{"error": [], "result": {"XXBTZUSD": {"c": ["97840.00000", "0.0100"]}}}'


def test_parse_each_format_exactly() -> None:
    assert parse_ticker("bitstamp", BITSTAMP, 2) == (9_784_377, 1_796_083_190 * S)
    coinbase = parse_ticker("coinbase", COINBASE, 2)
    assert coinbase.units == 9_785_012  # floored to the index's 2 decimals
    assert coinbase.ts_ns == NOW_NS + 2_500_000_000
    assert parse_ticker("kraken", KRAKEN, 2) == (9_784_000, None)
    assert parse_ticker("generic", b'{"price": 1.0852}', 5) == (108_520, None)
    assert parse_ticker("generic", b'{"price": "3400", "timestamp": 1796083200.25}', 2) == (
        340_000,
        NOW_NS + 250_000_000,
    )


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b'{"last": null}',
        b'{"price": "-1"}',
        b'{"price": true}',
        b'{"price": "1e3"}',
        b'{"price": "1", "timestamp": "soon"}',
    ],
)
def test_malformed_payloads_are_rejected_not_guessed(payload: bytes) -> None:
    with pytest.raises(FeedRejected):
        parse_ticker("generic", payload, 2)


def test_kraken_error_is_rejected() -> None:
    with pytest.raises(FeedRejected, match="kraken error"):
        parse_ticker("kraken", b'{"error": ["EQuery:Unknown asset pair"]}', 2)


def test_config_is_checked() -> None:
    with pytest.raises(ValueError):
        LiveVenueConfig("X", "https://x", "binance", 1)
    with pytest.raises(ValueError):
        LiveVenueConfig("X", "ftp://x", "generic", 1)
    HttpTransport()  # constructible; not exercised (no network here)


def _config() -> LiveIndexConfig:
    return LiveIndexConfig(
        ".BXBT",
        2,
        (
            LiveVenueConfig("Bitstamp", "https://bitstamp.test/t", "bitstamp", 500_000),
            LiveVenueConfig("Coinbase", "https://coinbase.test/t", "coinbase", 300_000),
            LiveVenueConfig("Kraken", "https://kraken.test/t", "kraken", 200_000),
        ),
    )


def test_live_source_composes_and_applies_the_protections() -> None:
    transport = FakeTransport(
        {
            "https://bitstamp.test/t": [BITSTAMP, BITSTAMP, BITSTAMP, BITSTAMP_LATER],
            "https://coinbase.test/t": [COINBASE, FeedRetryable("timeout")],
            "https://kraken.test/t": [KRAKEN, FeedRejected("garbled"), FeedStopped("HTTP 403")],
        }
    )
    source = LiveSource((_config(),), transport)
    assert source.symbols() == (".BXBT",)
    first = source.advance(NOW_NS)[0]
    # Bitstamp's own time is kept (10 s old); Coinbase's is ahead of ours: capped at now
    rows = {r.venue: r for r in first.constituents}
    assert rows["Bitstamp"].logged_ns == NOW_NS - 10 * S
    assert rows["Coinbase"].logged_ns == NOW_NS
    assert first.publish and first.status == IndexStatus.LIVE
    assert first.units == (9_784_377 * 5 + 9_785_012 * 3 + 9_784_000 * 2) // 10
    assert len(transport.requests) == 3
    # Coinbase times out, Kraken's print is garbled, then Kraken answers 403: switched off.
    source.advance(NOW_NS + 5 * S)
    source.advance(NOW_NS + 10 * S)
    assert source.venues[".BXBT"][2].stopped
    asked = len(transport.requests)
    later = source.advance(NOW_NS + 16 * 60 * S)  # 16 minutes on: the silent ones are dropped
    assert len(transport.requests) == asked + 2  # Kraken is no longer asked
    rows = {r.venue: r for r in later[0].constituents}
    assert rows["Coinbase"].status == ConstituentStatus.DROPPED
    assert rows["Kraken"].status == ConstituentStatus.DROPPED
    assert rows["Bitstamp"].effective_weight_ppm == 1_000_000
    assert later[0].units == 9_790_000 and later[0].publish


def test_every_venue_failing_makes_the_index_stale_and_held() -> None:
    transport = FakeTransport({"https://bitstamp.test/t": [BITSTAMP, FeedRetryable("down")]})
    config = LiveIndexConfig(".BXBT", 2, _config().venues[:1])
    source = LiveSource((config,), transport)
    published = source.advance(NOW_NS)[0]
    stale = source.advance(NOW_NS + 20 * 60 * S)[0]
    assert stale.status == IndexStatus.STALE and not stale.publish
    assert stale.units == published.units
