"""The control plane's tables: workspaces and their API tokens, nodes and their device-identity history,
which workspaces may deploy to which nodes, apps and CVMs.

Times are unix seconds (integers), byte values (PPID, device id, compose hash, instance id) raw bytes:
both store the same way in SQLite and PostgreSQL. The schema itself is created by the Alembic
migrations in `warden/fleet/migrations/`; a test checks the two agree.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Workspace(Base):
    """A team: its tokens, apps and CVMs, and the one key the control plane may sign its changes with."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[int] = mapped_column(Integer)
    # the workspace's own signer: its address, and its key sealed under the control plane's secret key
    # (AES-GCM bound to this workspace's id; see warden.fleet.workspace_signers). None: nobody signs for it.
    signer_address: Mapped[str | None] = mapped_column(String(42))
    signer_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # dashboard sessions started before this moment (unix milliseconds) are void: set by rotate-token
    sessions_not_before: Mapped[int] = mapped_column(BigInteger, default=0)


class ApiToken(Base):
    """Only the token's SHA-256 is stored: a leaked database does not leak working tokens."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[int] = mapped_column(Integer)


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    region: Mapped[str | None] = mapped_column(String(100))
    ppid: Mapped[bytes | None] = mapped_column(LargeBinary)
    device_id: Mapped[bytes | None] = mapped_column(LargeBinary, index=True)
    tee_version: Mapped[str | None] = mapped_column(String(50))
    tcb_status: Mapped[str | None] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(30))
    last_attested_at: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[int] = mapped_column(Integer)

    identities: Mapped[list[NodeIdentity]] = relationship(
        back_populates="node", order_by="NodeIdentity.id", cascade="all, delete-orphan"
    )


class NodeIdentity(Base):
    """One device identity a node presented: the id it replaced, when it was first and last seen."""

    __tablename__ = "node_identity_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    old_device_id: Mapped[bytes | None] = mapped_column(LargeBinary)
    device_id: Mapped[bytes] = mapped_column(LargeBinary)
    ppid: Mapped[bytes] = mapped_column(LargeBinary)
    first_seen: Mapped[int] = mapped_column(Integer)
    last_seen: Mapped[int] = mapped_column(Integer)

    node: Mapped[Node] = relationship(back_populates="identities")


class NodeAccess(Base):
    """Workspace W may deploy to node N (and only then sees N's PPID and device id)."""

    __tablename__ = "node_access"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True)


class App(Base):
    __tablename__ = "apps"
    __table_args__ = (UniqueConstraint("workspace_id", "address"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(42))  # the DstackApp contract (EIP-55)
    name: Mapped[str | None] = mapped_column(String(100))
    chain_id: Mapped[int] = mapped_column(Integer)
    kms_contract: Mapped[str | None] = mapped_column(String(42))
    created_at: Mapped[int] = mapped_column(Integer)


class Cvm(Base):
    __tablename__ = "cvms"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), index=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    uuid: Mapped[str] = mapped_column(String(36), unique=True)
    instance_id: Mapped[bytes | None] = mapped_column(LargeBinary, index=True)
    compose_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(30))
    # False once the node's device id changed to one the app does not allow (None: not checked yet)
    device_allowed: Mapped[bool | None] = mapped_column()
    status_reason: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[int] = mapped_column(Integer)

    app: Mapped[App] = relationship()
    node: Mapped[Node] = relationship()


class FleetRevision(Base):
    """One row counting the changes to nodes, identities, node access, apps and CVMs: a view merged from them
    (the device allowlist) is reused while the count and the chain's head stand still."""

    __tablename__ = "fleet_revision"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(BigInteger)
