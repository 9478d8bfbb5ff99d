"""Create or upgrade the database schema with Alembic."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from engine.access.roles import sync_built_in

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option(
        "sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%")
    )
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest schema (creating it when empty).

    On SQLite, Alembic's batch mode changes a table by copying it, dropping the old one and
    renaming the copy; with foreign keys on, the drop runs the ON DELETE actions of every row
    that points at it (0007 rebuilding `runs` set every message's and activity's run_id to
    null). So foreign keys are off while migrating, and checked before the commit: a migration
    that leaves a dangling reference fails and changes nothing."""
    cfg = alembic_config(engine)
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:  # before the transaction begins: inside one, SQLite ignores the pragma
            conn.connection.dbapi_connection.execute(  # type: ignore[union-attr]
                "PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                sync_built_in(conn)
                if sqlite and (dangling := conn.exec_driver_sql(
                        "PRAGMA foreign_key_check").all()):
                    raise RuntimeError(f"the upgrade would leave rows pointing at nothing: "
                                       f"{dangling[:5]}")
        finally:
            if sqlite:
                conn.connection.dbapi_connection.execute(  # type: ignore[union-attr]
                    "PRAGMA foreign_keys=ON")


def check(engine: Engine) -> None:
    """Raise if the migrated schema differs from the models (``alembic check``)."""
    cfg = alembic_config(engine)
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.check(cfg)
