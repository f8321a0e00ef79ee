"""Callback requests that agents work through."""

import datetime as dt
from pathlib import Path
from typing import List

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.orm import declarative_base, sessionmaker

Base = declarative_base()


class Callback(Base):
    __tablename__ = "callbacks"

    id = sa.Column(sa.Integer, primary_key=True)
    tenant = sa.Column(sa.String(64), nullable=False, index=True)
    conversation_id = sa.Column(sa.String(128), nullable=False)
    number = sa.Column(sa.String(32), nullable=False)
    topic = sa.Column(sa.String(64))
    requested_at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    status = sa.Column(sa.String(16), nullable=False, default="open")


class CallbackStore:
    def __init__(self, url: str, root: Path = Path(".")):
        parsed = make_url(url)
        if parsed.drivername.startswith("sqlite") and parsed.database and parsed.database != ":memory:":
            database = Path(parsed.database)
            database = database if database.is_absolute() else root / database
            database.parent.mkdir(parents=True, exist_ok=True)
            parsed = parsed.set(database=str(database))
        self.engine = sa.create_engine(parsed, future=True)
        Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, future=True, expire_on_commit=False)

    def add(self, tenant: str, conversation_id: str, number: str, topic: str, when: dt.datetime) -> Callback:
        record = Callback(tenant=tenant, conversation_id=conversation_id, number=number, topic=topic,
                          requested_at=when, status="open")
        with self._session.begin() as session:
            session.add(record)
        return record

    def open_callbacks(self, tenant: str) -> List[Callback]:
        with self._session() as session:
            query = sa.select(Callback).where(Callback.tenant == tenant, Callback.status == "open")
            return list(session.scalars(query.order_by(Callback.id)))
