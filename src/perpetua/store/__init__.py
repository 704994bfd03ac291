"""Read models in SQL: schema and migrations, the projector that fills them from the event
stream, and BitMEX table queries over them (SQLite by default, PostgreSQL by URL).

Start-up: ``migrate(url)``, then ``ProjectorThread(Projector(open_engine(url)), data_dir=...)``
subscribed to the sequencer (it catches up from the journal first, and again after any hole in
the live stream); the gateway reads with ``store.queries``.
"""

from perpetua.store.catch_up import catch_up
from perpetua.store.database import default_url, migrate, migrate_once, open_engine
from perpetua.store.filters import QueryError
from perpetua.store.projector import (
    ProjectionConflict,
    ProjectionError,
    ProjectionGap,
    Projector,
)
from perpetua.store.projector_thread import ProjectorThread

__all__ = [
    "ProjectionConflict",
    "ProjectionError",
    "ProjectionGap",
    "Projector",
    "ProjectorThread",
    "QueryError",
    "catch_up",
    "default_url",
    "migrate",
    "migrate_once",
    "open_engine",
]
