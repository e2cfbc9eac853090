"""Bring the local stack up and down: anvil, DstackKms, the demo DstackApp (later: KMS, nodes, dashboard).

The chain state is kept in `anvil-state.json`, so a restarted devnet has the same contracts at the
same addresses; `devnet.json` says where everything is.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.signer import signer_from_key
from warden.chain.tx import execute, require_success
from warden.devnet.anvil import DEV_PRIVATE_KEY, Anvil, cache_dir_for, pid_alive, start_anvil, stop_pid
from warden.devnet.state import DevnetState, chain_state_file, load_state, save_state, warden_home
from warden.errors import OperationFailed

DEMO_APP = "shared-key-demo"
DEFAULT_PORT = 8545


@dataclass
class Started:
    state: DevnetState
    anvil: Anvil | None  # None when the devnet was already running
    reused_contracts: bool


def is_running(state: DevnetState) -> bool:
    """The recorded anvil is alive and answers with the recorded chain id."""
    if not pid_alive(state.anvil_pid):
        return False
    try:
        chain = Chain.connect(state.rpc_url, expected_chain_id=state.chain_id, timeout=2, retries=0)
    except Exception:
        return False
    chain.close()
    return True


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def up(
    *,
    home: Path | None = None,
    port: int = DEFAULT_PORT,
    block_time: float | None = None,
    detach: bool = False,
    note: Callable[[str], None] = lambda _: None,
) -> Started:
    """Start (or find running) the devnet; deploy the contracts on first start, reuse them after."""
    home = home or warden_home()
    existing = load_state(home)
    if existing is not None and is_running(existing):
        return Started(existing, None, True)
    home.mkdir(parents=True, exist_ok=True)
    if port and not port_is_free(port):
        note(f"port {port} is busy; using a free port instead")
        port = 0
    anvil = start_anvil(
        port=port,
        block_time=block_time,
        state_path=chain_state_file(home),
        log_path=home / "anvil.log",
        detach=detach,
    )
    try:
        chain = Chain.connect(anvil.url)
        signer = signer_from_key(DEV_PRIVATE_KEY, "devnet")
        if existing is not None and chain.get_code(existing.kms):
            state = replace(existing, rpc_url=anvil.url, anvil_pid=anvil.pid, detached=detach)
            reused = True
        else:
            note("deploying DstackKms and the demo app …")
            deployment = deploy_kms(chain, signer)
            kms = KmsRegistry(chain, deployment.kms)
            (outcome,) = execute(chain, signer, [kms.deploy_app(signer.address)])
            receipt = require_success(outcome).receipt
            assert receipt is not None
            state = DevnetState(
                rpc_url=anvil.url,
                chain_id=chain.chain_id,
                anvil_pid=anvil.pid,
                owner=signer.address,
                kms=deployment.kms,
                kms_implementation=deployment.kms_implementation,
                app_implementation=deployment.app_implementation,
                apps={DEMO_APP: kms.app_from_receipt(receipt)},
                detached=detach,
            )
            reused = False
        chain.close()
        save_state(state, home)
    except BaseException:
        anvil.stop()
        raise
    return Started(state, anvil, reused)


def down(home: Path | None = None) -> bool:
    """Stop a running devnet (its chain state is kept for the next `up`); False if none was running."""
    home = home or warden_home()
    state = load_state(home)
    if state is None:
        return False
    stopped = stop_pid(state.anvil_pid)
    shutil.rmtree(cache_dir_for(home / "anvil.log"), ignore_errors=True)
    return stopped


def require_state(home: Path | None = None) -> DevnetState:
    state = load_state(home)
    if state is None:
        raise OperationFailed("no devnet here: run `warden devnet up` (or `make devnet`) first")
    return state
