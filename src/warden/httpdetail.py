"""What an HTTP answer says went wrong, as one line: its JSON `{"detail": …}` (or another key), else its status.

Used by every warden client of an HTTP API (the control plane's, the dstack guest agent's).
"""

from __future__ import annotations

from typing import Any, Protocol


class HttpAnswer(Protocol):
    """What is read of an answer (an `httpx.Response` is one)."""

    @property
    def status_code(self) -> int: ...

    def json(self) -> Any: ...


def answer_detail(response: HttpAnswer, key: str = "detail") -> str:
    """The answer's `{key: …}` as one line: a string as it is, FastAPI's validation errors (a list of objects
    with `loc` and `msg`) joined with "; "; `HTTP <status>` when the answer says nothing more."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    detail = body.get(key) if isinstance(body, dict) else None
    if isinstance(detail, list):
        return "; ".join(_problem(item) for item in detail) or f"HTTP {response.status_code}"
    return str(detail) if detail else f"HTTP {response.status_code}"


def _problem(item: object) -> str:
    if not isinstance(item, dict):
        return str(item)
    where = ".".join(str(p) for p in item.get("loc", ()) if p != "body")
    return f"{where}: {item.get('msg')}" if where else str(item.get("msg", item))
