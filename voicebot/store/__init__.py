"""Persistent records (SQLAlchemy; SQLite by default, PostgreSQL by URL)."""

from voicebot.store.callbacks import Callback, CallbackStore

__all__ = ["Callback", "CallbackStore"]
