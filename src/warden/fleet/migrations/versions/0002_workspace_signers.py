"""Each workspace's own signer (address + sealed key) and the moment its older dashboard sessions end.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.add_column(sa.Column("signer_address", sa.String(42), nullable=True))
        batch.add_column(sa.Column("signer_sealed", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("sessions_not_before", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch:
        batch.drop_column("sessions_not_before")
        batch.drop_column("signer_sealed")
        batch.drop_column("signer_address")
