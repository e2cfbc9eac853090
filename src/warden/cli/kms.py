"""`warden kms …`: deploy a DstackKms, read it, manage its OS image allowlist."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from warden.chain.deploy import deploy_kms
from warden.chain.inputs import hex0x, parse_address, parse_bytes32
from warden.chain.kms import LazyKmsRegistry
from warden.chain.rpc import RpcClient
from warden.changes.asked import os_image_changes
from warden.cli.common import (
    CollateralOption,
    JsonOption,
    PccsUrlOption,
    RootCaOption,
    WorkersOption,
    emit,
    flag,
    lines,
    new_app,
    note,
    rows_table,
    stdout,
)
from warden.cli.connect import attestation_policy
from warden.cli.options import (
    ChainOptions,
    KmsOptions,
    ServiceOptions,
    SignerOptions,
    WriteOptions,
    add_and_remove,
    grouped,
)
from warden.errors import BadInput, OperationFailed

if TYPE_CHECKING:  # the web stack is imported only by `serve`
    from fastapi import FastAPI

app = new_app("kms", "Deploy and manage the DstackKms contract (app registry, factory, OS images).")
app.info.epilog = "\b\nExample: warden kms info --kms 0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
os_image_app = new_app("os-image", "The OS images apps and KMS instances may boot (addOsImageHash, removeOsImageHash).")
os_image_app.info.epilog = "\b\nExample: warden kms os-image list --kms 0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"
app.add_typer(os_image_app)

KMS_DECISION_TIMEOUT = 5.0  # seconds a key request waits for the chain before it is denied


def open_kms_for_service(network: ChainOptions, kms: KmsOptions, *, timeout: float) -> LazyKmsRegistry:
    """The DstackKms a long-running service asks (`kms serve`, `auth serve`): see `open_kms_source`."""
    address = kms.address()  # a malformed address is refused before any network call
    url, expected_chain_id = network.rpc()
    return open_kms_source(url, expected_chain_id, address, timeout=timeout)


def open_kms_source(url: str, expected_chain_id: int | None, address: str, *, timeout: float) -> LazyKmsRegistry:
    """The service starts even while the RPC is down: calls then fail at once (circuit breaker), every request
    is denied, and the contract is bound when the chain first answers. A wrong chain id or an address that
    holds no DstackKms, seen while the chain answers, still stops the command here (exit 2)."""
    # a timed-out call is already past the decision deadline (`timeout`): a second attempt would answer nobody
    rpc = RpcClient(url, timeout=timeout, fail_fast=True, retry_timeouts=False)
    source = LazyKmsRegistry(rpc, address, chain_id=expected_chain_id)
    try:
        source.get()
    except OperationFailed as exc:
        note(f"warning: the chain does not answer yet ({exc}); every request is denied until it does")
    except BaseException:
        rpc.close()
        raise
    return source


def service_log_config() -> dict[str, Any]:
    """uvicorn's logging plus warden's INFO lines (decisions, RPC outages); httpx and httpcore stay at WARNING
    because their request lines carry the full RPC URL (API keys live there)."""
    from uvicorn.config import LOGGING_CONFIG

    log_config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["warden"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    for name in ("httpx", "httpcore"):
        log_config["loggers"][name] = {"level": "WARNING"}
    return log_config


OwnerOption = Annotated[str | None, flag("--owner", "Owner of the new KMS (default: the signer).", metavar="ADDR")]


@app.command("deploy")
@grouped
def deploy(
    network: ChainOptions,
    signer: SignerOptions,
    owner: OwnerOption = None,
    json_out: JsonOption = False,
) -> None:
    """Deploy DstackApp and DstackKms implementations and the DstackKms proxy.

    \b
    Example: warden kms deploy --rpc-url http://127.0.0.1:8545 --json
    """
    owner_address = parse_address(owner, "owner address") if owner else None
    chain = network.connect()
    key = signer.signer(chain)
    result = deploy_kms(chain, key, owner_address)
    data = {
        "kms": result.kms,
        "app_implementation": result.app_implementation,
        "kms_implementation": result.kms_implementation,
        "owner": owner_address or key.address,
        "chain_id": result.chain_id,
    }

    emit(json_out, data, lines(f"DstackKms          {result.kms}", f"app implementation {result.app_implementation}",
                               f"owner              {data['owner']}  (chain {result.chain_id})",
                               f"next: warden app deploy --kms {result.kms}"))  # fmt: skip


@app.command("info")
@grouped
def info(kms: KmsOptions, network: ChainOptions, json_out: JsonOption = False) -> None:
    """Owner, app implementation, gateway app id and KMS keys of a DstackKms.

    \b
    Example: warden kms info --kms 0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0 --json
    """
    registry = network.kms(kms)
    details = registry.info()

    def human() -> None:
        for key, value in details.as_json().items():
            stdout.print(f"{key:<20} {value}")

    emit(json_out, details.as_json(), human)


@os_image_app.command("list")
@grouped
def os_image_list(kms: KmsOptions, network: ChainOptions, json_out: JsonOption = False) -> None:
    """Every OS image hash ever added (from the contract's events) and whether it is allowed now.

    \b
    Example: warden kms os-image list --json
    """
    registry = network.kms(kms)
    images = registry.os_images()
    data = {
        "kms": registry.address,
        "os_images": [
            {"os_image_hash": hex0x(i.os_image_hash), "allowed": i.allowed, "block": i.block, "tx": i.tx}
            for i in images
        ],
    }

    rows = [(hex0x(i.os_image_hash), "yes" if i.allowed else "no", str(i.block)) for i in images]
    empty = f"no OS image was ever added to {registry.address}"
    emit(json_out, data, rows_table(("os image hash", "allowed", "last change (block)"), rows, empty))


OsImagesArgument = Annotated[
    list[str], typer.Argument(metavar="HASH...", help="32-byte OS image hashes (hex, 0x optional).")
]


def _change_images(add: bool, hashes: OsImagesArgument, kms: KmsOptions, write: WriteOptions) -> None:
    images: list[tuple[bytes, str | None]] = [(parse_bytes32(h, "OS image hash"), None) for h in hashes]
    writer = write.writer()
    registry = write.network.kms(kms)
    writer.change(os_image_changes(registry, images, add=add), registry, what=f"{'add' if add else 'remove'} OS "
                  "images", recheck=f"warden kms os-image list --kms {registry.address}")  # fmt: skip


add_and_remove(
    os_image_app,
    _change_images,
    """Allow OS images (one transaction each, consecutive nonces; already-allowed ones are skipped).

    \b
    Example: warden kms os-image add --kms 0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0 \\
      0x607c15d1df14cb347808ca3f3152455baa0145d4d1302b1a6e51f187a61cee05
    """,
    """Disallow OS images (not-allowed ones are skipped).

    \b
    Example: warden kms os-image remove 0x607c15d1df14cb347808ca3f3152455baa0145d4d1302b1a6e51f187a61cee05
    """,
)


KeyDirOption = Annotated[
    Path | None,
    flag("--key-dir", "Root keys (0600), generated on first start [default: $WARDEN_HOME/kms].", metavar="DIR"),
]
CsrApiVersionsOption = Annotated[
    str, flag("--csr-api-versions", "SignCert versions accepted: 1,2; `1` acts like a 0.5.4 KMS.", metavar="LIST")
]


SERVE_SPEC_ENV = "WARDEN_KMS_SERVE_SPEC"  # how `kms serve --workers N` hands its resolved options to each worker


@dataclass(frozen=True)
class KmsServeSpec:
    """What a KMS process needs, resolved once by `kms serve` (each worker builds its own service from it;
    they share nothing but the root key files)."""

    rpc_url: str
    chain_id: int | None
    kms: str
    key_dir: str
    collateral: str | None
    root_ca: str | None
    csr_api_versions: tuple[int, ...]
    pccs_url: str | None = None

    def build(self, source: LazyKmsRegistry | None = None) -> tuple[FastAPI, Callable[[], None]]:
        """The KMS app (asking `source`, else a DstackKms source of its own), and how to release what it holds."""
        from warden.kms.authorization import Authorizer
        from warden.kms.keystore import load_or_generate_root_keys
        from warden.kms.server import create_kms_app
        from warden.kms.service import KmsService, KmsSettings

        policy = attestation_policy(
            Path(self.collateral) if self.collateral else None,
            Path(self.root_ca) if self.root_ca else None,
            self.pccs_url,
        )
        kms = source or open_kms_source(self.rpc_url, self.chain_id, self.kms, timeout=KMS_DECISION_TIMEOUT)
        keys, _ = load_or_generate_root_keys(Path(self.key_dir))
        authorizer = Authorizer(kms, timeout=KMS_DECISION_TIMEOUT)
        service = KmsService(keys, authorizer, policy, KmsSettings(csr_api_versions=self.csr_api_versions))

        def close() -> None:
            authorizer.close()
            kms.close()

        return create_kms_app(service), close


def kms_worker_app() -> FastAPI:
    """One worker of `kms serve --workers N` (uvicorn's factory): its own service from the parent's spec."""
    spec = KmsServeSpec(**json.loads(os.environ[SERVE_SPEC_ENV]))
    app, _ = spec.build()  # the process ends with the server: nothing else to release
    return app


@app.command("serve")
@grouped
def serve(
    service: ServiceOptions,
    key_dir: KeyDirOption = None,
    root_ca: RootCaOption = None,
    collateral: CollateralOption = None,
    pccs_url: PccsUrlOption = None,
    csr_api_versions: CsrApiVersionsOption = "1,2",
    workers: WorkersOption = None,
) -> None:
    """Serve the KMS (POST /prpc/KMS.<Method>): keys only for attested callers the chain allows.

    Quotes are verified against Intel's root (or --root-ca) with collateral from --collateral FILE, else
    fetched from --pccs-url (else dcap-qvl's default PCCS) and cached per platform until its nextUpdate; a
    PCCS that cannot answer means a refusal.

    \b
    Example: warden kms serve --port 8011 --pccs-url https://pccs.phala.network
    """
    # imported here: only `serve` needs the web stack, and every other command starts faster without it
    import uvicorn

    from warden.devnet.state import warden_home
    from warden.kms.keystore import load_or_generate_root_keys

    versions = _versions(csr_api_versions)
    processes = workers if workers is not None else (os.cpu_count() or 1)
    if processes < 1:
        raise BadInput(f"invalid --workers {processes}: at least 1")
    attestation_policy(collateral, root_ca, pccs_url)  # bad files or URLs are refused here, not in every worker
    url, chain_id = service.network.rpc()
    # asked once here, so a wrong chain id or a non-KMS address stops the command (exit 2) before any worker
    source = open_kms_source(url, chain_id, service.kms.address(), timeout=KMS_DECISION_TIMEOUT)
    directory = key_dir or warden_home() / "kms"
    keys, generated = load_or_generate_root_keys(directory)  # made once, before any worker reads them
    spec = KmsServeSpec(url, chain_id, source.address, str(directory), str(collateral) if collateral else None,
                        str(root_ca) if root_ca else None, versions, None if collateral else pccs_url)  # fmt: skip
    note(f"root keys {'generated' if generated else 'loaded'}: k256 public key 0x{keys.k256_public_key.hex()}")
    where = f"http://{service.host}:{service.port}"
    note(f"KMS for DstackKms {spec.kms} on {where} (CSR API {csr_api_versions}, {processes} worker(s)); Ctrl-C stops")
    options: dict[str, Any] = {"host": service.host, "port": service.port, "log_level": "warning",
                               "access_log": False, "log_config": service_log_config()}  # fmt: skip
    if processes > 1:
        source.close()
        os.environ[SERVE_SPEC_ENV] = json.dumps(asdict(spec))
        uvicorn.run("warden.cli.kms:kms_worker_app", factory=True, workers=processes, **options)
        return
    kms_app, close = spec.build(source)
    try:
        uvicorn.run(kms_app, **options)
    finally:
        close()


def _versions(text: str) -> tuple[int, ...]:
    try:
        versions = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise BadInput(f"invalid --csr-api-versions {text!r}: a comma-separated list of 1 and 2") from None
    if not versions or any(v not in (1, 2) for v in versions):
        raise BadInput(f"invalid --csr-api-versions {text!r}: a comma-separated list of 1 and 2")
    return versions
