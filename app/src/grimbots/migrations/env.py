"""Alembic environment: runs on the connection or URL that ``grimbots.migrate`` hands it."""

from alembic import context

from grimbots.storage import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("grimbots migrations run through `grimbots-app db upgrade`, not bare alembic")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


run()
