"""The private PostgreSQL server the database tests use (tests/postgres.py)."""

import os

import pytest
import sqlalchemy
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from postgres import private_postgres


def test_stop_and_start_keep_the_data(tmp_path):
    with private_postgres(tmp_path) as server:
        # NullPool: every connect() really connects, so stop() shows at once.
        engine = sqlalchemy.create_engine(server.url, poolclass=NullPool)
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("CREATE TABLE calls (id serial PRIMARY KEY, caller text)"))
            connection.execute(sqlalchemy.text("INSERT INTO calls (caller) VALUES ('+441632960100')"))
        pid = server.pid

        server.stop()
        with pytest.raises(OperationalError):
            engine.connect()

        server.start()
        with engine.connect() as connection:
            assert connection.execute(sqlalchemy.text("SELECT caller FROM calls")).scalars().all() == [
                "+441632960100"]
    assert server.pid is None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(OperationalError):
        engine.connect()


def test_fixture_gives_an_empty_voicebot_database(postgres):
    engine = sqlalchemy.create_engine(postgres.url)
    with engine.connect() as connection:
        assert connection.execute(sqlalchemy.text("SELECT current_database()")).scalar() == "voicebot"
        assert sqlalchemy.inspect(connection).get_table_names() == []
    engine.dispose()
