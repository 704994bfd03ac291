"""Read models in SQL: schema and migrations, the projector that fills them from the event
stream, and BitMEX table queries over them (SQLite by default, PostgreSQL by URL).

Start-up: ``migrate(url)``, then ``Projector(open_engine(url))`` subscribed to the sequencer
(directly, or behind ``ProjectorThread``); the gateway reads with ``store.queries``.
"""

from perpetua.store.database import default_url, migrate, open_engine
from perpetua.store.filters import QueryError
from perpetua.store.projector import (
    ProjectionConflict,
    ProjectionError,
    ProjectionGap,
    Projector,
    ProjectorThread,
)

__all__ = [
    "ProjectionConflict",
    "ProjectionError",
    "ProjectionGap",
    "Projector",
    "ProjectorThread",
    "QueryError",
    "default_url",
    "migrate",
    "open_engine",
]
