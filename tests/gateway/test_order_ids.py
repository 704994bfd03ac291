"""Issue 10 item 9: order ids do not reveal order flow (today's were the core's sequence in
hex) yet stay the same across restarts and replay of a data dir, and parse back exactly."""

import random
from pathlib import Path

import pytest

from perpetua.core.commands import Deposit
from perpetua.marketdata import ids
from tests.gateway.test_restart import ALICE, running

ORDERS = 12


def _low(uuid_text: str) -> int:
    return int(uuid_text[19:23] + uuid_text[24:], 16)


def test_order_ids_hide_the_sequence_and_survive_a_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    try:
        with running(data_dir) as venue:
            venue.execute(Deposit(0, ALICE, "XBt", 10**9, "order-ids"))
            placed = [
                venue.signed(
                    "POST",
                    "/order",
                    body={
                        "symbol": "XBTUSD",
                        "side": "Buy",
                        "orderQty": 100,
                        "price": 1000 + n,
                        "clOrdID": f"o{n}",
                    },
                )["orderID"]
                for n in range(ORDERS)
            ]
        lows = [_low(text) for text in placed]
        assert len(set(lows)) == ORDERS
        # the core numbers these orders consecutively; their ids are not consecutive, not
        # ordered, and not small
        steps = {b - a for a, b in zip(lows, lows[1:], strict=False)}
        assert 1 not in steps and len(steps) == ORDERS - 1
        assert lows != sorted(lows) and max(lows) > 2**40
        with running(data_dir) as venue:  # recovered from the journal
            listed = venue.signed("GET", "/order", params={"reverse": "false"})
            assert [row["orderID"] for row in listed] == placed
            by_id = venue.signed(
                "GET", "/order", params={"filter": f'{{"orderID": "{placed[3]}"}}'}
            )
            assert [row["clOrdID"] for row in by_id] == ["o3"]
            cancelled = venue.signed("DELETE", "/order", body={"orderID": placed[5]})
            assert cancelled[0]["clOrdID"] == "o5" and cancelled[0]["ordStatus"] == "Canceled"
        assert (data_dir / "secrets" / "order-ids.key").stat().st_mode & 0o077 == 0
    finally:
        ids.use_order_id_key(None)


def test_the_permutation_is_exact_and_keyed() -> None:
    rng = random.Random(7)
    try:
        ids.use_order_id_key(bytes(range(32)))
        first = ids.order_uuid(1)
        for value in [0, 1, 2, 2**63, 2**64 - 1, *(rng.getrandbits(64) for _ in range(2000))]:
            assert ids.parse_order_uuid(ids.order_uuid(value)) == value
        ids.use_order_id_key(bytes(range(1, 33)))
        assert ids.order_uuid(1) != first
        with pytest.raises(ValueError):
            ids.use_order_id_key(b"short")
    finally:
        ids.use_order_id_key(None)
    assert ids.order_uuid(1) == "4f524400-0000-4000-0000-000000000001"
