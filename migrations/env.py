"""Alembic environment: migrations run against ETHHOOK_DATABASE_URL."""

from alembic import context

from ethhook.config import get_settings
from ethhook.db import make_engine
from ethhook.db.models import Base
from ethhook.db.partition_plan import is_partition_name

config = context.config
target_metadata = Base.metadata


def include_object(obj, name, type_, reflected, compare_to):  # type: ignore[no-untyped-def]
    """Leave the history tables' partitions (and their indexes) out of autogenerate: the models
    describe the partitioned tables; their partitions come and go (ethhook/db/partitions.py)."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return not (reflected and table is not None and is_partition_name(table.name))


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url") or get_settings().database_url,
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
