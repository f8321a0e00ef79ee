"""Alembic environment: the connection comes from voicebot.store.database.migrate; for
`alembic revision --autogenerate` during development, set VOICEBOT_STORE_URL."""

import os

from alembic import context
from sqlalchemy import create_engine

from voicebot.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    engine = create_engine(os.environ.get("VOICEBOT_STORE_URL", "sqlite:///var/voicebot.sqlite3"))
    connection = engine.connect()
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
