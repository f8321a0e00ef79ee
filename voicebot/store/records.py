"""The store's API for the rest of the bot: records of calls and conversations, callbacks,
and the data subject requests (export, delete) and retention purge."""

import asyncio
import datetime as dt
import hashlib
import logging
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import sessionmaker

from voicebot.metrics import Metrics
from voicebot.store.database import engine_for, open_store
from voicebot.store.models import AuditEntry, Call, Callback, CallEvent, Turn
from voicebot.store.record import CallRecord, Journal, utcnow
from voicebot.store.report import Report, Trend, build_report, build_trend
from voicebot.store.writer import RecordWriter, Write

logger = logging.getLogger(__name__)

# Working a callback: an agent's claim lapses after this long without an outcome; after no
# answer it is tried again this much later, and given up after this many attempts.
CLAIM_LAPSES_MIN = 30
RETRY_AFTER_MIN = 60
MAX_CALLBACK_ATTEMPTS = 3
CALLBACK_OUTCOMES = ("reached", "no_answer", "wrong_number")
# The status a callback closes with, by the last attempt's outcome.
CALLBACK_CLOSED = {"reached": "done", "no_answer": "unreached", "wrong_number": "wrong_number"}


class RecordStore:
    """`migrate=False` for processes that only write beside the bot (the action server), so
    two processes never migrate one database at once. Writes that the database cannot take
    wait in `var/spool/<database>/` under `root` (shared by the processes on one machine that use
    that database: one that starts adopts what one that stopped left)."""

    def __init__(self, url: str, root: Path = Path("."), review_below: float = 0.7, migrate: bool = True,
                 metrics: Optional[Metrics] = None, worker: Optional[str] = None):
        self.metrics, self.worker = metrics, worker
        self.engine = open_store(url, root) if migrate else engine_for(url, root)
        self.session = sessionmaker(self.engine, future=True, expire_on_commit=False)
        self.review_below = review_below
        self.writer = RecordWriter(self.session, spool_folder(url, root))

    def record(self, call_id: str, tenant: str, language: str, caller: Optional[str] = None,
               channel: str = "phone") -> CallRecord:
        """A new call's record, written to the store as it grows."""
        record = CallRecord(call_id, tenant, caller, channel=channel, language=language)
        record.journal = Journal(record, self.writer.submit, self.review_below, self.worker)
        record.metrics = self.metrics
        if self.metrics:
            self.metrics.started(record)
        return record

    def flush(self, timeout: float = 10) -> bool:
        return self.writer.flush(timeout)

    def close(self) -> None:
        self.writer.stop()
        self.engine.dispose()

    def end_orphans(self) -> int:
        """End the calls and conversations that an earlier process under this worker's name left
        open (killed, or crashed): outcome error, with a worker_lost event. Their own records
        waiting in the spool are written first. Returns how many."""
        self.flush()
        open_here = sa.and_(Call.worker == self.worker, Call.ended_at.is_(None))
        with self.session.begin() as session:
            orphans = list(session.scalars(sa.select(Call.id).where(open_here)))
            now = utcnow()
            session.execute(sa.update(Call).where(open_here).values(ended_at=now, outcome="error"))
            for call_id in orphans:
                session.add(CallEvent(call_id=call_id, at=now, kind="worker_lost", data={"worker": self.worker}))
        return len(orphans)

    # -- callbacks
    def add_callback(self, tenant: str, conversation_id: str, number: str, topic: str, when: dt.datetime) -> None:
        """Stored at once (agents see it now) or, with the database away, spooled with the records."""
        write = Write(Callback.__tablename__, dict(tenant=tenant, conversation_id=conversation_id, number=number,
                                                   topic=topic, requested_at=when, status="open"))
        try:
            with self.session.begin() as session:
                write.apply(session)
        except OperationalError:
            logger.warning("the database is away: the callback for %s waits in the spool", conversation_id)
            self.writer.submit(write)

    def open_callbacks(self, tenant: str) -> List[Callback]:
        with self.session() as session:
            query = sa.select(Callback).where(Callback.tenant == tenant, Callback.status == "open")
            return list(session.scalars(query.order_by(Callback.id)))

    # -- the trainers' review inbox
    def inbox(self, tenants: Iterable[str], limit: int = 50) -> List[Turn]:
        """Utterances waiting for a trainer, newest first."""
        self.flush()
        with self.session() as session:
            query = sa.select(Turn).where(Turn.review == "pending", Turn.tenant.in_(list(tenants)))
            return list(session.scalars(query.order_by(Turn.id.desc()).limit(limit)))

    def conversations(self, tenants: Iterable[str], since: dt.datetime, until: dt.datetime,
                      topic: Optional[str] = None, outcome: Optional[str] = None,
                      limit: int = 50, offset: int = 0) -> List[Call]:
        """Calls and text conversations on these lines that started in [since, until), newest first."""
        self.flush()
        query = sa.select(Call).where(Call.tenant.in_(list(tenants)), Call.started_at >= since, Call.started_at < until)
        if topic:
            query = query.where(Call.topic == topic)
        if outcome:
            query = query.where(Call.outcome == outcome)
        newest_first = query.order_by(Call.started_at.desc(), Call.id.desc())
        with self.session() as session:
            return list(session.scalars(newest_first.limit(limit).offset(offset)))

    def pending_review(self, turn_id: int) -> Optional[Turn]:
        with self.session() as session:
            turn = session.get(Turn, turn_id)
            return turn if turn is not None and turn.review == "pending" else None

    def audit(self, who: str, action: str, **detail) -> None:
        """A change to what the bot knows, made from the dashboard."""
        with self.session.begin() as session:
            session.add(AuditEntry(at=utcnow(), who=who, action=action, detail=detail or None))

    def audit_log(self, limit: int = 200) -> List[AuditEntry]:
        """The newest changes first."""
        with self.session() as session:
            return list(session.scalars(sa.select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)))

    def review(self, turn_id: int, intent: Optional[str]) -> Optional[Turn]:
        """A trainer's decision: the intent the utterance meant, or None to discard it."""
        with self.session.begin() as session:
            turn = session.get(Turn, turn_id)
            if turn is None or turn.review != "pending":
                return None
            turn.review, turn.reviewed_intent = ("assigned", intent) if intent else ("discarded", None)
            return turn

    def labelled(self, language: str) -> List[Tuple[str, str]]:
        """(text, intent) of every utterance trainers assigned in this language."""
        with self.session() as session:
            rows = session.execute(sa.select(Turn.text, Turn.reviewed_intent)
                                   .where(Turn.review == "assigned", Turn.language == language).order_by(Turn.id))
            return [(text, intent) for text, intent in rows]

    def claim_callback(self, callback_id: int, by: str) -> Optional[str]:
        """`by` works the callback now, unless another agent's claim holds: then their name. In
        one UPDATE, so that two agents never both call."""
        now = utcnow()
        lapsed = now - dt.timedelta(minutes=CLAIM_LAPSES_MIN)
        with self.session.begin() as session:
            claimed = session.execute(
                sa.update(Callback).where(Callback.id == callback_id, Callback.status == "open",
                                          sa.or_(Callback.claimed_by.is_(None), Callback.claimed_by == by,
                                                 Callback.claimed_at < lapsed))
                .values(claimed_by=by, claimed_at=now).execution_options(synchronize_session=False)).rowcount
            if claimed:
                return None
            callback = session.get(Callback, callback_id)
            return callback.claimed_by if callback is not None and callback.status == "open" else ""

    def callback_attempt(self, callback_id: int, by: str, outcome: str, note: str = "") -> Optional[Callback]:
        """What came of a call the claiming agent made: reached (done), no answer (again after
        RETRY_AFTER_MIN, given up after MAX_CALLBACK_ATTEMPTS) or wrong number. None unless `by`
        holds the claim. Each attempt also goes into the conversation's events."""
        assert outcome in CALLBACK_OUTCOMES, outcome
        now = utcnow()
        with self.session.begin() as session:
            callback = session.get(Callback, callback_id, with_for_update=True)
            if callback is None or callback.status != "open" or callback.claimed_by != by:
                return None
            callback.attempts += 1
            callback.last_outcome, callback.claimed_by, callback.claimed_at = outcome, None, None
            line = f"{now:%Y-%m-%d %H:%M} UTC {by}: {outcome.replace('_', ' ')}" + (f": {note}" if note else "")
            callback.notes = "\n".join(filter(None, [callback.notes, line]))
            if outcome == "no_answer" and callback.attempts < MAX_CALLBACK_ATTEMPTS:
                callback.retry_at = now + dt.timedelta(minutes=RETRY_AFTER_MIN)
            else:
                callback.status = CALLBACK_CLOSED[outcome]
            if session.get(Call, callback.conversation_id) is not None:
                session.add(CallEvent(call_id=callback.conversation_id, at=now, kind="callback_attempt",
                                      data={"by": by, "outcome": outcome, "attempt": callback.attempts}))
            return callback

    # -- data subject requests and retention
    def export(self, call_id: str) -> Optional[dict]:
        """Everything stored about one call, as JSON-ready data."""
        self.flush()
        with self.session() as session:
            call = session.get(Call, call_id)
            if call is None:
                return None
            turns = session.scalars(sa.select(Turn).where(Turn.call_id == call_id).order_by(Turn.seq))
            events = session.scalars(sa.select(CallEvent).where(CallEvent.call_id == call_id).order_by(CallEvent.id))
            callbacks = session.scalars(sa.select(Callback).where(Callback.conversation_id == call_id))
            return {"call": _row(call), "turns": [_row(t) for t in turns], "events": [_row(e) for e in events],
                    "callbacks": [_row(c) for c in callbacks]}

    def delete(self, call_id: str) -> dict:
        """Remove one call and all that hangs on it; says how many rows of each went."""
        self.flush()
        with self.session.begin() as session:
            return {table.__tablename__: session.execute(sa.delete(table).where(column == call_id)).rowcount
                    for table, column in ((Turn, Turn.call_id), (CallEvent, CallEvent.call_id),
                                          (Callback, Callback.conversation_id), (Call, Call.id))}

    def purge_expired(self, tenants: Iterable) -> Dict[str, int]:
        """The retention job: each line's records older than its retention_days go."""
        return {t.id: self.purge(t.id, expired_before(t.retention_days)) for t in tenants}

    async def purge_every(self, tenants: Iterable, every_s: float = 3600) -> None:
        """The scheduled retention job, for as long as the bot runs."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                deleted = await loop.run_in_executor(None, self.purge_expired, list(tenants))
                if any(deleted.values()):
                    logger.info("retention: deleted %s", deleted)
            except Exception:
                logger.exception("the retention purge failed; trying again in %.0f s", every_s)
            await asyncio.sleep(every_s)

    def report(self, since: dt.datetime, until: Optional[dt.datetime] = None, line: Optional[str] = None,
               service_levels: Mapping[str, float] = {}) -> Report:
        self.flush()
        with self.session() as session:
            return build_report(session, since, until or utcnow(), line, service_levels)

    def trend(self, since: dt.datetime, until: dt.datetime, step: str, group: str, line: Optional[str] = None,
              service_levels: Mapping[str, float] = {}) -> Trend:
        self.flush()
        with self.session() as session:
            return build_trend(session, since, until, step, group, line, service_levels)

    def calls_between(self, since: dt.datetime, until: dt.datetime, line: Optional[str] = None) -> List[Call]:
        """Calls and conversations started in [since, until) (naive UTC), in order: for export."""
        self.flush()
        query = sa.select(Call).where(Call.started_at >= since, Call.started_at < until)
        with self.session() as session:
            return list(session.scalars((query.where(Call.tenant == line) if line else query).order_by(Call.started_at)))

    def purge(self, tenant: str, before: dt.datetime) -> int:
        """Delete a line's calls (and callbacks) that started before `before` (naive UTC)."""
        self.flush()
        old = sa.select(Call.id).where(Call.tenant == tenant, Call.started_at < before).scalar_subquery()
        statements = [sa.delete(Turn).where(Turn.call_id.in_(old)), sa.delete(CallEvent).where(CallEvent.call_id.in_(old)),
                      sa.delete(Callback).where(Callback.tenant == tenant,
                                                Callback.requested_at < before.replace(tzinfo=dt.timezone.utc)),
                      sa.delete(Call).where(Call.tenant == tenant, Call.started_at < before)]
        with self.session.begin() as session:
            counts = [session.execute(s.execution_options(synchronize_session=False)).rowcount for s in statements]
        return counts[-1]


def spool_folder(url: str, root: Path) -> Path:
    """One folder per database, so a spool is only ever written to the database it was for."""
    return root / "var" / "spool" / hashlib.sha256(url.encode()).hexdigest()[:12]


def expired_before(retention_days: int, now: Optional[dt.datetime] = None) -> dt.datetime:
    return (now or utcnow()) - dt.timedelta(days=retention_days)


def _row(obj) -> dict:
    values = {c.name: getattr(obj, c.name) for c in obj.__table__.columns}
    return {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in values.items()}
