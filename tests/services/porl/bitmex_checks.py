"""A re-implementation of the checks BitMEX's ``validate_liabilities.py`` makes (its public
repository BitMEX/proof-of-reserves-liabilities), in the same order and with the same
tolerances, so a file this accepts is one that tool accepts: read with the csv module, the
first row split on ":" into the label "block_height" and an int; every other row exactly two
fields, a hex digest and an int; rows grouped 1, 2, 4, ... (an incomplete last row dropped);
the leaf row a power of two; then for every leaf whose HMAC matches, each parent on the path
recomputed (digest, then sum) and compared, and the matched values summed. Written here from
that description; no code of theirs is copied.
"""

import csv
import hashlib
import hmac
import io
import struct


def _q(value: int) -> bytes:
    return struct.pack("<Q", value)


def read_rows(text: str) -> tuple[int, list[list[tuple[bytes, int]]]]:
    rows: list[list[tuple[bytes, int]]] = []
    current: list[tuple[bytes, int]] = []
    width = 1
    height = -1
    for number, fields in enumerate(csv.reader(io.StringIO(text), delimiter=",")):
        if number == 0:
            label, value = fields[0].split(":")
            assert label == "block_height"
            height = int(value)
            continue
        current.append((bytearray.fromhex(fields[0]), int(fields[1])))
        assert len(fields) == 2
        if len(current) == width:
            rows.append(current)
            current = []
            width *= 2
    leaves = len(rows[-1])
    if leaves == 0 or leaves & (leaves - 1):
        raise ValueError("leaf count is not a power of two")
    rows.reverse()  # leaves first, as that tool walks them
    return height, rows


def validate(
    text: str, account: int, *, nonce_hex: str | None = None, account_nonce_hex: str | None = None
) -> str:
    height, rows = read_rows(text)
    if nonce_hex is not None:
        key = bytes(bytearray.fromhex(nonce_hex))
    else:
        key = hashlib.sha256(
            bytes(bytearray.fromhex(account_nonce_hex or "")) + _q(height) + _q(account)
        ).digest()
    summed = 0
    for index, (digest, value) in enumerate(rows[0]):
        if hmac.new(key, _q(value) + _q(index), hashlib.sha256).digest() != digest:
            continue
        at = index
        for level in range(len(rows) - 1):
            left = at - at % 2
            (ld, lv), (rd, rv) = rows[level][left : left + 2]
            parent = (hashlib.sha256(bytes(ld) + _q(lv) + bytes(rd) + _q(rv)).digest(), lv + rv)
            at //= 2
            if parent[0] != rows[level + 1][at][0]:
                raise ValueError("Tree node hash computation mismatch")
            if parent[1] != rows[level + 1][at][1]:
                raise ValueError("Tree node sats computation mismatch")
        summed += value
    return (
        f"Validated {summed:,} in satoshis for account {account},"
        f" total liabilities {rows[-1][0][1]:,}"
    )
