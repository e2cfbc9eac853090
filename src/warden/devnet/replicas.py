"""Replicas placed with `warden cvms replicate` become devnet CVMs the first time they are booted.

`cvms replicate` records a replica in the control plane only (name, app, node, compose hash). The devnet
learns it from that inventory: the replica runs the manifest of the devnet CVM of the same app that has its
compose hash, on the node the inventory names, and is kept in devnet.json from then on.
"""

from __future__ import annotations

import hashlib

from warden.chain.inputs import hex0x
from warden.compose.hashing import compose_hash
from warden.devnet.fleet import WORKSPACE, Paths, read_manifest, write_manifest
from warden.devnet.state import DevnetCvm, DevnetState, save_state
from warden.errors import BadInput
from warden.fleet.store import CvmView, Fleet, NotFound


def placed_cvm(paths: Paths, name: str) -> CvmView | None:
    """The devnet inventory's CVM called `name` (None when there is none, or no inventory yet)."""
    if not paths.database.exists():
        return None
    fleet = Fleet.open(paths.database_url)
    try:
        found = fleet.find_cvm(fleet.workspace(WORKSPACE), name)
    except NotFound:
        return None
    finally:
        fleet.close()
    return found if found.name == name else None  # a UUID or instance id is not a devnet CVM's name


def adopt_replica(paths: Paths, state: DevnetState, name: str) -> DevnetCvm | None:
    """The inventory's CVM `name` as a devnet CVM (saved in devnet.json), or None if the inventory has none."""
    placed = placed_cvm(paths, name)
    if placed is None:
        return None
    apps = {address.lower(): app for app, address in state.apps.items()}
    app = apps.get(placed.app.lower())
    if app is None:
        raise BadInput(
            f"CVM {name} belongs to app {placed.app}, which the devnet did not deploy "
            f"(it runs {', '.join(state.apps)}): the devnet can boot replicas of its own CVMs only"
        )
    if placed.node not in state.nodes:
        raise BadInput(f"CVM {name} is placed on {placed.node}, which is not a devnet node ({', '.join(state.nodes)})")
    source = _source_of(paths, state, app, placed.compose_hash)
    if source is None:
        wanted = hex0x(placed.compose_hash) if placed.compose_hash else "none recorded"
        raise BadInput(
            f"CVM {name} runs compose hash {wanted}, which no devnet CVM of {app} runs: "
            "place it with `warden cvms replicate` from a devnet CVM"
        )
    write_manifest(paths, name, read_manifest(paths, source))
    template = state.cvms[source]
    instance_id = placed.instance_id or hashlib.sha256(name.encode()).digest()[:20]
    cvm = DevnetCvm(placed.node, app, template.platform, instance_id=instance_id.hex(),
                    guest_version=template.guest_version, fallback_to_v1=template.fallback_to_v1)  # fmt: skip
    state.cvms[name] = cvm
    save_state(state, paths.home)
    return cvm


def _source_of(paths: Paths, state: DevnetState, app: str, wanted: bytes | None) -> str | None:
    """The devnet CVM of `app` whose manifest has the compose hash `wanted`."""
    if wanted is None:
        return None
    for name, cvm in state.cvms.items():
        if cvm.app == app and paths.manifest(name).exists() and compose_hash(read_manifest(paths, name)) == wanted:
            return name
    return None
