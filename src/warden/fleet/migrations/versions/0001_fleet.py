"""The fleet inventory: workspaces, tokens, nodes, identity history, node access, apps, CVMs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("created_at", sa.Integer(), nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("created_at", sa.Integer(), nullable=False),
    )
    op.create_index("ix_api_tokens_workspace_id", "api_tokens", ["workspace_id"])
    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("region", sa.String(100), nullable=True),
        sa.Column("ppid", sa.LargeBinary(), nullable=True),
        sa.Column("device_id", sa.LargeBinary(), nullable=True),
        sa.Column("tee_version", sa.String(50), nullable=True),
        sa.Column("tcb_status", sa.String(50), nullable=True),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("last_attested_at", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.Integer(), nullable=False),
    )
    op.create_index("ix_nodes_device_id", "nodes", ["device_id"])
    op.create_table(
        "node_identity_history",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("node_id", sa.Integer(), sa.ForeignKey("nodes.id", ondelete="CASCADE"), nullable=False),
        sa.Column("old_device_id", sa.LargeBinary(), nullable=True),
        sa.Column("device_id", sa.LargeBinary(), nullable=False),
        sa.Column("ppid", sa.LargeBinary(), nullable=False),
        sa.Column("first_seen", sa.Integer(), nullable=False),
        sa.Column("last_seen", sa.Integer(), nullable=False),
    )
    op.create_index("ix_node_identity_history_node_id", "node_identity_history", ["node_id"])
    op.create_table(
        "node_access",
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("node_id", sa.Integer(), sa.ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "apps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("name", sa.String(100), nullable=True),
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("kms_contract", sa.String(42), nullable=True),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.UniqueConstraint("workspace_id", "address"),
    )
    op.create_index("ix_apps_workspace_id", "apps", ["workspace_id"])
    op.create_table(
        "cvms",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("app_id", sa.Integer(), sa.ForeignKey("apps.id", ondelete="CASCADE"), nullable=False),
        sa.Column("node_id", sa.Integer(), sa.ForeignKey("nodes.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("uuid", sa.String(36), nullable=False, unique=True),
        sa.Column("instance_id", sa.LargeBinary(), nullable=True),
        sa.Column("compose_hash", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("device_allowed", sa.Boolean(), nullable=True),
        sa.Column("status_reason", sa.String(500), nullable=True),
        sa.Column("created_at", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.Integer(), nullable=False),
        sa.UniqueConstraint("workspace_id", "name"),
    )
    for column in ("workspace_id", "app_id", "node_id", "instance_id"):
        op.create_index(f"ix_cvms_{column}", "cvms", [column])


def downgrade() -> None:
    for table in ("cvms", "apps", "node_access", "node_identity_history", "nodes", "api_tokens", "workspaces"):
        op.drop_table(table)
