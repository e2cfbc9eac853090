"""Bring the whole local stack up and down: anvil, DstackKms + the demo DstackApp, the KMS, the auth
webhook, the control plane + dashboard, a PCCS serving the mock PKI's collateral, and the demo fleet (four
simulated nodes, three CVMs, each serving dstack's guest API on its own port and unix socket).

Everything persists under the devnet's home (chain state in `anvil-state.json`, inventory in
`warden.db`, node identities, PKI, KMS root keys), so a restarted devnet is the same devnet;
`devnet.json` says where everything is.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.deploy import deploy_kms
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer, signer_from_key
from warden.chain.tx import TxRequest, execute, require_success
from warden.devnet.anvil import (
    DEV_PRIVATE_KEY,
    Anvil,
    cache_dir_for,
    install_multicall,
    pid_alive,
    start_anvil,
    stop_pid,
    stop_pids,
)
from warden.devnet.cvms import BootReport, boot
from warden.devnet.fleet import (
    DEMO_APP,
    DEMO_DOCKER_COMPOSE,
    DEMO_NODES,
    OS_IMAGE_HASH,
    Paths,
    control_plane,
    demo_cvms,
    load_node,
    load_pki,
    release_manifest,
    seed_inventory,
    write_manifest,
)
from warden.devnet.state import DevnetState, chain_state_file, load_state, save_state, warden_home
from warden.errors import OperationFailed
from warden.fleet.store import TOKEN_PREFIX
from warden.tee.node import SimNode

DEFAULT_PORT = 8545
SERVICE_PORTS = {"kms": 8011, "webhook": 8012, "api": 8080, "pccs": 8081}  # 8081: Intel's PCCS default
GUEST_PORT = 8090  # the first CVM's guest API; the next CVMs take the next ports
SERVICES_TIMEOUT = 30.0


@dataclass
class Started:
    state: DevnetState
    anvil: Anvil | None  # None when the devnet was already running
    reused_contracts: bool
    services: subprocess.Popen[bytes] | None = None
    boots: list[BootReport] = field(default_factory=list)

    def stop(self) -> None:
        stop_processes(self.services, self.anvil)


def stop_processes(services: subprocess.Popen[bytes] | None, anvil: Anvil | None) -> None:
    """Stop the services and anvil (which saves the chain state on the way out), then clean up after anvil."""
    if services is not None and services.poll() is None:
        services.terminate()  # both at once: each takes a moment to shut down
    if anvil is not None and anvil.process is not None and anvil.process.poll() is None:
        anvil.process.terminate()
    if services is not None:
        try:
            services.wait(10)
        except subprocess.TimeoutExpired:
            services.kill()
            services.wait()
    if anvil is not None:
        anvil.stop()


def is_running(state: DevnetState) -> bool:
    """The recorded anvil and services are alive and the chain answers with the recorded chain id."""
    if not pid_alive(state.anvil_pid):
        return False
    if state.services_pid is not None and not pid_alive(state.services_pid):
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


def guest_service(cvm: str) -> str:
    return f"guest:{cvm}"


def service_urls(any_port: bool, services: dict[str, int] = SERVICE_PORTS) -> dict[str, str]:
    """A distinct port per service: the usual one when free (unless `any_port`), else one the OS picks.

    Every probe socket stays bound until all ports are chosen, so no two services get the same port.
    """
    probes: list[socket.socket] = []
    urls: dict[str, str] = {}
    try:
        for service, preferred in services.items():
            probe = socket.socket()
            probes.append(probe)
            try:
                probe.bind(("127.0.0.1", 0 if any_port else preferred))
            except OSError:
                probe.bind(("127.0.0.1", 0))
            urls[service] = f"http://127.0.0.1:{probe.getsockname()[1]}"
    finally:
        for probe in probes:
            probe.close()
    return urls


def up(
    *,
    home: Path | None = None,
    port: int = DEFAULT_PORT,
    block_time: float | None = None,
    detach: bool = False,
    note: Callable[[str], None] = lambda _: None,
) -> Started:
    """Start (or find running) the devnet; deploy and seed on first start, reuse everything after.

    `port=0` puts every service on a free port (tests, several devnets side by side).
    """
    home = home or warden_home()
    existing = load_state(home)
    if existing is not None and is_running(existing):
        return Started(existing, None, True)
    if existing is not None:
        _stop_recorded(existing, home)  # half-running leftovers of a crashed devnet
    home.mkdir(parents=True, exist_ok=True)
    any_port = port == 0
    if port and not port_is_free(port):
        note(f"port {port} is busy; using a free port instead")
        port = 0
    anvil = start_anvil(
        port=port, block_time=block_time, state_path=chain_state_file(home), log_path=home / "anvil.log",
        detach=detach,
    )  # fmt: skip
    services: subprocess.Popen[bytes] | None = None
    try:
        paths = Paths(home)
        pki = load_pki(paths)
        nodes = {name: load_node(paths, name) for name, _ in DEMO_NODES}
        chain = Chain.connect(anvil.url)
        signer = signer_from_key(DEV_PRIVATE_KEY, "devnet")
        try:
            install_multicall(chain)
            if existing is not None and chain.get_code(existing.kms):
                state = replace(existing, rpc_url=anvil.url, anvil_pid=anvil.pid, detached=detach)
            else:
                note("deploying DstackKms and the demo app …")
                state = _deploy(chain, signer, paths, nodes, anvil, detach, existing)
        finally:
            chain.close()
        guest_ports = {guest_service(name): GUEST_PORT + i for i, name in enumerate(state.cvms)}
        urls = service_urls(any_port, SERVICE_PORTS | guest_ports)
        state.kms_url, state.webhook_url, state.api_url = urls["kms"], urls["webhook"], urls["api"]
        state.pccs_url = urls["pccs"]
        if not _assign_guest_endpoints(paths, state, urls):
            note(f"{home} is too long a path for unix sockets: the CVMs' guest APIs are served over HTTP only")
        state.api_token = state.api_token or TOKEN_PREFIX + secrets.token_urlsafe(32)
        state.services_pid = None
        save_state(state, home)
        plane = control_plane(paths, state, pki)
        try:
            seed_inventory(plane, paths, state, nodes, pki, state.api_token)
        finally:
            plane.close()
        services = _start_services(home, detach)
        state.services_pid = services.pid
        state.foreground_pid = None if detach else os.getpid()
        save_state(state, home)
        _wait_for_services(state, services, home)
        note("booting the demo CVMs …")
        boots = [boot(paths, state, name) for name in state.cvms]
    except BaseException:
        stop_processes(services, anvil)
        raise
    return Started(state, anvil, existing is not None and state.kms == existing.kms, services, boots)


def _assign_guest_endpoints(paths: Paths, state: DevnetState, urls: dict[str, str]) -> bool:
    """Each CVM's guest API URL and socket path; False when the home is too deep for unix sockets."""
    sockets = True
    for name, cvm in state.cvms.items():
        cvm.guest_url = urls[guest_service(name)]
        path = paths.guest_socket(name)
        cvm.guest_socket = str(path) if path is not None else None
        sockets = sockets and path is not None
    return sockets


