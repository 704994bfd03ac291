"""The wire vocabulary names every value of the core's enums, and nothing else."""

from perpetua.core import enums
from perpetua.core.ledger import TransferCode
from perpetua.wire import vocabulary as v
from perpetua.wire.vocabulary import READ_MODEL_EXEC_TYPE_NAMES


def test_values_match_core() -> None:
    assert {s.value for s in enums.Side} == set(v.SIDE_NAMES)
    assert {o.value for o in enums.OrdType} == set(v.ORD_TYPE_NAMES)
    assert {t.value for t in enums.TimeInForce} == set(v.TIF_NAMES)
    assert {s.value for s in enums.OrdStatus} == set(v.ORD_STATUS_NAMES)
    assert {e.value for e in enums.ExecType} == set(v.EXEC_TYPE_NAMES) - set(
        READ_MODEL_EXEC_TYPE_NAMES
    )
    assert not {e.value for e in enums.ExecType} & set(READ_MODEL_EXEC_TYPE_NAMES)
    assert {v.ORD_STATUS_NAMES[s] for s in v.ORD_STATUS_TERMINAL_VALUES} == v.ORD_STATUS_TERMINAL
    assert {p.value for p in enums.PegPriceType} == set(v.PEG_NAMES)
    assert {c.value for c in enums.ContingencyType} == set(v.CONTINGENCY_NAMES)
    assert {code.value for code in TransferCode} >= set(v.TRANSFER_CODE_NAMES)
    assert {name: bit for bit, name in enums.EXEC_INST_NAMES.items()} == v.EXEC_INST_BITS
    assert v.exec_inst_text(enums.ExecInst.LAST_PRICE | enums.ExecInst.CLOSE) == "LastPrice,Close"
