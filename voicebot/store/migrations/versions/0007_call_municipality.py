"""Which municipality a call was about, on a line shared by several (an evening hotline): the
operators' figures split by it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("municipality", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("municipality")
