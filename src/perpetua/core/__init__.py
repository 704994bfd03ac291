"""The pure, deterministic trading core: ``Engine.apply(command) -> list[Event]``.

No I/O, clock, randomness, threads or asyncio; standard library only. See
``docs/architecture`` and each module's docstring for its invariants and rounding rules.
"""

from perpetua.core.engine import Engine

__all__ = ["Engine"]
