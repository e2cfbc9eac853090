"""The dashboard: server-rendered pages (Jinja2) over the same library calls as the API and the CLI.

Pages: apps (`/`), one app with its Device Allowlist panel, CVMs and audit trail (`/apps/{app}`), nodes
(`/nodes`) and one node with its device-identity history (`/nodes/{name}`). Long tables are paged on the
server (a page of rows and a link to the next, `?devices=`, `?cvms=`, `?after=` cursors), so a fleet of
thousands renders a page of the same size as a fleet of ten. Every page needs a session
(see `warden.web.session`) and shows only its workspace; anything else is the same 404 as a thing that
does not exist. Every action is a plain HTML form POST answered with a redirect, so the dashboard works
without JavaScript; htmx (shipped in warden/web/static) only makes the same forms swap the page in place
and refreshes the allowlist panel.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from warden import __version__
from warden.chain.connection import chain_name
from warden.chain.inputs import hex0x
from warden.errors import BadInput, WardenError
from warden.fleet.allowlist_view import AllowlistView, DeviceRow, decode_row_key, encode_row_key, row_key
from warden.fleet.store import AppView, CvmView, NotFound, WorkspaceRef
from warden.web import actions
from warden.web.actions import FormChange, Offline, short_hex
from warden.web.api import decode_cursor, encode_cursor, plane_of
from warden.web.plane import ControlPlane
from warden.web.session import (
    FLASH_COOKIE,
    FLASH_SECONDS,
    LOGIN_COOKIE,
    LOGIN_FORM_SECONDS,
    SESSION_COOKIE,
    DashboardSession,
    Flash,
    csrf_ok,
    csrf_token,
    flash_value,
    login_csrf_ok,
    login_csrf_token,
    new_login_nonce,
    new_session,
    read_flash,
    read_session,
)

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
# htmx 2.0.11 ships inside the package (static/htmx.LICENSE.txt says where it comes from)
PACKAGED_HTMX_JS = STATIC_DIR / "htmx.min.js"

HISTORY_ROWS = 50  # the audit trail shows the newest events; `warden allow-devices history` has them all
PAGE_ROWS = 50  # devices and CVMs per page of the app page
NODES_PAGE = 100  # rows per page of the nodes page
NAMED = 10  # a warning names this many nodes and CVMs, then says how many more
TX_EXPLORERS = {1: "https://etherscan.io", 8453: "https://basescan.org", 84532: "https://sepolia.basescan.org"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATUS_LABELS = {
    "allowed": "Allowed",
    "deployed-not-allowed": "Running here, not allowed",
    "known-not-deployed": "Not allowed, nothing deployed",
}


def htmx_file() -> Path | None:
    """WARDEN_HTMX_JS (another htmx build), else the packaged copy; None when that file does not exist."""
    configured = os.environ.get("WARDEN_HTMX_JS")
    path = Path(configured) if configured else PACKAGED_HTMX_JS
    return path if path.is_file() else None


# -- formatting helpers (template filters) ---------------------------------------------------------------


def when(ts: int | None) -> str:
    if not ts:
        return "—"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso(ts: int) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat()


def ago(ts: int | None, now: float | None = None) -> str:
    if not ts:
        return "never"
    seconds = int((now if now is not None else time.time()) - ts)
    if seconds < 60:
        return "just now"
    for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"  # unreachable: the loop ends at 60 s


def country_code(region: str | None) -> str | None:
    """`US` for `us-east`, `DE` for `de-fra-1`: a region whose first part is a two-letter code."""
    if not region:
        return None
    first = region.replace("_", "-").split("-")[0]
    return first.upper() if len(first) == 2 and first.isalpha() else None


def tx_url(tx: str, chain_id: int | None) -> str | None:
    base = TX_EXPLORERS.get(chain_id or 0)
    return f"{base}/tx/{tx}" if base else None


def named(items: list[str], count: int = NAMED) -> str:
    """`a, b, c` for a few; `a, b, … and 37 more` for many (a warning stays one line at any fleet size)."""
    shown = ", ".join(items[:count])
    return shown + (f" and {len(items) - count:,} more" if len(items) > count else "")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(hex=hex0x, short=short_hex, when=when, iso=iso, ago=ago, country=country_code, chain=chain_name)
    env.globals.update(tx_url=tx_url, status_labels=STATUS_LABELS, version=__version__, quote=quote, named=named)
    return env


templates = _environment()


# -- sessions ----------------------------------------------------------------------------------------------


class LoginRequired(Exception):
    """No valid session: the browser goes to /login (an htmx request is told to go there)."""


class PageError(Exception):
    """An HTML error page (404 for what the workspace cannot see, 403 for a bad CSRF token)."""

    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


def _session_current(plane: ControlPlane, session: DashboardSession) -> bool:
    """The session's workspace still exists and its tokens were not rotated since the session began."""
    not_before = plane.fleet.sessions_not_before(session.workspace_ref)
    return not_before is not None and session.issued_at_ms >= not_before


