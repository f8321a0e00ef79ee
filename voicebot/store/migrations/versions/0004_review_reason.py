"""Why a turn waits in the trainers' inbox: not understood, unsure, or answered confidently but
followed at once by a request for a person or the same question again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("review_reason", sa.String(32)))


def downgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("review_reason")
