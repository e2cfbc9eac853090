"""Where warden keeps a user's files: profiles in the user config dir, caches in the user cache dir.

Both follow the platform's conventions through platformdirs (on Linux `$XDG_CONFIG_HOME/warden` and
`$XDG_CACHE_HOME/warden`); `WARDEN_CONFIG` names another config file. The devnet's own files stay in
`$WARDEN_HOME` (see warden.devnet.state).
"""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_path, user_config_path

APP_NAME = "warden"


def config_file() -> Path:
    """The profiles file: `WARDEN_CONFIG`, else `<user config dir>/warden/config.toml`."""
    explicit = os.environ.get("WARDEN_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    return user_config_path(APP_NAME, appauthor=False) / "config.toml"


def cache_dir() -> Path:
    """The user cache dir for warden (scanned logs); nothing in it is needed to be correct."""
    return user_cache_path(APP_NAME, appauthor=False)