def _deploy(chain: Chain, signer: Signer, paths: Paths, nodes: dict[str, SimNode], anvil: Anvil, detach: bool,
            existing: DevnetState | None) -> DevnetState:  # fmt: skip
    """DstackKms with the devnet OS image; the demo app allowing its three CVMs' devices and compose hashes."""
    deployment = deploy_kms(chain, signer)
    kms = KmsRegistry(chain, deployment.kms)
    cvms = demo_cvms()
    hashes = [
        write_manifest(paths, name, release_manifest(cvm.platform, DEMO_DOCKER_COMPOSE)) for name, cvm in cvms.items()
    ]
    devices = [nodes[cvm.node].device_id for cvm in cvms.values()]
    (created,) = execute(chain, signer, [kms.deploy_app(signer.address, device_id=devices[0], compose_hash=hashes[0])])
    receipt = require_success(created).receipt
    assert receipt is not None
    app = kms.app_from_receipt(receipt)
    demo = AppAuth(chain, app)
    follow_up: list[TxRequest] = [kms.add_os_image(OS_IMAGE_HASH)]
    follow_up += [demo.add_device(d) for d in dict.fromkeys(devices[1:])]
    follow_up += [demo.add_compose_hash(h) for h in dict.fromkeys(hashes[1:]) if h != hashes[0]]
    for outcome in execute(chain, signer, follow_up):
        require_success(outcome)
    return DevnetState(
        rpc_url=anvil.url,
        chain_id=chain.chain_id,
        anvil_pid=anvil.pid,
        owner=signer.address,
        kms=deployment.kms,
        kms_implementation=deployment.kms_implementation,
        app_implementation=deployment.app_implementation,
        apps={DEMO_APP: app},
        detached=detach,
        api_token=existing.api_token if existing else None,
        kms_version=existing.kms_version if existing else "0.5.7",
        os_image_hash="0x" + OS_IMAGE_HASH.hex(),
        nodes=list(nodes),
        cvms=cvms,
    )


def _start_services(home: Path, detach: bool) -> subprocess.Popen[bytes]:
    log = open(home / "services.log", "ab")  # noqa: SIM115 - the child keeps writing after we return
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "warden.devnet.services", str(home)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=detach,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    finally:
        log.close()


def _wait_for_services(state: DevnetState, process: subprocess.Popen[bytes], home: Path) -> None:
    urls = [f"{state.kms_url}/health", f"{state.webhook_url}/", f"{state.api_url}/health"]
    urls += [f"{state.pccs_url}/tdx/certification/v4/qe/identity"] if state.pccs_url else []
    urls += [f"{cvm.guest_url}/Version" for cvm in state.cvms.values() if cvm.guest_url]  # GET: 405, it answers
    deadline = time.monotonic() + SERVICES_TIMEOUT
    with httpx.Client(timeout=2) as http:
        for url in urls:
            while True:
                if process.poll() is not None:
                    tail = (home / "services.log").read_text(errors="replace")[-800:].strip()
                    raise OperationFailed(f"the devnet services exited with code {process.returncode}: {tail}")
                try:
                    if http.get(url).status_code < 500:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise OperationFailed(
                        f"{url} did not answer within {SERVICES_TIMEOUT:g}s (see {home}/services.log)"
                    )
                time.sleep(0.05)


def _stop_recorded(state: DevnetState, home: Path) -> bool:
    stopped = False
    if state.foreground_pid is not None and state.foreground_pid != os.getpid():
        # a foreground `devnet up` stops its own children and exits 0 on SIGTERM
        stopped = stop_pid(state.foreground_pid, timeout=20)
    others = [state.anvil_pid] + ([state.services_pid] if state.services_pid is not None else [])
    stopped = stop_pids(others) or stopped
    shutil.rmtree(cache_dir_for(home / "anvil.log"), ignore_errors=True)
    return stopped


def down(home: Path | None = None) -> bool:
    """Stop a running devnet (its state is kept for the next `up`); False if none was running."""
    home = home or warden_home()
    state = load_state(home)
    if state is None:
        return False
    return _stop_recorded(state, home)


def require_state(home: Path | None = None) -> DevnetState:
    state = load_state(home)
    if state is None:
        raise OperationFailed("no devnet here: run `warden devnet up` (or `make devnet`) first")
    return state
