"""Persistent records (SQLAlchemy; SQLite by default, PostgreSQL by URL; Alembic migrations)."""

from voicebot.store.record import CallRecord
from voicebot.store.records import RecordStore

__all__ = ["CallRecord", "RecordStore"]
