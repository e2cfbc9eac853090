"""The inventory as operations: what the API, the dashboard, the devnet and the tests call.

Every read is scoped to a workspace: a node is visible (with its PPID and device id) only to the
workspaces that may deploy to it; anything else is "not found", exactly like a node that does not exist.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Engine, delete, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from warden import errors
from warden.chain.inputs import hex0x, parse_address
from warden.errors import BadInput
from warden.fleet import models as m
from warden.fleet.database import engine_for, migrate, session_factory
from warden.fleet.inventory import Node
from warden.hexutil import maybe_hex

TOKEN_PREFIX = "wdn_"
NODE_STATUSES = ("online", "offline", "maintenance")
CVM_STATUSES = ("created", "starting", "running", "stopped", "boot-failed")


class NotFound(errors.NotFound):
    """Unknown here, or not visible to this workspace (the API answers 404 for both)."""


def _now() -> int:
    return int(time.time())


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class WorkspaceRef:
    id: int
    name: str


@dataclass(frozen=True)
class WorkspaceInfo:
    """A workspace as `warden workspace ls` shows it (never its tokens or its key)."""

    name: str
    created_at: int
    tokens: int
    apps: int
    signer: str | None  # the address the control plane signs this workspace's changes with

    def as_json(self) -> dict[str, Any]:
        return {"workspace": self.name, "created_at": self.created_at, "tokens": self.tokens, "apps": self.apps,
                "signer": self.signer}  # fmt: skip


@dataclass(frozen=True)
class IdentityChange:
    old_device_id: bytes | None
    device_id: bytes
    ppid: bytes
    first_seen: int
    last_seen: int

    def as_json(self) -> dict[str, Any]:
        return {
            "old_device_id": hex0x(self.old_device_id) if self.old_device_id else None,
            "device_id": hex0x(self.device_id),
            "ppid": hex0x(self.ppid),
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
        }


@dataclass(frozen=True)
class NodeView:
    name: str
    region: str | None
    ppid: bytes | None
    device_id: bytes | None
    tee_version: str | None
    tcb_status: str | None
    status: str
    last_attested_at: int | None
    former_device_ids: tuple[bytes, ...] = ()

    def inventory_node(self) -> Node:
        """This node as the allowlist commands know nodes (name → current and former device ids)."""
        return Node(self.name, self.device_id, self.ppid, self.region, self.status, self.former_device_ids)

    def as_json(self) -> dict[str, Any]:
        return self.inventory_node().as_json() | {
            "tee_version": self.tee_version,
            "tcb_status": self.tcb_status,
            "last_attested_at": self.last_attested_at,
        }


@dataclass(frozen=True)
class AppView:
    address: str
    name: str | None
    chain_id: int
    kms_contract: str | None

    def as_json(self) -> dict[str, Any]:
        return {"app": self.address, "name": self.name, "chain_id": self.chain_id, "kms": self.kms_contract}


@dataclass(frozen=True)
class CvmView:
    name: str
    uuid: str
    instance_id: bytes | None
    app: str
    app_name: str | None
    node: str
    node_device_id: bytes | None
    compose_hash: bytes | None
    status: str
    device_allowed: bool | None
    status_reason: str | None
    updated_at: int

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "uuid": self.uuid,
            "instance_id": hex0x(self.instance_id) if self.instance_id else None,
            "app": self.app,
            "app_name": self.app_name,
            "node": self.node,
            "device_id": hex0x(self.node_device_id) if self.node_device_id else None,
            "compose_hash": hex0x(self.compose_hash) if self.compose_hash else None,
            "status": self.status,
            "device_allowed": self.device_allowed,
            "status_reason": self.status_reason,
            "updated_at": self.updated_at,
        }


class Placement(NamedTuple):
    """Where a CVM runs, as the allowlist view needs it (a `CvmView` has the same fields and more)."""

    name: str
    app: str
    node: str
    node_device_id: bytes | None
    status: str


@dataclass(frozen=True)
class IdentityUpdate:
    """What one attestation of a node changed."""

    node: str
    device_id: bytes
    old_device_id: bytes | None
    changed: bool
    flagged_cvms: list[str]  # CVMs on the node whose app does not allow the new device id

    def as_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "device_id": hex0x(self.device_id),
            "old_device_id": hex0x(self.old_device_id) if self.old_device_id else None,
            "changed": self.changed,
            "flagged_cvms": self.flagged_cvms,
        }


# Does app (address, chain id) allow this device id right now? Answered from the chain by the caller.
DeviceCheck = Callable[[AppView, bytes], bool]


def _node_view(node: m.Node) -> NodeView:
    presented = [d for i in node.identities for d in (i.old_device_id, i.device_id) if d is not None]
    former = tuple(dict.fromkeys(d for d in presented if d != node.device_id))  # oldest first, once each
    return NodeView(
        node.name, node.region, node.ppid, node.device_id, node.tee_version, node.tcb_status,
        node.status, node.last_attested_at, former,
    )  # fmt: skip


def _app_view(app: m.App) -> AppView:
    return AppView(app.address, app.name, app.chain_id, app.kms_contract)


def _cvm_view(cvm: m.Cvm) -> CvmView:
    return CvmView(
        cvm.name, cvm.uuid, cvm.instance_id, cvm.app.address, cvm.app.name, cvm.node.name, cvm.node.device_id,
        cvm.compose_hash, cvm.status, cvm.device_allowed, cvm.status_reason, cvm.updated_at,
    )  # fmt: skip


class Fleet:
    """The inventory behind one database URL (migrated to the newest schema on open)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions: sessionmaker[Session] = session_factory(engine)
        event.listen(self._sessions, "before_flush", _count_inventory_changes)

    @classmethod
    def open(cls, url: str) -> Fleet:
        engine = engine_for(url)
        migrate(engine)
        return cls(engine)

    def close(self) -> None:
        self.engine.dispose()

    def revision(self) -> int:
        """How many times nodes, identities, node access, apps or CVMs have changed (any workspace)."""
        with self.session() as s:
            return int(s.execute(select(m.FleetRevision.number).where(m.FleetRevision.id == 1)).scalar_one())

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # workspaces and tokens

    def create_workspace(self, name: str) -> tuple[WorkspaceRef, str]:
        """A new workspace and its first API token (shown once: only its hash is kept)."""
        ref = self._new_workspace(name)
        return ref, self.issue_token(ref, "default")

    def _new_workspace(self, name: str) -> WorkspaceRef:
        name = _name(name, "workspace name")
        try:
            with self.session() as s:
                workspace = m.Workspace(name=name, created_at=_now())
                s.add(workspace)
                s.flush()
                ref = WorkspaceRef(workspace.id, workspace.name)
        except IntegrityError:
            raise BadInput(f"workspace {name!r} exists already") from None
        return ref

    def has_workspaces(self) -> bool:
        with self.session() as s:
            return s.scalars(select(m.Workspace.id)).first() is not None

    def workspace(self, name: str) -> WorkspaceRef:
        with self.session() as s:
            row = s.scalars(select(m.Workspace).where(m.Workspace.name == name)).one_or_none()
            if row is None:
                raise NotFound(f"no workspace {name!r}")
            return WorkspaceRef(row.id, row.name)

    def ensure_workspace(self, name: str, token: str | None = None) -> WorkspaceRef:
        """The workspace `name`, created when missing; `token` (if given) becomes one of its tokens."""
        try:
            ref = self.workspace(name)
        except NotFound:
            # with a configured token, no other token is made: nobody would know it
            ref = self._new_workspace(name) if token is not None else self.create_workspace(name)[0]
        if token is not None and self.workspace_for_token(token) != ref:
            self.add_token(ref, token, "configured")
        return ref

    def issue_token(self, workspace: WorkspaceRef, label: str) -> str:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.add_token(workspace, token, label)
        return token

    def add_token(self, workspace: WorkspaceRef, token: str, label: str) -> None:
        if len(token) < 16:
            raise BadInput("an API token must be at least 16 characters")
        try:
            with self.session() as s:
                s.add(m.ApiToken(workspace_id=workspace.id, token_sha256=token_digest(token), label=label,
                                 created_at=_now()))  # fmt: skip
        except IntegrityError:
            raise BadInput("that token belongs to another workspace") from None

    def workspace_for_token(self, token: str) -> WorkspaceRef | None:
        with self.session() as s:
            row = s.execute(
                select(m.Workspace)
                .join(m.ApiToken, m.ApiToken.workspace_id == m.Workspace.id)
                .where(m.ApiToken.token_sha256 == token_digest(token))
            ).scalar_one_or_none()
            return WorkspaceRef(row.id, row.name) if row else None

    def workspaces(self) -> list[WorkspaceInfo]:
        """Every workspace with how many tokens and apps it has and its signer's address."""
        with self.session() as s:
            tokens = dict(
                s.execute(select(m.ApiToken.workspace_id, func.count()).group_by(m.ApiToken.workspace_id)).all()
            )
            apps = dict(s.execute(select(m.App.workspace_id, func.count()).group_by(m.App.workspace_id)).all())
            return [
                WorkspaceInfo(w.name, w.created_at, tokens.get(w.id, 0), apps.get(w.id, 0), w.signer_address)
                for w in s.scalars(select(m.Workspace).order_by(m.Workspace.name))
            ]

    def rotate_token(self, workspace: WorkspaceRef) -> str:
        """Void every token of the workspace and the dashboard sessions they started; a new token (shown once)."""
        with self.session() as s:
            s.execute(delete(m.ApiToken).where(m.ApiToken.workspace_id == workspace.id))
            row = s.get_one(m.Workspace, workspace.id)
            row.sessions_not_before = int(time.time() * 1000)
        return self.issue_token(workspace, "rotated")

    def sessions_not_before(self, workspace: WorkspaceRef) -> int | None:
        """Dashboard sessions of this workspace started before this moment (unix ms) are void; None: no such
        workspace (deleted, or the session names another)."""
        with self.session() as s:
            row = s.get(m.Workspace, workspace.id)
            return row.sessions_not_before if row is not None and row.name == workspace.name else None

    def set_signer(self, workspace: WorkspaceRef, address: str, sealed: bytes) -> None:
        """The workspace's own signer (its key sealed by warden.fleet.workspace_signers for this row)."""
        with self.session() as s:
            row = s.get_one(m.Workspace, workspace.id)
            row.signer_address, row.signer_sealed = parse_address(address), sealed

    def clear_signer(self, workspace: WorkspaceRef) -> str | None:
        """Forget the workspace's signer; the address it had (None when it had none)."""
        with self.session() as s:
            row = s.get_one(m.Workspace, workspace.id)
            previous = row.signer_address
            row.signer_address, row.signer_sealed = None, None
            return previous

    def stored_signer(self, workspace: WorkspaceRef) -> tuple[str, bytes] | None:
        """The workspace's signer address and sealed key, or None when nobody signs for it."""
        with self.session() as s:
            row = s.get(m.Workspace, workspace.id)
            if row is None or row.signer_address is None or row.signer_sealed is None:
                return None
            return row.signer_address, row.signer_sealed

    # nodes

    def add_node(self, name: str, *, region: str | None = None, tee_version: str | None = None,
                 status: str = "online") -> NodeView:  # fmt: skip
        """Register a node (idempotent: an existing node keeps its identity; region/version are updated)."""
        name = _name(name, "node name")
        _check_choice(status, NODE_STATUSES, "node status")
        with self.session() as s:
            node = s.scalars(select(m.Node).where(m.Node.name == name)).one_or_none()
            if node is None:
                node = m.Node(name=name, status=status, created_at=_now())
                s.add(node)
            node.region = region or node.region
            node.tee_version = tee_version or node.tee_version
            node.status = status
            s.flush()
            return _node_view(node)

    def node_exists(self, name: str) -> bool:
        """Whether any workspace has a node by this name (for refusing duplicates, never for reading it)."""
        with self.session() as s:
            return s.scalars(select(m.Node.id).where(m.Node.name == name.strip())).first() is not None

    def grant(self, workspace: WorkspaceRef, node_name: str) -> None:
        """Let `workspace` deploy to the node (idempotent)."""
        with self.session() as s:
            node = self._node_row(s, node_name)
            if s.get(m.NodeAccess, (workspace.id, node.id)) is None:
                s.add(m.NodeAccess(workspace_id=workspace.id, node_id=node.id))

    def nodes(self, workspace: WorkspaceRef, *, after: str | None = None, limit: int | None = None) -> list[NodeView]:
        """The workspace's nodes by name; with `after`/`limit`, at most `limit` of those named after `after`.

        Read as plain rows (two queries, no ORM objects): a fleet of thousands is read in milliseconds."""
        nodes, access = m.Node.__table__, m.NodeAccess.__table__  # Core tables: plain rows, no ORM processing
        n = nodes.c
        query = (
            select(n.id, n.name, n.region, n.ppid, n.device_id, n.tee_version, n.tcb_status, n.status,
                   n.last_attested_at)
            .select_from(nodes.join(access, access.c.node_id == n.id))
            .where(access.c.workspace_id == workspace.id)
            .order_by(n.name)
        )  # fmt: skip
        if after is not None:  # keyset: names are unique, so no node is skipped or repeated between pages
            query = query.where(n.name > after)
        if limit is not None:
            query = query.limit(limit)
        i = m.NodeIdentity.__table__.c
        identities = select(i.node_id, i.old_device_id, i.device_id).order_by(i.id)
        with self.engine.connect() as connection:  # plain rows: no ORM bookkeeping for thousands of nodes
            rows = connection.execute(query).all()
            if limit is not None or after is not None:
                identities = identities.where(i.node_id.in_([row[0] for row in rows]))
            else:
                identities = identities.where(
                    i.node_id.in_(select(access.c.node_id).where(access.c.workspace_id == workspace.id))
                )
            presented: dict[int, list[bytes]] = {}
            for node_id, old, new in connection.execute(identities).all():
                ids = presented.setdefault(node_id, [])
                if old is not None:
                    ids.append(old)
                ids.append(new)
        views = []
        for node_id, name, region, ppid, device, tee_version, tcb_status, status, attested in rows:
            seen = presented.get(node_id, ())
            if len(seen) == 1 and seen[0] == device:  # most nodes: one identity, the current one
                former: tuple[bytes, ...] = ()
            else:
                former = tuple(dict.fromkeys(d for d in seen if d != device))  # oldest first, once each
            views.append(NodeView(name, region, ppid, device, tee_version, tcb_status, status, attested, former))
        return views

    def node(self, workspace: WorkspaceRef, name: str) -> NodeView:
        with self.session() as s:
            return _node_view(self._visible_node(s, workspace, name))

    def node_history(self, workspace: WorkspaceRef, name: str) -> list[IdentityChange]:
        """Every device identity the node presented, oldest first."""
        with self.session() as s:
            node = self._visible_node(s, workspace, name)
            return [
                IdentityChange(i.old_device_id, i.device_id, i.ppid, i.first_seen, i.last_seen) for i in node.identities
            ]

    def record_identity(
        self,
        node_name: str,
        ppid: bytes,
        device_id: bytes,
        *,
        tcb_status: str | None = None,
        allows: DeviceCheck | None = None,
        seen_at: int | None = None,
    ) -> IdentityUpdate:
        """A node proved (by a verified quote) that it has this PPID / device id now.

        A new device id appends to the node's history; each CVM on the node is then checked against its
        app's allowlist with `allows` and marked (device_allowed False + a reason) when it would be refused.
        """
        seen = seen_at if seen_at is not None else _now()
        with self.session() as s:
            node = self._node_row(s, node_name)
            old = node.device_id
            latest = node.identities[-1] if node.identities else None
            changed = latest is None or latest.device_id != device_id
            if changed:
                node.identities.append(
                    m.NodeIdentity(old_device_id=old, device_id=device_id, ppid=ppid, first_seen=seen, last_seen=seen)
                )
            else:
                assert latest is not None
                latest.last_seen = seen
            node.ppid, node.device_id = ppid, device_id
            node.tcb_status = tcb_status or node.tcb_status
            node.last_attested_at = seen
            flagged: list[str] = []
            if changed and allows is not None:
                cvms = s.scalars(select(m.Cvm).where(m.Cvm.node_id == node.id).order_by(m.Cvm.name)).all()
                verdicts: dict[int, bool] = {}
                for cvm in cvms:
                    if cvm.app_id not in verdicts:
                        verdicts[cvm.app_id] = allows(_app_view(cvm.app), device_id)
                    cvm.device_allowed = verdicts[cvm.app_id]
                    cvm.updated_at = seen
                    if not cvm.device_allowed:
                        cvm.status_reason = (
                            f"node {node.name} now has device id {hex0x(device_id)}, "
                            f"which app {cvm.app.address} does not allow"
                        )
                        flagged.append(cvm.name)
            return IdentityUpdate(node.name, device_id, old if changed else None, changed, flagged)

    # apps

    def register_app(self, workspace: WorkspaceRef, address: str, *, chain_id: int, kms_contract: str | None = None,
                     name: str | None = None) -> AppView:  # fmt: skip
        """Add an app to the workspace (idempotent; name and KMS are updated)."""
        address = parse_address(address, "app address")
        with self.session() as s:
            app = s.scalars(
                select(m.App).where(m.App.workspace_id == workspace.id, m.App.address == address)
            ).one_or_none()
            if app is None:
                app = m.App(workspace_id=workspace.id, address=address, chain_id=chain_id, created_at=_now())
                s.add(app)
            app.chain_id = chain_id
            app.name = name or app.name
            app.kms_contract = parse_address(kms_contract, "KMS address") if kms_contract else app.kms_contract
            s.flush()
            return _app_view(app)

    def apps(self, workspace: WorkspaceRef) -> list[AppView]:
        """The workspace's apps in the order they were registered."""
        return [app for _, app in self.app_page(workspace)]

    def app_page(
        self, workspace: WorkspaceRef, *, after: int | None = None, limit: int | None = None
    ) -> list[tuple[int, AppView]]:
        """Apps with their row ids (the keyset), registered after the app with id `after`; at most `limit`."""
        with self.session() as s:
            query = select(m.App).where(m.App.workspace_id == workspace.id).order_by(m.App.id)
            if after is not None:
                query = query.where(m.App.id > after)
            if limit is not None:
                query = query.limit(limit)
            return [(a.id, _app_view(a)) for a in s.scalars(query).all()]

    def app(self, workspace: WorkspaceRef, key: str) -> AppView:
        """An app by address (0x…, app_…, any case), by name, or by one of its CVMs (name, UUID, instance id)."""
        with self.session() as s:
            return _app_view(self._app_row(s, workspace, key))

    # CVMs

    def add_cvm(
        self,
        workspace: WorkspaceRef,
        name: str,
        *,
        app: str,
        node: str,
        instance_id: bytes | None = None,
        compose_hash: bytes | None = None,
        status: str = "created",
        uuid: str | None = None,
    ) -> CvmView:
        """Record a CVM placed on a node the workspace may deploy to."""
        name = _name(name, "CVM name")
        _check_choice(status, CVM_STATUSES, "CVM status")
        try:
            with self.session() as s:
                app_row = self._app_row(s, workspace, app)
                node_row = self._visible_node(s, workspace, node)
                now = _now()
                cvm = m.Cvm(
                    workspace_id=workspace.id, app=app_row, node=node_row, name=name,
                    uuid=uuid or str(uuidlib.uuid4()), instance_id=instance_id, compose_hash=compose_hash,
                    status=status, created_at=now, updated_at=now,
                )  # fmt: skip
                s.add(cvm)
                s.flush()
                return _cvm_view(cvm)
        except IntegrityError:
            raise BadInput(f"CVM {name!r} (or its UUID) exists already") from None

    def cvms(
        self,
        workspace: WorkspaceRef,
        app: str | None = None,
        *,
        node: str | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[CvmView]:
        """The workspace's CVMs (or `app`'s, or those on `node`) by name; with `after`/`limit`, at most `limit`
        named after `after`. Read as plain rows in one query (no ORM objects): thousands in milliseconds."""
        c, a, n = m.Cvm, m.App, m.Node
        query = (
            select(c.name, c.uuid, c.instance_id, a.address, a.name, n.name, n.device_id, c.compose_hash, c.status,
                   c.device_allowed, c.status_reason, c.updated_at)
            .join(a, a.id == c.app_id)
            .join(n, n.id == c.node_id)
            .where(c.workspace_id == workspace.id)
            .order_by(c.name)
        )  # fmt: skip
        if app is not None:
            with self.session() as s:
                query = query.where(c.app_id == self._app_row(s, workspace, app).id)
        if node is not None:
            query = query.where(n.name == node.strip())
        if after is not None:  # keyset: names are unique within a workspace
            query = query.where(c.name > after)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as connection:  # plain rows: no ORM bookkeeping for thousands of CVMs
            return [CvmView(*row) for row in connection.execute(query).all()]  # type: ignore[call-arg]

    def placements(self, workspace: WorkspaceRef, app: str) -> list[Placement]:
        """Where each CVM of `app` that is not stopped runs (its node and that node's device id), by name."""
        cvms, nodes = m.Cvm.__table__, m.Node.__table__  # Core tables: plain rows, no ORM result processing
        c, n = cvms.c, nodes.c
        with self.session() as s:
            row = self._app_row(s, workspace, app)
            app_id, address = row.id, row.address
        query = (
            select(c.name, n.name, n.device_id, c.status)
            .select_from(cvms.join(nodes, n.id == c.node_id))
            .where(c.workspace_id == workspace.id, c.app_id == app_id, c.status != "stopped")
            .order_by(c.name)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [Placement(name, address, node, device, status) for name, node, device, status in rows]

    def cvm_counts(self, workspace: WorkspaceRef, app: str) -> tuple[int, int]:
        """How many CVMs `app` has in the workspace, and how many of them are running."""
        with self.session() as s:
            app_id = self._app_row(s, workspace, app).id
            rows = s.execute(
                select(m.Cvm.status, func.count()).where(m.Cvm.workspace_id == workspace.id, m.Cvm.app_id == app_id)
                .group_by(m.Cvm.status)
            ).all()  # fmt: skip
        counts = {str(status): int(count) for status, count in rows}
        return sum(counts.values()), counts.get("running", 0)

    def find_cvm(self, workspace: WorkspaceRef, key: str) -> CvmView:
        """A CVM by name, UUID or instance id (hex, 0x optional)."""
        with self.session() as s:
            return _cvm_view(self._cvm_row(s, workspace, key))

    def set_cvm_status(
        self,
        workspace: WorkspaceRef,
        key: str,
        status: str,
        reason: str | None = None,
        *,
        device_allowed: bool | None = None,
        compose_hash: bytes | None = None,
    ) -> CvmView:
        """A CVM's new status (and what its boot showed: whether its device was allowed, the hash it ran)."""
        _check_choice(status, CVM_STATUSES, "CVM status")
        with self.session() as s:
            cvm = self._cvm_row(s, workspace, key)
            cvm.status, cvm.status_reason, cvm.updated_at = status, reason, _now()
            if device_allowed is not None:
                cvm.device_allowed = device_allowed
            if compose_hash is not None:
                cvm.compose_hash = compose_hash
            s.flush()
            return _cvm_view(cvm)

    def move_cvm(self, workspace: WorkspaceRef, key: str, node: str) -> CvmView:
        with self.session() as s:
            cvm = self._cvm_row(s, workspace, key)
            cvm.node = self._visible_node(s, workspace, node)
            cvm.device_allowed, cvm.updated_at = None, _now()
            s.flush()
            return _cvm_view(cvm)

    # rows

    def _node_row(self, s: Session, name: str) -> m.Node:
        node = s.scalars(select(m.Node).where(m.Node.name == name.strip())).one_or_none()
        if node is None:
            raise NotFound(f"unknown node {name!r}")
        return node

    def _visible_node(self, s: Session, workspace: WorkspaceRef, name: str) -> m.Node:
        node = s.scalars(
            select(m.Node)
            .join(m.NodeAccess, m.NodeAccess.node_id == m.Node.id)
            .where(m.NodeAccess.workspace_id == workspace.id, m.Node.name == name.strip())
        ).one_or_none()
        if node is None:
            raise NotFound(f"unknown node {name!r} (or not one this workspace may deploy to)")
        return node

    def _app_row(self, s: Session, workspace: WorkspaceRef, key: str) -> m.App:
        text = key.strip()
        query = select(m.App).where(m.App.workspace_id == workspace.id)
        try:
            address = parse_address(text, "app address")
        except BadInput:
            app = s.scalars(query.where(m.App.name == text)).first()
        else:
            app = s.scalars(query.where(m.App.address == address)).one_or_none()
        if app is None:  # a CVM's name, UUID or instance id stands for its app, as on the command line
            try:
                app = self._cvm_row(s, workspace, text).app
            except NotFound:
                raise NotFound(
                    f"unknown app {key!r} in workspace {workspace.name} (by address, name, or a CVM's name, "
                    "UUID or instance id)"
                ) from None
        return app

    def _cvm_row(self, s: Session, workspace: WorkspaceRef, key: str) -> m.Cvm:
        text = key.strip()
        query = select(m.Cvm).where(m.Cvm.workspace_id == workspace.id)
        cvm = s.scalars(query.where((m.Cvm.name == text) | (m.Cvm.uuid == text.lower()))).first()
        if cvm is None:
            instance = maybe_hex(text)
            if instance is not None:
                cvm = s.scalars(query.where(m.Cvm.instance_id == instance)).first()
        if cvm is None:
            raise NotFound(f"no CVM named {key!r} (by name, UUID or instance id) in workspace {workspace.name}")
        return cvm


INVENTORY_ROWS = (m.Node, m.NodeIdentity, m.NodeAccess, m.App, m.Cvm)


def _count_inventory_changes(session: Session, _context: object, _instances: object) -> None:
    """Bump the fleet revision in the same transaction as any change to the inventory's rows."""
    if any(isinstance(row, INVENTORY_ROWS) for row in (*session.new, *session.dirty, *session.deleted)):
        session.execute(
            update(m.FleetRevision).where(m.FleetRevision.id == 1).values(number=m.FleetRevision.number + 1)
        )


def _name(value: str, what: str) -> str:
    text = value.strip()
    if not text or len(text) > 100 or any(c.isspace() or not c.isprintable() or c in "/?#%" for c in text):
        raise BadInput(f"invalid {what} {value!r}: 1-100 printable characters without spaces or / ? # %")
    return text


def _check_choice(value: str, choices: Sequence[str], what: str) -> None:
    if value not in choices:
        raise BadInput(f"invalid {what} {value!r}: choose one of {', '.join(choices)}")
