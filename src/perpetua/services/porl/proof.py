"""Reading and checking a published liabilities file: what ``perpetua verify-liabilities`` runs.

The check is stricter than a single path: every line must parse (line 1 ``block_height:<N>``,
then ``<64 hex digits>,<decimal u64>``), the node lines must make whole rows (1, 2, 4, ...
nodes: 2**k - 1 lines), and *every* inner node must equal its two children (digest and sum), so
a changed byte anywhere in the file is found, not only on the checker's own path. The first bad
line is named (1-based, as an editor shows it):

1. a line that does not parse is named itself;
2. a node that does not match its children and does not match its own parent either is the
   damaged line (its parent was computed from what it held before);
3. a node that does not match its children but is matched by its parent holds what was
   computed from its children before one of them changed: the damaged line is a child (an
   inner child that fails its own check; for leaf children nothing else tells which, so both
   are named, the lower first);
4. with several damaged lines, the first one in the file is named: every node is checked
   (a line that does not parse takes no part in the checks of its neighbours) and the lowest
   suspect wins, so a later unparsable line does not hide an earlier changed digest.

Then the account's leaves are found by their HMAC under the sub-nonce, each path to the root is
recomputed, and the account's total, the root's total and digest are reported.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final, NamedTuple

from perpetua.services.porl.tree import (
    HEIGHT_PREFIX,
    NONCE_BYTES,
    U64_MAX,
    Node,
    ProofTree,
    leaf_digest,
    node_digest,
    sub_nonce,
)

__all__ = [
    "PROOF_BYTES_MAX",
    "Inclusion",
    "ProofError",
    "check_tree",
    "find_account",
    "parse_proof",
    "read_proof",
]

PROOF_BYTES_MAX: Final = 16 * 2**30  # 16 GiB: far beyond any real proof, a stop for garbage
_NODE_LINE: Final = re.compile(r"([0-9a-f]{64}),(0|[1-9][0-9]{0,19})")
_HEIGHT_LINE: Final = re.compile(re.escape(HEIGHT_PREFIX) + r"(0|[1-9][0-9]{0,19})")
_UNREADABLE: Final = Node(b"", -1)  # a node line that did not parse (never a real node)


class ProofError(Exception):
    """The file is damaged or does not add up; ``lines`` are the suspect lines, first first."""

    def __init__(self, lines: tuple[int, ...], reason: str) -> None:
        self.lines = lines
        self.line = lines[0]
        self.reason = reason
        super().__init__(f"line {' or '.join(str(n) for n in lines)}: {reason}")


class Inclusion(NamedTuple):
    height: int
    account: int
    leaves: tuple[tuple[int, int], ...]  # (leaf index, value) of every leaf the nonce opens
    total: int  # the account's included total
    root_value: int
    root_digest: str
    leaf_count: int


def _line_of(row: int, index: int) -> int:
    """The file line of node ``index`` in ``row`` (row 0 the root); line 1 is the height."""
    return (1 << row) - 1 + index + 2


def _parse(text: str) -> tuple[ProofTree, int]:
    """The tree, and the first node line that does not parse (0: none); such a node is
    ``_UNREADABLE``. Raises ProofError for a bad height line or an incomplete last row."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        raise ProofError((1,), "empty file")
    head = _HEIGHT_LINE.fullmatch(lines[0].rstrip("\r"))
    if head is None or int(head.group(1)) > U64_MAX:
        raise ProofError((1,), f"expected {HEIGHT_PREFIX}<height>")
    rows: list[list[Node]] = []
    row: list[Node] = []
    unreadable = 0
    for number, line in enumerate(lines[1:], start=2):
        match = _NODE_LINE.fullmatch(line.rstrip("\r"))
        if match is None or int(match.group(2)) > U64_MAX:
            unreadable = unreadable or number
            row.append(_UNREADABLE)
        else:
            row.append(Node(bytes.fromhex(match.group(1)), int(match.group(2))))
        if len(row) == 1 << len(rows):
            rows.append(row)
            row = []
    if not rows:
        raise ProofError((len(lines) + 1,), "no tree after the height line")
    if row:
        raise ProofError((len(lines),), f"the last row has {len(row)} nodes, not {1 << len(rows)}")
    return ProofTree(int(head.group(1)), rows), unreadable


