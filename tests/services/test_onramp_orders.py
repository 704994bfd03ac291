"""Bank-transfer orders kept in a shared database (services.onramp rule 4), on PostgreSQL, as a
cluster's gateways keep them: an order made through one gateway is listed and confirmed through
another; four-eyes holds across gateways (the second approver must be someone else, wherever
the first confirmed); two gateways confirming one order at the same moment serialise on its row
lock, so one approval is counted once and the order becomes Approved once. The same lifecycle
holds on the embedded venue's file, restarted."""

import threading
from pathlib import Path

import pytest

from perpetua.services.onramp import (
    USDT_MINOR,
    BankTransfer,
    FileBankOrders,
    OnRampError,
    SqlBankOrders,
)
from perpetua.store import migrate, open_engine
from tests.store.databases import postgres_schema_url

FOUR_EYES_USDT = 1_000
SMALL = 100 * USDT_MINOR
LARGE = 5_000 * USDT_MINOR


def test_orders_are_shared_by_gateways_with_four_eyes_across_them() -> None:
    with postgres_schema_url() as url:
        migrate(url)
        engines = [open_engine(url), open_engine(url)]
        try:
            g1, g2 = (BankTransfer(SqlBankOrders(e), FOUR_EYES_USDT) for e in engines)
            small = g1.create(7, SMALL)
            large = g1.create(7, LARGE)
            g2.create(8, SMALL)
            assert [o["reference"] for o in g2.of(7)] == [small.reference, large.reference]
            assert len(g1.of(None)) == 3

            assert g2.confirm(small.reference, "ann").status == "Approved"
            assert g1.credited(small.reference).status == "Credited"
            with pytest.raises(OnRampError, match="Credited"):
                g1.confirm(small.reference, "bob")

            assert g1.confirm(large.reference, "ann").status == "AwaitingSecondApproval"
            with pytest.raises(OnRampError, match="someone else"):
                g2.confirm(large.reference, "ann")
            approved = g2.confirm(large.reference, "bob")
            assert approved.status == "Approved" and approved.approvals == ("ann", "bob")
            # the Deposit failed after approval: confirming again retries without an approval
            assert g1.confirm(large.reference, "carl").approvals == ("ann", "bob")
            with pytest.raises(OnRampError) as missing:
                g2.confirm("PPT-NOPE", "ann")
            assert missing.value.status == 404
        finally:
            for engine in engines:
                engine.dispose()


def test_two_gateways_confirming_at_once_count_each_approval_once() -> None:
    with postgres_schema_url() as url:
        migrate(url)
        engines = [open_engine(url) for _ in range(4)]
        try:
            gateways = [BankTransfer(SqlBankOrders(e), FOUR_EYES_USDT) for e in engines]
            for _round in range(5):
                order = gateways[0].create(7, LARGE)
                outcomes: list[str] = []
                start = threading.Barrier(len(gateways))

                def confirm(
                    gateway: BankTransfer,
                    approver: str,
                    reference: str = order.reference,
                    outcomes: list[str] = outcomes,
                    start: threading.Barrier = start,
                ) -> None:
                    start.wait()
                    try:
                        outcomes.append(gateway.confirm(reference, approver).status)
                    except OnRampError as error:
                        outcomes.append(error.message)

                # two gateways with the same approver, two with another: exactly one of each
                # name counts, whichever order the row lock gives them
                threads = [
                    threading.Thread(target=confirm, args=(g, name))
                    for g, name in zip(gateways, ("ann", "ann", "bob", "bob"), strict=True)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()
                (final,) = [o for o in gateways[1].of(7) if o["reference"] == order.reference]
                assert final["status"] == "Approved"
                assert sorted(final["approvals"]) == ["ann", "bob"], (final, outcomes)
                # the first counted approval waits for a second; an "ann" or "bob" after its
                # twin is refused, or, once Approved, answered Approved (the retry path)
                assert outcomes.count("AwaitingSecondApproval") == 1, outcomes
                assert all(
                    o in ("AwaitingSecondApproval", "Approved") or "someone else" in o
                    for o in outcomes
                ), outcomes
        finally:
            for engine in engines:
                engine.dispose()


def test_the_file_store_keeps_the_lifecycle_across_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "onramp" / "bank-orders.jsonl"
    bank = BankTransfer(FileBankOrders(path), FOUR_EYES_USDT)
    order = bank.create(7, LARGE)
    bank.confirm(order.reference, "ann")
    again = BankTransfer(path, FOUR_EYES_USDT)  # a restart replays the file
    with pytest.raises(OnRampError, match="someone else"):
        again.confirm(order.reference, "ann")
    assert again.confirm(order.reference, "bob").status == "Approved"
    assert again.credited(order.reference).status == "Credited"
    assert BankTransfer(path).of(7)[0]["status"] == "Credited"
