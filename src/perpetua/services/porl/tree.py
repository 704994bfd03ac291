"""The liabilities proof: a Merkle sum tree of blinded, split leaves, in BitMEX's file format.

Format (BitMEX/proof-of-reserves-liabilities; ../shared/reference/bitmex-porl.md), every
integer serialised as 8 bytes little-endian unsigned (``u64le``):

    sub_nonce   = sha256(account_nonce || u64le(height) || u64le(account))
    leaf_digest = HMAC-SHA256(key=sub_nonce, msg=u64le(leaf_value) || u64le(leaf_index))
    node_value  = left_value + right_value
    node_digest = sha256(left_digest || u64le(left_value) || right_digest || u64le(right_value))

The file: ``block_height:<height>``, then one ``<hex digest>,<value>`` line per node, root
first, then each row left to right down to the leaves; lines end with ``\\n``.

Blinding, from the operating system's cryptographic source (``secrets``) only:
1. Accounts owing nothing are left out. The leaf row has ``leaf_count(n)`` leaves: the smallest
   power of two holding ``SPLIT_MIN`` parts per account (at least 2 leaves).
2. Parts are split at a uniformly random point, largest first, round after round, until the row
   is full; a part of value 1 cannot be split. With at least ``SPLIT_MIN`` parts per account
   in the row, every account worth 2 or more is split at least once.
3. If every part is 1 and the row is still short, the rest are padding leaves: value 0 and a
   random 32-byte digest, which no nonce matches and nothing attributes to an account.
4. The parts are shuffled (Fisher-Yates over ``secrets.SystemRandom``) before they take their
   leaf indices. Nothing else is kept: the tree records no account and no order.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from collections.abc import Mapping
from typing import Final, NamedTuple

__all__ = [
    "HEIGHT_PREFIX",
    "NONCE_BYTES",
    "SPLIT_MIN",
    "U64_MAX",
    "Node",
    "ProofTree",
    "build_tree",
    "leaf_count",
    "leaf_digest",
    "node_digest",
    "render",
    "split_parts",
    "sub_nonce",
]

NONCE_BYTES: Final = 32
SPLIT_MIN: Final = 2  # parts per account the leaf row must hold room for
U64_MAX: Final = 2**64 - 1
HEIGHT_PREFIX: Final = "block_height:"
_U64: Final = struct.Struct("<Q")
_RANDOM: Final = secrets.SystemRandom()
ACCOUNTS_MAX: Final = 2**26  # a leaf row of 2**27 leaves: about 10 GB of file, a hard stop


def _u64(value: int) -> bytes:
    if not 0 <= value <= U64_MAX:
        raise ValueError(f"{value} does not fit an unsigned 64-bit integer")
    return _U64.pack(value)


def sub_nonce(account_nonce: bytes, height: int, account: int) -> bytes:
    if len(account_nonce) != NONCE_BYTES:
        raise ValueError(f"an account nonce is {NONCE_BYTES} bytes")
    return hashlib.sha256(account_nonce + _u64(height) + _u64(account)).digest()


def leaf_digest(key: bytes, value: int, index: int) -> bytes:
    return hmac.new(key, _u64(value) + _u64(index), hashlib.sha256).digest()


def node_digest(left: Node, right: Node) -> bytes:
    return hashlib.sha256(
        left.digest + _u64(left.value) + right.digest + _u64(right.value)
    ).digest()


class Node(NamedTuple):
    digest: bytes
    value: int


class ProofTree(NamedTuple):
    height: int
    rows: list[list[Node]]  # rows[0] is the root's row, rows[-1] the leaves

    @property
    def root(self) -> Node:
        return self.rows[0][0]

    @property
    def leaves(self) -> list[Node]:
        return self.rows[-1]


def leaf_count(accounts: int) -> int:
    """Rule 1: the smallest power of two >= SPLIT_MIN * accounts, and at least 2."""
    wanted = max(2, SPLIT_MIN * accounts)
    return 1 << (wanted - 1).bit_length()


def split_parts(amounts: Mapping[int, int]) -> list[tuple[int, int]]:
    """Rules 1-3: (account, part) for each leaf, unshuffled; padding has account -1."""
    owed = [(account, amount) for account, amount in amounts.items() if amount > 0]
    if len(owed) > ACCOUNTS_MAX:
        raise ValueError(f"{len(owed)} accounts: above {ACCOUNTS_MAX}")
    for account, amount in owed:
        if account < 0 or account > U64_MAX or amount > U64_MAX:
            raise ValueError(f"account {account} or amount {amount} is not an unsigned u64")
    target = leaf_count(len(owed))
    parts = owed
    while len(parts) < target:
        parts.sort(key=lambda part: part[1], reverse=True)
        room = target - len(parts)
        grown: list[tuple[int, int]] = []
        for account, amount in parts:
            if room > 0 and amount > 1:
                cut = 1 + secrets.randbelow(amount - 1)  # 1 .. amount-1: both parts >= 1
                grown.append((account, cut))
                grown.append((account, amount - cut))
                room -= 1
            else:
                grown.append((account, amount))
        if len(grown) == len(parts):  # rule 3: nothing left to split
            grown.extend((-1, 0) for _ in range(target - len(grown)))
        parts = grown
    return parts


def build_tree(height: int, amounts: Mapping[int, int], nonces: Mapping[int, bytes]) -> ProofTree:
    """The tree for ``amounts`` (proof account -> liability) at ``height``; ``nonces`` holds
    every owing account's 32-byte lifetime nonce."""
    _u64(height)
    if sum(amount for amount in amounts.values() if amount > 0) > U64_MAX:
        raise ValueError("the total liability does not fit an unsigned 64-bit integer")
    parts = split_parts(amounts)
    _RANDOM.shuffle(parts)
    keys = {
        account: sub_nonce(nonces[account], height, account) for account, _ in parts if account >= 0
    }
    leaves = [
        Node(
            leaf_digest(keys[account], value, index) if account >= 0 else secrets.token_bytes(32),
            value,
        )
        for index, (account, value) in enumerate(parts)
    ]
    rows = [leaves]
    while len(rows[0]) > 1:
        below = rows[0]
        rows.insert(
            0,
            [
                Node(node_digest(below[i], below[i + 1]), below[i].value + below[i + 1].value)
                for i in range(0, len(below), 2)
            ],
        )
    return ProofTree(height, rows)


def render(tree: ProofTree) -> bytes:
    """The file's bytes: the height line, then every node root first, row by row."""
    lines = [f"{HEIGHT_PREFIX}{tree.height}"]
    for row in tree.rows:
        lines.extend(f"{node.digest.hex()},{node.value}" for node in row)
    return ("\n".join(lines) + "\n").encode("ascii")