def parse_proof(text: str) -> ProofTree:
    """The tree of a file whose every line parses; ProofError names the first that does not
    (rule 4: an earlier damaged node it can show is named instead)."""
    tree, unreadable = _parse(text)
    if unreadable:
        damage = _damage(tree)
        if damage is not None and damage.line < unreadable:
            raise damage
        raise ProofError((unreadable,), "expected <64 hex digits>,<unsigned 64-bit value>")
    return tree


def _matches(tree: ProofTree, row: int, index: int) -> bool | None:
    """Whether node (row, index) equals the node computed from its two children; None when
    one of the three did not parse (nothing can be said)."""
    left, right = tree.rows[row + 1][2 * index], tree.rows[row + 1][2 * index + 1]
    node = tree.rows[row][index]
    if _UNREADABLE in (left, right, node):
        return None
    total = left.value + right.value
    return total <= U64_MAX and node == Node(node_digest(left, right), total)


def _blame(tree: ProofTree, row: int, index: int) -> ProofError:
    """Rules 2-3 for a node (row, index) that does not match its children."""
    depth = len(tree.rows)
    if row > 0 and _matches(tree, row - 1, index // 2) is False:
        return ProofError((_line_of(row, index),), "node does not match its children")
    if row + 1 < depth - 1:  # inner children: the one that fails its own check
        for child in (2 * index, 2 * index + 1):
            if _matches(tree, row + 1, child) is False:
                return ProofError((_line_of(row + 1, child),), "node does not match its children")
        return ProofError((_line_of(row, index),), "node does not match its children")
    children = (_line_of(row + 1, 2 * index), _line_of(row + 1, 2 * index + 1))
    suspects = children if row > 0 else (_line_of(row, index), *children)
    return ProofError(suspects, f"leaves do not match their parent on line {_line_of(row, index)}")


def _damage(tree: ProofTree) -> ProofError | None:
    """The damage whose first suspect line comes first in the file (rule 4), or None."""
    first: ProofError | None = None
    for row in range(len(tree.rows) - 1):
        for index in range(len(tree.rows[row])):
            if _matches(tree, row, index) is False:
                found = _blame(tree, row, index)
                if first is None or found.line < first.line:
                    first = found
    return first


def check_tree(tree: ProofTree) -> None:
    """Every inner node equals its children; raises ProofError naming the first damaged line
    (rules 2-4)."""
    damage = _damage(tree)
    if damage is not None:
        raise damage


def find_account(
    tree: ProofTree, account: int, nonce: bytes, *, account_nonce: bool = False
) -> Inclusion:
    """The leaves ``nonce`` opens (a per-proof sub-nonce, or with ``account_nonce`` the
    lifetime one) and each one's path to the root, recomputed (check_tree first for the rest)."""
    if len(nonce) != NONCE_BYTES:
        raise ValueError(f"a nonce is {NONCE_BYTES} bytes ({2 * NONCE_BYTES} hex digits)")
    key = sub_nonce(nonce, tree.height, account) if account_nonce else nonce
    found: list[tuple[int, int]] = []
    for index, leaf in enumerate(tree.leaves):
        if leaf_digest(key, leaf.value, index) != leaf.digest:
            continue
        current, at = leaf, index
        for row in range(len(tree.rows) - 1, 0, -1):
            pair = tree.rows[row][at - at % 2 : at - at % 2 + 2]
            current = Node(node_digest(pair[0], pair[1]), pair[0].value + pair[1].value)
            at //= 2
            if tree.rows[row - 1][at] != current:
                raise ProofError((_line_of(row - 1, at),), "path to the root does not add up")
        found.append((index, leaf.value))
    return Inclusion(
        tree.height,
        account,
        tuple(found),
        sum(value for _, value in found),
        tree.root.value,
        tree.root.digest.hex(),
        len(tree.leaves),
    )


def read_proof(path: Path) -> ProofTree:
    """Parse and fully check the file at ``path``."""
    if path.stat().st_size > PROOF_BYTES_MAX:
        raise ProofError((1,), f"file larger than {PROOF_BYTES_MAX} bytes")
    try:
        text = path.read_bytes().decode("ascii")
    except UnicodeDecodeError as error:
        data = path.read_bytes()
        raise ProofError((data[: error.start].count(b"\n") + 1,), "not ASCII") from None
    tree = parse_proof(text)
    check_tree(tree)
    return tree
