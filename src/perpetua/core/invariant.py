"""Always-on invariants.

Python's ``assert`` vanishes under ``-O``; an exchange's checks must not. A failed invariant is a
programmer error: the process crashes and restarts from snapshot + journal replay.
"""

from typing import NoReturn

__all__ = ["InvariantError", "fail", "invariant"]


class InvariantError(Exception):
    """A rule that must always hold was broken: a bug, never a business outcome."""


def fail(message: str) -> NoReturn:
    raise InvariantError(message)


def invariant(condition: bool, message: str) -> None:
    if not condition:
        raise InvariantError(message)
