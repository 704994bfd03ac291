"""Alembic environment of the Perpetua database, run programmatically by ``store.migrate``.

``migrate`` passes an open connection in ``config.attributes["connection"]``; the command line
(``alembic -x url=sqlite:///path revision --autogenerate -m ...``, run with ``-c`` pointing at
any ini whose ``script_location`` is this directory) may pass a URL instead. SQLite runs in
batch mode so later revisions can alter tables.
"""

from alembic import context
from sqlalchemy import Connection

from perpetua.store.database import open_engine
from perpetua.store.schema import metadata

config = context.config


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise SystemExit("no database: pass -x url=... or set sqlalchemy.url")
    engine = open_engine(url)
    with engine.begin() as opened:
        _run(opened)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported")
_main()