def signed_in(request: Request) -> DashboardSession:
    """The request's session (dependency of every page); LoginRequired when there is none or it is void."""
    plane = plane_of(request)
    session = read_session(plane.session_secret, request.cookies.get(SESSION_COOKIE))
    if session is None or not _session_current(plane, session):
        raise LoginRequired()
    return session


Session = Annotated[DashboardSession, Depends(signed_in)]
CsrfField = Annotated[str | None, Form(alias="csrf")]


def require_csrf(request: Request, session: DashboardSession, supplied: str | None) -> None:
    """Refuse a write (403 page, nothing done) unless it carries this session's CSRF token."""
    if not csrf_ok(plane_of(request).session_secret, session, supplied):
        log.warning("workspace %s: refused a %s without a valid CSRF token", session.workspace, request.url.path)
        raise PageError(
            403,
            "This form has expired",
            "The form's security token is missing or wrong (was the page open in another session?). "
            "Nothing was changed. Reload the page and try again.",
        )


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _local_path(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never `//other.site` or a full URL)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or any(c in target for c in "\r\n"):
        return "/"
    return target


# -- rendering ---------------------------------------------------------------------------------------------


def render(
    name: str, context: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A template as an HTML response with the dashboard's security headers."""
    html = templates.get_template(name).render(context)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def page_context(request: Request, session: DashboardSession | None, nav: str, **extra: Any) -> dict[str, Any]:
    """What every template may use: workspace, CSRF token, htmx availability, the workspace's signer, nav item."""
    plane = plane_of(request)
    return {
        "workspace": session.workspace if session else None,
        "csrf": csrf_token(plane.session_secret, session) if session else "",
        "htmx": request.app.state.htmx_js is not None,
        "signer": plane.signer_address(session.workspace_ref) if session else None,
        "nav": nav,
        "flash": None,
    } | extra


def render_page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    """A full page; a pending flash note (from the redirect after an action) is shown once, then cleared."""
    secret = plane_of(request).session_secret
    pending = request.cookies.get(FLASH_COOKIE)
    if pending is not None and context.get("flash") is None:
        context["flash"] = read_flash(secret, pending)
    response = render(name, context, status)
    if pending is not None:
        response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="lax", secure=_cookie_secure(request))
    return response


def redirect_with_flash(request: Request, url: str, flash: Flash | None) -> Response:
    response = RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)
    if flash is not None:
        value = flash_value(plane_of(request).session_secret, flash)
        response.set_cookie(FLASH_COOKIE, value, max_age=FLASH_SECONDS, path="/", httponly=True, samesite="lax",
                            secure=_cookie_secure(request))  # fmt: skip
    return response


JSON_PATHS = ("/api/", "/health", "/metrics", "/static/")  # what answers machines: never an HTML page


