"""Which worker process a call ran on, so that a worker starting again can end the calls it
left open when it stopped without ending them.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("worker", sa.String(128)))
        batch.create_index("ix_calls_worker_open", ["worker", "ended_at"])


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_index("ix_calls_worker_open")
        batch.drop_column("worker")
