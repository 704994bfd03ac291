"""An independent check of a liabilities proof, written from the format description alone
(../shared/reference/bitmex-porl.md), sharing no code with ``perpetua.services.porl``.

The file's node lines, root first and row by row, are a binary heap in array order: node ``i``
has children ``2i+1`` and ``2i+2``. So the whole tree is checked by one pass over the array
from the last inner node back to the root.
"""

import hashlib
import hmac
import struct


class Invalid(Exception):
    pass


def _le(value: int) -> bytes:
    return struct.pack("<Q", value)


def load(data: bytes) -> tuple[int, list[tuple[bytes, int]]]:
    text = data.decode("ascii")
    if not text.endswith("\n"):
        raise Invalid("no final newline")
    head, *body = text[:-1].split("\n")
    label, sep, height = head.partition(":")
    if label != "block_height" or sep != ":" or not height.isdigit() or height != str(int(height)):
        raise Invalid("bad height line")
    nodes = []
    for line in body:
        digest_hex, sep, value_text = line.partition(",")
        if sep != "," or len(digest_hex) != 64 or digest_hex != digest_hex.lower():
            raise Invalid(f"bad node line {line!r}")
        if not value_text.isdigit() or value_text != str(int(value_text)):
            raise Invalid(f"bad value {value_text!r}")
        nodes.append((bytes.fromhex(digest_hex), int(value_text)))
    count = len(nodes) + 1
    if count < 2 or count & (count - 1):
        raise Invalid(f"{len(nodes)} nodes do not make a full binary tree")
    return int(height), nodes


def check_all(nodes: list[tuple[bytes, int]]) -> None:
    for i in range(len(nodes) // 2 - 1, -1, -1):
        (ld, lv), (rd, rv) = nodes[2 * i + 1], nodes[2 * i + 2]
        expected = (hashlib.sha256(ld + _le(lv) + rd + _le(rv)).digest(), lv + rv)
        if nodes[i] != expected:
            raise Invalid(f"node {i} does not match its children")


def derive(account_nonce: bytes, height: int, account: int) -> bytes:
    return hashlib.sha256(account_nonce + _le(height) + _le(account)).digest()


def validate(
    data: bytes, account: int, *, nonce: bytes | None = None, account_nonce: bytes | None = None
) -> tuple[int, int, str]:
    """(the account's total, the root's total, the root's hex digest); raises Invalid."""
    height, nodes = load(data)
    check_all(nodes)
    key = nonce if nonce is not None else derive(account_nonce or b"", height, account)
    first_leaf = len(nodes) // 2
    total = 0
    for position in range(first_leaf, len(nodes)):
        index = position - first_leaf
        digest, value = nodes[position]
        if hmac.new(key, _le(value) + _le(index), hashlib.sha256).digest() == digest:
            total += value
    return total, nodes[0][1], nodes[0][0].hex()