def error_page(request: Request, exc: PageError) -> Response:
    plane = plane_of(request)
    session = read_session(plane.session_secret, request.cookies.get(SESSION_COOKIE))
    context = page_context(request, session, "", title=exc.title, message=exc.message, status=exc.status)
    return render("error.html", context, exc.status)


def not_found(exc: NotFound) -> PageError:
    return PageError(404, "Not found", str(exc))


# -- data for the pages ------------------------------------------------------------------------------------


@dataclass
class AllowlistPanel:
    """Everything the Device Allowlist panel shows (one page of its rows); `error` when the chain could not be
    read. `cursor`: where this page starts (None: the first); `next_cursor`: where the next one does."""

    app: AppView
    view: AllowlistView | None
    error: str | None
    rows: list[DeviceRow] = field(default_factory=list)
    cursor: str | None = None
    next_cursor: str | None = None

    @cached_property  # asked once per row: computed once
    def offending_ids(self) -> set[bytes]:
        return {r.device_id for r in self.view.offending} if self.view else set()

    @property
    def offending_nodes(self) -> list[str]:
        return [r.node or short_hex(hex0x(r.device_id)) for r in self.view.offending] if self.view else []

    @property
    def offending_cvms(self) -> list[str]:
        return [c for r in self.view.offending for c in r.cvms] if self.view else []


def load_panel(plane: ControlPlane, workspace: WorkspaceRef, app: AppView, cursor: str | None = None) -> AllowlistPanel:
    """The merged allowlist (the chain's part as of the head) and the page of its rows after `cursor`; a chain
    that cannot be read is an error in the panel."""
    after = decode_row_key(decode_cursor(cursor)) if cursor else None  # a bad cursor: BadInput before any read
    try:
        view = plane.device_allowlist(workspace, app.address)
    except WardenError as exc:
        log.warning("workspace %s: allowlist of %s unreadable: %s", workspace.name, app.address, exc)
        return AllowlistPanel(app, None, str(exc))
    rows, more = view.page(after, PAGE_ROWS)
    following = encode_cursor(encode_row_key(row_key(rows[-1]))) if more else None
    return AllowlistPanel(app, view, None, rows, cursor, following)


@dataclass(frozen=True)
class CvmRow:
    cvm: CvmView
    device_allowed: bool | None  # what the chain says now; the inventory's last verdict if it cannot be read


def cvm_rows(cvms: list[CvmView], panel: AllowlistPanel) -> list[CvmRow]:
    """The app's CVMs, each with whether the chain lets its node's current device boot the app."""
    view = panel.view
    allowed = {r.device_id: r.allowed for r in view.rows} if view else {}
    rows = []
    for cvm in cvms:
        verdict = cvm.device_allowed
        if view is not None and cvm.node_device_id is not None:
            verdict = view.allow_any_device or allowed.get(cvm.node_device_id, False)
        rows.append(CvmRow(cvm, verdict))
    return rows


@dataclass(frozen=True)
class CvmPage:
    rows: list[CvmRow]
    total: int
    cursor: str | None
    next_cursor: str | None


def cvm_page(plane: ControlPlane, workspace: WorkspaceRef, app: AppView, panel: AllowlistPanel,
             cursor: str | None) -> CvmPage:  # fmt: skip
    """One page of the app's CVMs by name, after `cursor`."""
    after = decode_cursor(cursor) if cursor else None
    fetched = plane.fleet.cvms(workspace, app.address, after=after, limit=PAGE_ROWS + 1)
    shown = fetched[:PAGE_ROWS]
    following = encode_cursor(shown[-1].name) if len(fetched) > PAGE_ROWS else None
    total, _running = plane.fleet.cvm_counts(workspace, app.address)
    return CvmPage(cvm_rows(shown, panel), total, cursor, following)


