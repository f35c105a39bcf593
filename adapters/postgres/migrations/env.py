"""Alembic environment for the budcore schema.

Configured programmatically by :mod:`budcore_adapters.postgres.migrate`: it passes an open
connection in ``config.attributes["connection"]`` (online) or a URL in ``sqlalchemy.url``
(offline ``--sql`` rendering, or the plain ``alembic`` command line). Before migrating, the
transaction takes a PostgreSQL advisory lock so several replicas upgrading at start-up run the
migrations one after the other instead of racing to create the same tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

# Arbitrary constant naming "budcore schema migration" among the database's advisory locks.
MIGRATION_LOCK_KEY = 0x6275_6463_6F72_65  # "budcore"

config = context.config
# migrate.alembic_config() sets this from budcore_adapters.postgres.schema.VERSION_TABLE; the
# fallback serves a hand-written alembic.ini (this file is loaded by path, not as a module).
VERSION_TABLE = config.get_main_option("version_table") or "budcore_alembic_version"


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        literal_binds=True,
        version_table=VERSION_TABLE,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: sa.Connection) -> None:
    context.configure(connection=connection, version_table=VERSION_TABLE, transactional_ddl=True)
    with context.begin_transaction():
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        run_online(connection)
    else:  # invoked by the alembic CLI with sqlalchemy.url set
        url = sa.make_url(config.get_main_option("sqlalchemy.url") or "")
        # The same bounded wait as budcore's own engines (10 s) unless the URL sets connect_timeout.
        connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": 10}
        engine = sa.create_engine(url, poolclass=sa.NullPool, connect_args=connect_args)
        try:
            with engine.begin() as own_connection:
                run_online(own_connection)
        finally:
            engine.dispose()
