"""Alembic environment of the helpdesk application: sqlalchemy.url comes from $DATABASE_URL."""

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import engine_from_config, pool

from helpdesk.models import Base

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name)
target_metadata = Base.metadata


def sqlalchemy_url(url):
    """sqlite:///abs/path.db -> sqlite:////abs/path.db (SQLAlchemy writes an absolute path with a
    fourth slash); postgres://... -> postgresql+psycopg2://..."""
    if url.startswith("sqlite://"):
        return "sqlite:///" + url[len("sqlite://"):]
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg2://" + url[len(scheme):]
    raise ValueError("DATABASE_URL: unsupported scheme %r" % url.split("://")[0])


if "DATABASE_URL" not in os.environ:
    raise SystemExit("env.py: DATABASE_URL is not set")
# set_main_option interpolates %: a percent-encoded password must be doubled.
config.set_main_option("sqlalchemy.url", sqlalchemy_url(os.environ["DATABASE_URL"]).replace("%", "%%"))


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )
    with connectable.connect() as connection:
        # render_as_batch: SQLite can only ALTER by rebuilding the table.
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