def app_page_context(
    request: Request, session: DashboardSession, app_key: str, devices: str | None = None, cvms: str | None = None
) -> dict[str, Any]:
    """The app page: allowlist panel, CVMs and audit trail, each table one page (`devices` / `cvms`: where
    that table's page starts); 404 for an app the workspace does not have, 400 for a cursor it did not write."""
    plane = plane_of(request)
    workspace = session.workspace_ref
    try:
        app = plane.fleet.app(workspace, app_key)
    except NotFound as exc:
        raise not_found(exc) from None
    try:
        panel = load_panel(plane, workspace, app, devices)
        page = cvm_page(plane, workspace, app, panel, cvms)
    except BadInput as exc:
        raise PageError(400, "Bad request", str(exc)) from None
    history: list[dict[str, Any]] = []
    history_error = None
    if panel.error is None:
        try:
            history = list(reversed(plane.app_history(workspace, app.address, limit=HISTORY_ROWS)))
        except WardenError as exc:
            history_error = str(exc)
    return page_context(request, session, "apps", app=app, panel=panel, history=history, history_error=history_error,
                        history_rows=HISTORY_ROWS, cvms=page)  # fmt: skip


def _app(plane: ControlPlane, session: DashboardSession, key: str) -> AppView:
    try:
        return plane.fleet.app(session.workspace_ref, key)
    except NotFound as exc:
        raise not_found(exc) from None


# -- routes ------------------------------------------------------------------------------------------------

router = APIRouter(include_in_schema=False)


@router.get("/static/htmx.min.js")
def htmx_js(request: Request) -> Response:
    path: Path | None = request.app.state.htmx_js
    if path is None:
        return Response(
            "htmx.min.js is missing from this installation of warden",
            status_code=404,
            media_type="text/plain",
        )
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=3600"})


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    plane = plane_of(request)
    session = read_session(plane.session_secret, request.cookies.get(SESSION_COOKIE))
    if session is not None and _session_current(plane, session):
        return RedirectResponse(_local_path(next), status_code=303)
    return _login_page(request, _local_path(next), None, 200)


def _login_page(request: Request, next_path: str, error: str | None, status: int) -> Response:
    plane = plane_of(request)
    nonce = new_login_nonce()
    context = page_context(request, None, "login", error=error, next=next_path,
                           login_csrf=login_csrf_token(plane.session_secret, nonce))  # fmt: skip
    response = render_page(request, "login.html", context, status)
    response.set_cookie(LOGIN_COOKIE, nonce, max_age=LOGIN_FORM_SECONDS, path="/login", httponly=True,
                        samesite="strict", secure=_cookie_secure(request))  # fmt: skip
    return response


@router.post("/login")
def login(
    request: Request,
    token: Annotated[str, Form()] = "",
    csrf: CsrfField = None,
    next: Annotated[str, Form()] = "/",
) -> Response:
    plane = plane_of(request)
    client = request.client.host if request.client else "?"
    if not login_csrf_ok(plane.session_secret, request.cookies.get(LOGIN_COOKIE), csrf):
        log.warning("dashboard sign-in from %s refused: the form's CSRF token is missing or wrong", client)
        return _login_page(request, _local_path(next), "The sign-in form expired. Paste the token again.", 403)
    workspace = plane.fleet.workspace_for_token(token.strip()) if token.strip() else None
    if workspace is None:
        log.warning("dashboard sign-in from %s refused: unknown token", client)
        message = "That token is not valid for any workspace. Check it and try again."
        return _login_page(request, _local_path(next), message, 401)
    session, value = new_session(plane.session_secret, workspace)
    log.info("dashboard session for workspace %s started from %s", workspace.name, client)
    response = RedirectResponse(_local_path(next), status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(SESSION_COOKIE, value, max_age=session.expires_at - int(time.time()), path="/",
                        httponly=True, samesite="lax", secure=_cookie_secure(request))  # fmt: skip
    response.delete_cookie(LOGIN_COOKIE, path="/login", httponly=True, samesite="strict")
    return response


@router.get("/logout")
def logout_form(request: Request, session: Session) -> Response:
    return render_page(request, "logout.html", page_context(request, session, ""))


@router.post("/logout")
def logout(request: Request, session: Session, csrf: CsrfField = None) -> Response:
    require_csrf(request, session, csrf)
    log.info("dashboard session for workspace %s ended", session.workspace)
    response = redirect_with_flash(request, "/login", Flash("info", "You are signed out."))
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_cookie_secure(request))
    return response


