"""Filter value conversion, without a database."""

import uuid

import pytest

from perpetua.core.catalogue import by_symbol, default_catalogue
from perpetua.core.enums import OrdStatus, Side
from perpetua.store.filters import (
    ORD_STATUS_BY_NAME,
    QueryError,
    enum_value,
    id_value,
    int_value,
    price_value,
)

XBTUSD = by_symbol(default_catalogue())["XBTUSD"]


def test_ids_are_the_low_64_bits_of_any_uuid() -> None:
    exec_uuid = str(uuid.UUID(int=(0x45584543 << 96) | 77))
    assert id_value("execID", exec_uuid, None) == 77
    assert id_value("execID", "4F524400-0000-4000-0000-00000000002A", None) == 42
    assert id_value("execID", 5, None) == 5
    assert id_value("execID", "6", None) == 6


def test_enum_values_by_name_or_core_int() -> None:
    status = enum_value(ORD_STATUS_BY_NAME)
    assert status("ordStatus", "PartiallyFilled", None) == OrdStatus.PARTIALLY_FILLED
    assert status("ordStatus", int(OrdStatus.FILLED), None) == OrdStatus.FILLED
    with pytest.raises(QueryError):
        status("ordStatus", 99, None)
    with pytest.raises(QueryError):
        status("ordStatus", True, None)
    assert int(Side.SELL) == -1


def test_prices_parse_exactly_onto_the_tick_grid() -> None:
    assert price_value("price", "20000.1", XBTUSD) == 200_001
    assert price_value("price", 20000.5, XBTUSD) == 200_005
    assert price_value("price", 20000, XBTUSD) == 200_000
    for bad in ("20000.05", "NaN", "abc", None, True):
        with pytest.raises(QueryError):
            price_value("price", bad, XBTUSD)


def test_integers_reject_booleans_and_text() -> None:
    assert int_value("orderQty", "-10", None) == -10
    for bad in (True, "1.5", "ten", 1.0):
        with pytest.raises(QueryError):
            int_value("orderQty", bad, None)
