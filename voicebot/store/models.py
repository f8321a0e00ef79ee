"""The tables behind call records, the review inbox and callbacks. Times are naive UTC (SQLite
keeps no zone); text is redacted before it gets here (voicebot.store.record)."""

import sqlalchemy as sa
from sqlalchemy.orm import declarative_base

Base = declarative_base()

# How a call or conversation ended, for containment: "settled" means the bot did the job.
OUTCOMES = ("settled", "handoff", "callback", "abandoned", "silence", "error")


class Call(Base):
    """A phone call (id = SIP Call-ID) or a text conversation (channel "text")."""

    __tablename__ = "calls"

    id = sa.Column(sa.String(128), primary_key=True)
    channel = sa.Column(sa.String(8), nullable=False)  # phone | text
    tenant = sa.Column(sa.String(64), nullable=False)
    caller_ending = sa.Column(sa.String(4))  # the last digits only: enough to find a call again
    started_at = sa.Column(sa.DateTime, nullable=False)
    ended_at = sa.Column(sa.DateTime)
    outcome = sa.Column(sa.String(16))  # OUTCOMES; empty while live
    topic = sa.Column(sa.String(64))  # the first intent that names what the call is about
    last_intent = sa.Column(sa.String(64))
    turns = sa.Column(sa.Integer, nullable=False, default=0)
    handoff_reason = sa.Column(sa.String(32))
    queue = sa.Column(sa.String(64))
    queue_result = sa.Column(sa.String(16))  # answered | abandoned | callback | refused | transferred | failed
    waited_s = sa.Column(sa.Float)
    municipality = sa.Column(sa.String(64))  # on a line shared by several: the one the caller meant
    worker = sa.Column(sa.String(128))  # the process it ran on (voicebot serve --worker)
    __table_args__ = (sa.Index("ix_calls_tenant_started", "tenant", "started_at"),
                      sa.Index("ix_calls_started", "started_at"),
                      sa.Index("ix_calls_worker_open", "worker", "ended_at"))


class Turn(Base):
    """What the caller said or pressed, what the bot understood and how long it took."""

    __tablename__ = "turns"

    id = sa.Column(sa.Integer, primary_key=True)
    call_id = sa.Column(sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False, index=True)
    seq = sa.Column(sa.Integer, nullable=False)
    at = sa.Column(sa.DateTime, nullable=False)
    tenant = sa.Column(sa.String(64), nullable=False)
    language = sa.Column(sa.String(8), nullable=False)
    source = sa.Column(sa.String(8), nullable=False)  # speech | keypad | text
    text = sa.Column(sa.Text)
    intent = sa.Column(sa.String(64))
    confidence = sa.Column(sa.Float)
    entities = sa.Column(sa.JSON)
    replies = sa.Column(sa.JSON)
    end_of_speech_ms = sa.Column(sa.Integer)
    asr_ms = sa.Column(sa.Integer)
    dialogue_ms = sa.Column(sa.Integer)
    turn_ms = sa.Column(sa.Integer)  # end of the caller's speech to the bot's first audio
    # The trainers' inbox: fallback and low-confidence turns wait for a decision.
    review = sa.Column(sa.String(16))  # pending | assigned | discarded; empty when not for review
    review_reason = sa.Column(sa.String(32))  # why it is for review: see voicebot.store.record.REVIEW_REASONS
    reviewed_intent = sa.Column(sa.String(64))
    __table_args__ = (sa.Index("ix_turns_review", "review", "tenant"),)


class CallEvent(Base):
    """Handoffs, queue and agent events, transfers: the call's timeline beyond its turns."""

    __tablename__ = "call_events"

    id = sa.Column(sa.Integer, primary_key=True)
    call_id = sa.Column(sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False, index=True)
    at = sa.Column(sa.DateTime, nullable=False)
    kind = sa.Column(sa.String(32), nullable=False)
    data = sa.Column(sa.JSON)


class Callback(Base):
    """A caller's request to be called back, for agents to work through. The number is kept
    whole (that is the point of it) until the line's retention period ends."""

    __tablename__ = "callbacks"

    id = sa.Column(sa.Integer, primary_key=True)
    tenant = sa.Column(sa.String(64), nullable=False, index=True)
    conversation_id = sa.Column(sa.String(128), nullable=False)
    number = sa.Column(sa.String(32), nullable=False)
    topic = sa.Column(sa.String(64))
    requested_at = sa.Column(sa.DateTime(timezone=True), nullable=False)
    status = sa.Column(sa.String(16), nullable=False, default="open")  # open, or CALLBACK_CLOSED's
    # Worked by one agent at a time: who holds it now (a claim lapses after CLAIM_LAPSES_MIN).
    claimed_by = sa.Column(sa.String(64))
    claimed_at = sa.Column(sa.DateTime(timezone=True))
    attempts = sa.Column(sa.Integer, nullable=False, default=0, server_default="0")
    last_outcome = sa.Column(sa.String(16))
    retry_at = sa.Column(sa.DateTime(timezone=True))  # after "no answer": not before this
    notes = sa.Column(sa.Text)  # one line an attempt: when (UTC), who, the outcome, the agent's note


class User(Base):
    """A dashboard login: operators watch, trainers teach the bot, agents see screen pops."""

    __tablename__ = "users"

    id = sa.Column(sa.Integer, primary_key=True)
    name = sa.Column(sa.String(64), nullable=False, unique=True)
    role = sa.Column(sa.String(16), nullable=False)
    password_hash = sa.Column(sa.String(256), nullable=False)
    failed_logins = sa.Column(sa.Integer, nullable=False, default=0)
    locked_until = sa.Column(sa.DateTime)
    lines = sa.Column(sa.Text)  # comma-separated line ids the login may change; empty: every line


class WebSession(Base):
    """A signed-in browser; only the token's hash is kept."""

    __tablename__ = "web_sessions"

    token_hash = sa.Column(sa.String(64), primary_key=True)
    user_id = sa.Column(sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    csrf_token = sa.Column(sa.String(64), nullable=False)
    expires_at = sa.Column(sa.DateTime, nullable=False)


class AuditEntry(Base):
    """A change to what the bot knows, made from the dashboard: who, what, when (admins read them)."""

    __tablename__ = "audit_log"

    id = sa.Column(sa.Integer, primary_key=True)
    at = sa.Column(sa.DateTime, nullable=False, index=True)
    who = sa.Column(sa.String(64), nullable=False)
    action = sa.Column(sa.String(32), nullable=False)  # example_added | not_a_topic | retrain | model_live | ...
    detail = sa.Column(sa.JSON)
