"""Opening the store: SQLite by default, PostgreSQL by URL, the schema brought up to date by
Alembic on start-up, and a clear error when the database cannot be reached."""

import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine, make_url

from voicebot.config.errors import ConfigError

MIGRATIONS = Path(__file__).with_name("migrations")
# Alembic keeps a running migration's context in module globals (alembic.context, op): two threads
# migrating at once, even different databases, delete each other's and fail with KeyError.
_MIGRATING = threading.Lock()


def engine_for(url: str, root: Path = Path(".")) -> Engine:
    """An engine for `store_url`; a relative SQLite path is relative to the installation."""
    parsed = make_url(url)
    sqlite = parsed.drivername.startswith("sqlite")
    if sqlite and parsed.database and parsed.database != ":memory:":
        database = Path(parsed.database)
        database = database if database.is_absolute() else root / database
        database.parent.mkdir(parents=True, exist_ok=True)
        parsed = parsed.set(database=str(database))
    options = {"connect_args": {"timeout": 30}} if sqlite else {"pool_pre_ping": True, "connect_args": {"connect_timeout": 5}}
    engine = sa.create_engine(parsed, future=True, **options)
    if sqlite:
        # WAL: the bot, the action server and the CLI read and write the same file at once.
        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection, _record):
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
            dbapi_connection.execute("PRAGMA foreign_keys=ON")
    return engine


def open_store(url: str, root: Path = Path(".")) -> Engine:
    """The engine, checked reachable and migrated to the newest schema."""
    engine = engine_for(url, root)
    try:
        with engine.connect():
            pass
    except sa.exc.OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise ConfigError(f"store_url: cannot reach the database at {engine.url!r}: {reason}") from None
    migrate(engine)
    return engine


def migrate(engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with _MIGRATING, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
