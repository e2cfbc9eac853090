"""A browser-like client of the dashboard: sign in with a workspace token, read hidden form fields."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


def hidden(html: str, name: str) -> str:
    """The value of the page's hidden form field `name` (the first one)."""
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name!r} in the page"
    return match.group(1)


@contextmanager
def sign_in(base_url: str, token: str) -> Iterator[httpx.Client]:
    """A client holding a dashboard session (cookies), not following redirects."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        form = client.get("/login")
        assert form.status_code == 200
        response = client.post("/login", data={"token": token, "csrf": hidden(form.text, "csrf"), "next": "/"})
        assert response.status_code == 303, response.text
        yield client


def csrf_of(client: httpx.Client) -> str:
    """The session's CSRF token, as every write form of the dashboard carries it."""
    return hidden(client.get("/nodes").text, "csrf")
