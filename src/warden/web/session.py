"""Dashboard sessions: a signed cookie naming the workspace, CSRF tokens derived from it, signed flash notes.

A session is created by pasting a workspace API token on /login. The cookie holds only the workspace,
a random session id and an expiry, authenticated with HMAC-SHA256 under the control plane's
`session_secret`; the token itself is never stored, echoed or logged. Every write form carries a CSRF
token that is an HMAC of the session id, so a page of another site cannot post on the user's behalf.
Each use of the secret has its own label, so a value signed for one purpose never verifies for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

from warden.fleet.store import WorkspaceRef

SESSION_COOKIE = "warden_session"
LOGIN_COOKIE = "warden_login"  # the login form's own CSRF nonce (there is no session yet)
FLASH_COOKIE = "warden_flash"
SESSION_SECONDS = 8 * 3600
LOGIN_FORM_SECONDS = 3600
FLASH_SECONDS = 120
MAX_COOKIE_CHARS = 3000  # larger values are refused before any parsing


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mac(secret: bytes, purpose: str, message: bytes) -> bytes:
    """HMAC-SHA256 of `message` under `secret`, separated by `purpose` (a short label)."""
    return hmac.new(secret, purpose.encode() + b"\x00" + message, hashlib.sha256).digest()


def sign(secret: bytes, purpose: str, payload: dict[str, Any]) -> str:
    """`payload` as compact JSON, base64url, a dot and its MAC: safe in a cookie value."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    return f"{_b64(body)}.{_b64(mac(secret, purpose, body))}"


def unsign(secret: bytes, purpose: str, value: str | None) -> dict[str, Any] | None:
    """The payload if `value` was signed for `purpose` with `secret` and is not expired (`exp`), else None."""
    if not value or len(value) > MAX_COOKIE_CHARS or value.count(".") != 1:
        return None
    body_text, tag_text = value.split(".")
    try:
        body, tag = _unb64(body_text), _unb64(tag_text)
    except ValueError:
        return None
    if not hmac.compare_digest(tag, mac(secret, purpose, body)):
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    if not isinstance(payload, dict):
        return None
    expires = payload.get("exp")
    if not isinstance(expires, int) or expires <= int(time.time()):
        return None
    return payload


@dataclass(frozen=True)
class DashboardSession:
    """Who is signed in: one workspace, until `expires_at` (unix seconds)."""

    workspace_id: int
    workspace: str
    session_id: str
    expires_at: int
    issued_at_ms: int = 0  # void once the workspace's tokens are rotated after it (`warden workspace rotate-token`)

    @property
    def workspace_ref(self) -> WorkspaceRef:
        return WorkspaceRef(self.workspace_id, self.workspace)


def new_session(
    secret: bytes, workspace: WorkspaceRef, *, lifetime: int = SESSION_SECONDS, now: int | None = None
) -> tuple[DashboardSession, str]:
    """A fresh session (new random id) for the workspace and its cookie value."""
    issued_ms = now * 1000 if now is not None else int(time.time() * 1000)
    expires = issued_ms // 1000 + lifetime
    session = DashboardSession(workspace.id, workspace.name, secrets.token_urlsafe(18), expires, issued_ms)
    payload = {"w": workspace.id, "n": workspace.name, "sid": session.session_id, "exp": expires, "iat": issued_ms}
    return session, sign(secret, "session", payload)


def read_session(secret: bytes, value: str | None) -> DashboardSession | None:
    """The session a cookie value proves, or None (missing, tampered, expired, or malformed)."""
    payload = unsign(secret, "session", value)
    if payload is None:
        return None
    workspace_id, name, sid, issued = payload.get("w"), payload.get("n"), payload.get("sid"), payload.get("iat", 0)
    if not isinstance(workspace_id, int) or not isinstance(name, str) or not isinstance(sid, str) or not sid:
        return None
    if not isinstance(issued, int):
        return None
    return DashboardSession(workspace_id, name, sid, int(payload["exp"]), issued)


def csrf_token(secret: bytes, session: DashboardSession) -> str:
    """The hidden form value every write of this session must carry."""
    return _b64(mac(secret, "csrf", session.session_id.encode()))


def csrf_ok(secret: bytes, session: DashboardSession, supplied: str | None) -> bool:
    return bool(supplied) and hmac.compare_digest(str(supplied), csrf_token(secret, session))


def new_login_nonce() -> str:
    return secrets.token_urlsafe(18)


def login_csrf_token(secret: bytes, nonce: str) -> str:
    """The login form's hidden value: bound to a nonce cookie so another site cannot sign a user in."""
    return _b64(mac(secret, "login", nonce.encode()))


def login_csrf_ok(secret: bytes, nonce: str | None, supplied: str | None) -> bool:
    return bool(nonce) and bool(supplied) and hmac.compare_digest(str(supplied), login_csrf_token(secret, str(nonce)))


@dataclass(frozen=True)
class Flash:
    """A one-time note shown on the next page: what an action did (`kind`: ok, info, warn, error)."""

    kind: str
    text: str
    tx: str | None = None
    chain_id: int | None = None


def flash_value(secret: bytes, flash: Flash) -> str:
    payload = {"k": flash.kind, "t": flash.text, "x": flash.tx, "c": flash.chain_id}
    return sign(secret, "flash", payload | {"exp": int(time.time()) + FLASH_SECONDS})


def read_flash(secret: bytes, value: str | None) -> Flash | None:
    payload = unsign(secret, "flash", value)
    if payload is None or not isinstance(payload.get("k"), str) or not isinstance(payload.get("t"), str):
        return None
    tx, chain_id = payload.get("x"), payload.get("c")
    return Flash(
        payload["k"],
        payload["t"],
        tx if isinstance(tx, str) else None,
        chain_id if isinstance(chain_id, int) else None,
    )