@dataclass(frozen=True)
class AppSummary:
    app: AppView
    cvms: int
    running: int
    offending: list[str] | None  # node names; None when the chain could not be read
    allow_any: bool


def _summaries(plane: ControlPlane, workspace: WorkspaceRef) -> list[AppSummary]:
    summaries = []
    for app in plane.fleet.apps(workspace):
        total, running = plane.fleet.cvm_counts(workspace, app.address)
        panel = load_panel(plane, workspace, app)
        offending = panel.offending_nodes if panel.view else None
        summaries.append(AppSummary(app, total, running, offending, bool(panel.view and panel.view.allow_any_device)))
    return summaries


@router.get("/")
@router.get("/apps")
async def apps_page(request: Request, session: Session) -> Response:
    summaries = await run_in_threadpool(_summaries, plane_of(request), session.workspace_ref)
    return render_page(request, "apps.html", page_context(request, session, "apps", apps=summaries))


@router.get("/apps/{app}")
async def app_page(
    request: Request, app: str, session: Session, devices: str | None = None, cvms: str | None = None
) -> Response:
    context = await run_in_threadpool(app_page_context, request, session, app, devices, cvms)
    return render_page(request, "app.html", context)


@router.get("/apps/{app}/device-allowlist")
async def allowlist_fragment(request: Request, app: str, session: Session, devices: str | None = None) -> Response:
    """The Device Allowlist panel alone, the page at `devices` (htmx refreshes it in place)."""
    plane = plane_of(request)
    found = _app(plane, session, app)
    try:
        panel = await run_in_threadpool(load_panel, plane, session.workspace_ref, found, devices)
    except BadInput as exc:
        raise PageError(400, "Bad request", str(exc)) from None
    return render("_allowlist.html", page_context(request, session, "apps", app=found, panel=panel))


def _change_response(request: Request, session: Session, app_key: str, change: FormChange) -> Response:
    plane = plane_of(request)
    app = _app(plane, session, app_key)
    workspace = session.workspace_ref
    outcome = actions.carry_out(plane, app, change, workspace)
    if isinstance(outcome, Offline):
        context = page_context(request, session, "apps", app=app, offline=outcome, fields=change.form())
        return render("offline.html", context)
    app_url = f"/apps/{app.address}"
    if _is_htmx(request):  # the form swaps the page in place: answer with the page itself
        context = app_page_context(request, session, app.address) | {"flash": outcome}
        return render("app.html", context)
    return redirect_with_flash(request, app_url + "#device-allowlist", outcome)


def _parse(change: str | None, device: str | None, enable: str | None) -> FormChange:
    try:
        return FormChange.from_form(change, device, enable)
    except BadInput as exc:
        raise PageError(400, "Bad request", str(exc)) from None


@router.post("/apps/{app}/devices/{verb}")
async def change_device(
    request: Request, app: str, verb: str, session: Session, csrf: CsrfField = None,
    device_id: Annotated[str, Form()] = "",
) -> Response:  # fmt: skip
    """Add (`/devices/add`) or remove (`/devices/remove`) one device."""
    if verb not in ("add", "remove"):
        raise PageError(404, "Not found", "There is no such page.")
    require_csrf(request, session, csrf)
    change = _parse(f"{verb}-device", device_id, None)
    return await run_in_threadpool(_change_response, request, session, app, change)


