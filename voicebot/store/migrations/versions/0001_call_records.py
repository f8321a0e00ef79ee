"""Call records: calls, turns (with the review inbox), call events; callbacks.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "calls",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("caller_ending", sa.String(4)),
        sa.Column("started_at", sa.DateTime, nullable=False),
        sa.Column("ended_at", sa.DateTime),
        sa.Column("outcome", sa.String(16)),
        sa.Column("topic", sa.String(64)),
        sa.Column("last_intent", sa.String(64)),
        sa.Column("turns", sa.Integer, nullable=False, server_default="0"),
        sa.Column("handoff_reason", sa.String(32)),
        sa.Column("queue", sa.String(64)),
        sa.Column("queue_result", sa.String(16)),
        sa.Column("waited_s", sa.Float),
    )
    op.create_index("ix_calls_tenant_started", "calls", ["tenant", "started_at"])
    op.create_index("ix_calls_started", "calls", ["started_at"])
    op.create_table(
        "turns",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("text", sa.Text),
        sa.Column("intent", sa.String(64)),
        sa.Column("confidence", sa.Float),
        sa.Column("entities", sa.JSON),
        sa.Column("replies", sa.JSON),
        sa.Column("end_of_speech_ms", sa.Integer),
        sa.Column("asr_ms", sa.Integer),
        sa.Column("dialogue_ms", sa.Integer),
        sa.Column("turn_ms", sa.Integer),
        sa.Column("review", sa.String(16)),
        sa.Column("reviewed_intent", sa.String(64)),
    )
    op.create_index("ix_turns_call_id", "turns", ["call_id"])
    op.create_index("ix_turns_review", "turns", ["review", "tenant"])
    op.create_table(
        "call_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("call_id", sa.String(128), sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON),
    )
    op.create_index("ix_call_events_call_id", "call_events", ["call_id"])
    # Installations from before migrations have the callbacks table already.
    if not sa.inspect(op.get_bind()).has_table("callbacks"):
        op.create_table(
            "callbacks",
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("tenant", sa.String(64), nullable=False),
            sa.Column("conversation_id", sa.String(128), nullable=False),
            sa.Column("number", sa.String(32), nullable=False),
            sa.Column("topic", sa.String(64)),
            sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("status", sa.String(16), nullable=False),
        )
        op.create_index("ix_callbacks_tenant", "callbacks", ["tenant"])


def downgrade() -> None:
    for table in ("call_events", "turns", "calls"):
        op.drop_table(table)
