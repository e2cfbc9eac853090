"""`warden alerts …`: where the control plane sends the workspace's alerts (drift before the next reboot,
compose hashes no longer allowed, allowlist changes made outside warden, allowAnyDevice on, ownership moved),
and what it sent. Everything goes through the control plane's API (WARDEN_API_URL / WARDEN_API_TOKEN)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from warden.cli.common import JsonOption, emit, flag, lines, new_app, note, rows_table
from warden.cli.nodes import shown, when
from warden.cli.options import ControlPlaneOptions, grouped
from warden.web.alerts_client import AlertsClient

app = new_app("alerts", "Alert webhooks: add, list, test and remove them; list the alerts the control plane raised.")
app.info.epilog = "\b\nExample: warden alerts add-webhook https://hooks.example.com/warden --format json"

UrlArgument = Annotated[str, typer.Argument(metavar="URL", help="http(s) URL the alerts are POSTed to.")]
FormatOption = Annotated[
    str, flag("--format", "json (warden's alert object, HMAC-signed) or slack (a Slack incoming webhook).")
]
WebhookArgument = Annotated[int, typer.Argument(metavar="ID", help="The webhook's id, as `warden alerts ls` shows it.")]
OnlyOption = Annotated[int | None, flag("--webhook", "Only this webhook (its id).", metavar="ID")]
AlertsFlag = Annotated[bool, flag("--alerts", "List the alerts raised (newest first) instead of the webhooks.")]
OpenFlag = Annotated[bool, flag("--open", "With --alerts: only alerts not resolved.")]


@app.command("add-webhook")
@grouped
def add_webhook_command(
    url: UrlArgument, plane: ControlPlaneOptions, format: FormatOption = "json", json_out: JsonOption = False
) -> None:
    """Send the workspace's alerts to URL. Each POST carries X-Warden-Signature: sha256=HMAC-SHA256(secret,
    "<X-Warden-Timestamp>.<body>"); the secret is printed once, now. Alerts are retried with backoff until the
    receiver answers 2xx, and sent once each.

    Example: warden alerts add-webhook https://hooks.example.com/warden --format slack
    """
    with plane.client() as client:
        hook = AlertsClient(client).add_webhook(url, format)
    emit(json_out, hook, lines(
        f"webhook {hook['id']} added: {hook['url']} ({hook['format']})",
        f"signing secret (shown only now): {hook['secret']}",
    ))  # fmt: skip


@app.command("ls")
@grouped
def ls_command(
    plane: ControlPlaneOptions, alerts: AlertsFlag = False, open_only: OpenFlag = False, json_out: JsonOption = False
) -> None:
    """The workspace's webhooks; with --alerts, the alerts raised and how their deliveries went.

    Example: warden alerts ls --alerts --open
    """
    with plane.client() as client:
        if alerts:
            raised = AlertsClient(client).alerts(open_only=open_only)
            emit(json_out, {"alerts": raised}, _alerts_table(raised))
            return
        hooks = AlertsClient(client).webhooks()
    rows = [[str(h["id"]), h["url"], h["format"], when(h.get("created_at"))] for h in hooks]
    empty = "no webhook: add one with `warden alerts add-webhook URL`"
    emit(json_out, {"webhooks": hooks}, rows_table(("id", "url", "format", "added (UTC)"), rows, empty))


def _alerts_table(raised: list[dict[str, Any]]) -> Any:
    def delivered(alert: dict[str, Any]) -> str:
        parts = [f"{d['webhook']}:{d['status']}" for d in alert.get("deliveries") or []]
        return ", ".join(parts) or "-"

    rows = [
        [when(a.get("raised_at")), a["kind"], shown(a.get("app_name") or a.get("app")), a["message"],
         "resolved" if a.get("resolved_at") else "open", delivered(a)]
        for a in raised
    ]  # fmt: skip
    return rows_table(("raised (UTC)", "kind", "app", "alert", "state", "deliveries"), rows, "no alert raised")


@app.command("test")
@grouped
def test_command(plane: ControlPlaneOptions, webhook: OnlyOption = None, json_out: JsonOption = False) -> None:
    """Send a test alert to every webhook (or one) now and say how each answered; exit 1 if any failed.

    Example: warden alerts test
    """
    with plane.client() as client:
        results = AlertsClient(client).test(webhook)
    rows = [[str(r["webhook"]), r["url"], "ok" if r["ok"] else "failed", shown(r.get("status")), shown(r.get("error"))]
            for r in results]  # fmt: skip
    empty = "no webhook: add one with `warden alerts add-webhook URL`"
    emit(json_out, {"results": results}, rows_table(("id", "url", "result", "status", "error"), rows, empty))
    failed = [r for r in results if not r["ok"]]
    if failed:
        note(f"error: {len(failed)} of {len(results)} webhook(s) did not accept the test alert")
        raise typer.Exit(1)


@app.command("rm")
@grouped
def rm_command(webhook: WebhookArgument, plane: ControlPlaneOptions, json_out: JsonOption = False) -> None:
    """Stop sending alerts to a webhook (its undelivered alerts are dropped with it).

    Example: warden alerts rm 2
    """
    with plane.client() as client:
        removed = AlertsClient(client).remove_webhook(webhook)
    emit(json_out, removed, lines(f"webhook {removed['id']} removed: {removed['url']}"))