@router.post("/apps/{app}/allow-any")
async def allow_any(
    request: Request, app: str, session: Session, csrf: CsrfField = None, enable: Annotated[str, Form()] = ""
) -> Response:
    require_csrf(request, session, csrf)
    change = _parse("allow-any", None, enable)
    return await run_in_threadpool(_change_response, request, session, app, change)


def _batch_response(request: Request, session: Session, app_key: str, change: FormChange) -> Response:
    plane = plane_of(request)
    app = _app(plane, session, app_key)
    batch = actions.offline_batch(plane, app, change, plane.inventory(session.workspace_ref))
    if isinstance(batch, Flash):
        return redirect_with_flash(request, f"/apps/{app.address}#device-allowlist", batch)
    filename = f"warden-{app.address[:10].lower()}-{change.kind}.json"
    headers = {**SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{filename}"'}
    return JSONResponse(batch, headers=headers)


@router.post("/apps/{app}/safe-batch")
async def safe_batch_download(
    request: Request,
    app: str,
    session: Session,
    csrf: CsrfField = None,
    change: Annotated[str, Form()] = "",
    device_id: Annotated[str, Form()] = "",
    enable: Annotated[str, Form()] = "",
) -> Response:
    """The change as a Safe Transaction Builder batch file (re-planned against the chain now)."""
    require_csrf(request, session, csrf)
    parsed = _parse(change, device_id, enable)
    return await run_in_threadpool(_batch_response, request, session, app, parsed)


@router.get("/nodes")
def nodes_page(request: Request, session: Session, after: str | None = None) -> Response:
    """The workspace's nodes by name, one page (`after`: the cursor of the previous page's last node)."""
    try:
        last = decode_cursor(after) if after else None
    except BadInput as exc:
        raise PageError(400, "Bad request", str(exc)) from None
    fetched = plane_of(request).fleet.nodes(session.workspace_ref, after=last, limit=NODES_PAGE + 1)
    nodes = fetched[:NODES_PAGE]
    following = encode_cursor(nodes[-1].name) if len(fetched) > NODES_PAGE else None
    context = page_context(request, session, "nodes", nodes=nodes, now=time.time(), cursor=after, next_cursor=following)
    return render_page(request, "nodes.html", context)


@router.get("/nodes/{name}")
def node_page(request: Request, name: str, session: Session) -> Response:
    fleet = plane_of(request).fleet
    workspace = session.workspace_ref
    try:
        node = fleet.node(workspace, name)
        history = list(reversed(fleet.node_history(workspace, name)))
    except NotFound as exc:
        raise not_found(exc) from None
    cvms = fleet.cvms(workspace, node=node.name)
    context = page_context(request, session, "nodes", node=node, history=history, cvms=cvms)
    return render_page(request, "node.html", context)


# -- wiring ------------------------------------------------------------------------------------------------


def install(app: FastAPI) -> None:
    """Add the dashboard to the control plane's app: pages, static files, HTML error pages."""
    app.state.htmx_js = htmx_file()

    async def login_required(request: Request, _exc: Exception) -> Response:
        target = "/login"
        if request.method == "GET" and request.url.path != "/":
            target += "?next=" + quote(request.url.path, safe="/")
        if _is_htmx(request):  # an XHR would follow a redirect silently: ask htmx to navigate
            return Response(status_code=401, headers={**SECURITY_HEADERS, "HX-Redirect": target})
        return RedirectResponse(target, status_code=303, headers=SECURITY_HEADERS)

    async def page_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, PageError)
        return error_page(request, exc)

    async def unknown_route(request: Request, exc: Exception) -> Response:
        """An unknown page is the dashboard's own 404 page; JSON answers stay under /api (and the probes')."""
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404 and not request.url.path.startswith(JSON_PATHS):
            return error_page(request, PageError(404, "Not found", "There is no such page."))
        return await http_exception_handler(request, exc)

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(PageError, page_error)
    app.add_exception_handler(StarletteHTTPException, unknown_route)
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
