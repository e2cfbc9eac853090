from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.cli import WARDEN_ENV


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No inherited configuration, profile or devnet: each test says exactly what it uses."""
    for name in WARDEN_ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "warden-home"
    monkeypatch.setenv("WARDEN_HOME", str(home))
    return home
