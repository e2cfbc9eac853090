"""DstackKms against a real anvil: initializer, owner-only writes and their events, app registry and
factory, the KMS and app boot decisions, ERC-165, UUPS upgrade and two-step ownership."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest
from eth_utils import event_signature_to_log_topic, keccak

from tests.contracts.helpers import (
    UNAUTHORIZED,
    ZERO32,
    assert_reverts,
    deploy_proxy_outcome,
    events,
    named,
    padded,
    policy_changes,
    policy_id,
    receipt_logs,
    send_batch,
)
from tests.support.chain import deploy_app, send
from tests.support.chain import test_artifact as load_test_artifact
from warden.chain.abi import DecodedLog
from warden.chain.app import ZERO_ADDRESS, AppAuth, BootCheck
from warden.chain.artifacts import load_artifact
from warden.chain.connection import Chain, ContractReverted
from warden.chain.contract import Contract
from warden.chain.deploy import KmsDeployment, deploy_implementations, deploy_kms, deploy_proxy
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.chain.tx import simulate

DEVICE = b"\xd1" * 32
OTHER_DEVICE = b"\xd2" * 32
COMPOSE = b"\xc1" * 32
OTHER_COMPOSE = b"\xc2" * 32
OS_IMAGE = b"\x05" * 32
OTHER_OS_IMAGE = b"\x06" * 32
MR = b"\xa1" * 32
OTHER_MR = b"\xa2" * 32

K256 = bytes.fromhex("02" + "11" * 32)
KMS_INFO = {"k256Pubkey": K256, "caPubkey": b"ca public key", "quote": b"tdx quote", "eventlog": b"[{}]"}

APP_INIT6 = "initialize(address,bool,bool,bool,bytes32,bytes32)"
FACTORY5 = "deployAndRegisterApp(address,bool,bool,bytes32,bytes32)"


def kms_proxy(chain: Chain, owner: Signer, deployment: KmsDeployment, app_implementation: str) -> KmsRegistry:
    """Another DstackKms proxy on the same implementation, initialised with `app_implementation`."""
    artifact = load_artifact("DstackKms")
    init = artifact.abi.encode_call("initialize", owner.address, app_implementation)
    return KmsRegistry.open(chain, deploy_proxy(chain, owner, artifact, deployment.kms_implementation, init))


def kms_proxy_events(
    chain: Chain, owner: Signer, deployment: KmsDeployment, app_implementation: str
) -> tuple[KmsRegistry, list[DecodedLog]]:
    """The same, with the events its initializer emitted."""
    artifact = load_artifact("DstackKms")
    init = artifact.abi.encode_call("initialize", owner.address, app_implementation)
    outcome = deploy_proxy_outcome(chain, owner, artifact, deployment.kms_implementation, init)
    assert outcome.contract_address is not None
    kms = KmsRegistry.open(chain, outcome.contract_address)
    return kms, events(kms, outcome)


@pytest.fixture(scope="module")
def shared_deployment(chain: Chain, owner: Signer) -> KmsDeployment:
    """Implementations plus a KMS proxy for tests that only read or simulate (deployed once per module:
    every mined transaction costs a receipt poll)."""
    return deploy_kms(chain, owner)


@pytest.fixture(scope="module")
def shared_kms(chain: Chain, shared_deployment: KmsDeployment) -> KmsRegistry:
    return KmsRegistry.open(chain, shared_deployment.kms)


@pytest.fixture
def kms_deployment(chain: Chain, owner: Signer, shared_deployment: KmsDeployment) -> KmsDeployment:
    """A fresh KMS proxy per test, on the module's implementations (one transaction instead of three)."""
    kms = kms_proxy(chain, owner, shared_deployment, shared_deployment.app_implementation)
    return replace(shared_deployment, kms=kms.address)


@pytest.fixture(scope="module")
def next_impl(chain: Chain, owner: Signer) -> str:
    """A deployed DstackKmsNext implementation, the upgrade target."""
    (impl,) = deploy_implementations(chain, owner, [load_test_artifact("DstackKmsNext")])
    return impl


# -- initializer -----------------------------------------------------------------------------------


def test_initialize_sets_owner_and_app_implementation(
    chain: Chain, owner: Signer, shared_deployment: KmsDeployment
) -> None:
    impl = shared_deployment.app_implementation
    kms, logs = kms_proxy_events(chain, owner, shared_deployment, impl)
    assert kms.owner() == owner.address
    assert kms.call("appImplementation") == impl
    assert kms.info().app_implementation == impl
    assert kms.call("pendingOwner") == ZERO_ADDRESS
    assert named(logs, "AppImplementationSet") == [{"implementation": impl}]
    assert named(logs, "OwnershipTransferred") == [{"previousOwner": ZERO_ADDRESS, "newOwner": owner.address}]
    # the initializer runs inside the proxy's constructor, called by the deployer
    assert policy_changes(logs) == [(owner.address, policy_id("app-implementation"), padded(impl), True)]


def test_zero_app_implementation_leaves_the_factory_off_until_set(
    chain: Chain, owner: Signer, shared_deployment: KmsDeployment
) -> None:
    kms, logs = kms_proxy_events(chain, owner, shared_deployment, ZERO_ADDRESS)
    assert kms.call("appImplementation") == ZERO_ADDRESS
    assert kms.info().app_implementation is None
    assert named(logs, "AppImplementationSet") == []
    assert policy_changes(logs) == []
    assert_reverts(chain, owner, kms.deploy_app(owner.address), "DstackApp implementation not set")
    # checked before the owner
    assert_reverts(chain, owner, kms.deploy_app(ZERO_ADDRESS), "DstackApp implementation not set")

    send(chain, owner, kms.request("setAppImplementation", shared_deployment.app_implementation))
    app = deploy_app(chain, owner, kms, device_id=DEVICE)
    assert app.is_device_allowed(DEVICE)


def test_initialized_kms_cannot_be_initialized_again(
    chain: Chain, stranger: Signer, shared_deployment: KmsDeployment, shared_kms: KmsRegistry
) -> None:
    again = shared_kms.request("initialize", stranger.address, shared_deployment.app_implementation)
    assert_reverts(chain, stranger, again, "InvalidInitialization")
    impl = Contract(chain, shared_deployment.kms_implementation, shared_kms.abi)
    assert_reverts(
        chain,
        stranger,
        impl.request("initialize", stranger.address, shared_deployment.app_implementation),
        "InvalidInitialization",
    )
    assert shared_kms.owner() != stranger.address


# -- owner-only writes -----------------------------------------------------------------------------

OWNER_ONLY: list[tuple[str, tuple[Any, ...]]] = [
    ("setKmsInfo", (KMS_INFO,)),
    ("setKmsQuote", (b"quote",)),
    ("setKmsEventlog", (b"eventlog",)),
    ("setGatewayAppId", ("gateway",)),
    ("setAppImplementation", ("0x00000000000000000000000000000000DeaDBeef",)),
    ("addKmsAggregatedMr", (MR,)),
    ("removeKmsAggregatedMr", (MR,)),
    ("addKmsDevice", (DEVICE,)),
    ("removeKmsDevice", (DEVICE,)),
    ("addOsImageHash", (OS_IMAGE,)),
    ("removeOsImageHash", (OS_IMAGE,)),
    ("transferOwnership", ("0x00000000000000000000000000000000DeaDBeef",)),
    ("renounceOwnership", ()),
]


@pytest.mark.parametrize(("fn", "args"), OWNER_ONLY, ids=[fn for fn, _ in OWNER_ONLY])
def test_owner_only_functions_revert_for_a_stranger(
    chain: Chain, owner: Signer, stranger: Signer, shared_kms: KmsRegistry, fn: str, args: tuple[Any, ...]
) -> None:
    assert_reverts(chain, stranger, shared_kms.request(fn, *args), UNAUTHORIZED)
    # the same call goes through for the owner, so the refusal is about who asks
    assert simulate(chain, owner, [shared_kms.request(fn, *args)])


def test_stranger_cannot_upgrade(
    chain: Chain, owner: Signer, stranger: Signer, shared_kms: KmsRegistry, next_impl: str
) -> None:
    upgrade = shared_kms.request("upgradeToAndCall", next_impl, b"")
    assert_reverts(chain, stranger, upgrade, UNAUTHORIZED)
    assert simulate(chain, owner, [upgrade])


def test_set_kms_info(chain: Chain, owner: Signer, kms: KmsRegistry) -> None:
    logs = events(kms, send(chain, owner, kms.request("setKmsInfo", KMS_INFO)))
    assert kms.call("kmsInfo") == (K256, b"ca public key", b"tdx quote", b"[{}]")
    info = kms.info()
    assert (info.k256_pubkey, info.ca_pubkey) == (K256, b"ca public key")
    assert named(logs, "KmsInfoSet") == [{"k256Pubkey": K256}]
    assert policy_changes(logs) == [(owner.address, policy_id("kms-info"), bytes(keccak(K256)), True)]


def test_set_kms_quote_and_eventlog_change_only_their_field(chain: Chain, owner: Signer, kms: KmsRegistry) -> None:
    send(chain, owner, kms.request("setKmsInfo", KMS_INFO))
    send(chain, owner, kms.request("setKmsQuote", b"fresh quote"))
    assert kms.call("kmsInfo") == (K256, b"ca public key", b"fresh quote", b"[{}]")
    send(chain, owner, kms.request("setKmsEventlog", b"fresh eventlog"))
    assert kms.call("kmsInfo") == (K256, b"ca public key", b"fresh quote", b"fresh eventlog")


def test_set_gateway_app_id(chain: Chain, owner: Signer, kms: KmsRegistry) -> None:
    assert kms.call("gatewayAppId") == ""
    logs = events(kms, send(chain, owner, kms.request("setGatewayAppId", "gateway-app")))
    assert kms.call("gatewayAppId") == "gateway-app"
    assert kms.info().gateway_app_id == "gateway-app"
    assert named(logs, "GatewayAppIdSet") == [{"gatewayAppId": "gateway-app"}]
    assert policy_changes(logs) == [(owner.address, policy_id("gateway-app-id"), bytes(keccak(b"gateway-app")), True)]


def test_set_app_implementation(chain: Chain, owner: Signer, kms: KmsRegistry) -> None:
    (impl,) = deploy_implementations(chain, owner, [load_test_artifact("DstackAppNext")])
    logs = events(kms, send(chain, owner, kms.request("setAppImplementation", impl)))
    assert kms.call("appImplementation") == impl
    assert named(logs, "AppImplementationSet") == [{"implementation": impl}]
    assert policy_changes(logs) == [(owner.address, policy_id("app-implementation"), padded(impl), True)]
    # new apps come from the new implementation
    app = deploy_app(chain, owner, kms)
    assert app.implementation() == impl
    assert app.call("version") == 3


def test_set_app_implementation_refuses_zero(chain: Chain, owner: Signer, shared_kms: KmsRegistry) -> None:
    request = shared_kms.request("setAppImplementation", ZERO_ADDRESS)
    assert_reverts(chain, owner, request, "Invalid implementation address")


@dataclass(frozen=True)
class AllowList:
    add: str
    remove: str
    getter: str
    added: str
    removed: str
    arg: str
    policy: str
    value: bytes


ALLOW_LISTS = [
    AllowList(
        "addKmsAggregatedMr",
        "removeKmsAggregatedMr",
        "kmsAllowedAggregatedMrs",
        "KmsAggregatedMrAdded",
        "KmsAggregatedMrRemoved",
        "mrAggregated",
        "kms-aggregated-mr",
        MR,
    ),
    AllowList(
        "addKmsDevice",
        "removeKmsDevice",
        "kmsAllowedDeviceIds",
        "KmsDeviceAdded",
        "KmsDeviceRemoved",
        "deviceId",
        "kms-device",
        DEVICE,
    ),
    AllowList(
        "addOsImageHash",
        "removeOsImageHash",
        "allowedOsImages",
        "OsImageHashAdded",
        "OsImageHashRemoved",
        "osImageHash",
        "os-image",
        OS_IMAGE,
    ),
]


@pytest.mark.parametrize("lst", ALLOW_LISTS, ids=[lst.getter for lst in ALLOW_LISTS])
def test_add_and_remove_allow_list_entries(chain: Chain, owner: Signer, kms: KmsRegistry, lst: AllowList) -> None:
    assert kms.call(lst.getter, lst.value) is False
    added_outcome = send(chain, owner, kms.request(lst.add, lst.value))
    added = events(kms, added_outcome)
    assert kms.call(lst.getter, lst.value) is True
    assert named(added, lst.added) == [{lst.arg: lst.value}]
    assert policy_changes(added) == [(owner.address, policy_id(lst.policy), lst.value, True)]
    # unindexed, as in dstack: the value is in `data`, the signature is the only topic
    (raw,) = [log for log in receipt_logs(added_outcome) if len(log["topics"]) == 1]
    assert raw["topics"] == ["0x" + kms.abi.event_topic(lst.added).hex()]
    assert raw["data"] == "0x" + lst.value.hex()

    removed = events(kms, send(chain, owner, kms.request(lst.remove, lst.value)))
    assert kms.call(lst.getter, lst.value) is False
    assert named(removed, lst.removed) == [{lst.arg: lst.value}]
    assert policy_changes(removed) == [(owner.address, policy_id(lst.policy), lst.value, False)]


def test_os_images_lists_added_and_removed_hashes(chain: Chain, owner: Signer, kms: KmsRegistry) -> None:
    send_batch(chain, owner, [kms.add_os_image(OS_IMAGE), kms.add_os_image(OTHER_OS_IMAGE)])
    send(chain, owner, kms.remove_os_image(OS_IMAGE))
    assert {(i.os_image_hash, i.allowed) for i in kms.os_images()} == {
        (OS_IMAGE, False),
        (OTHER_OS_IMAGE, True),
    }


# -- app registry and factory ----------------------------------------------------------------------


def test_anyone_can_register_an_app(chain: Chain, stranger: Signer, third: Signer, kms: KmsRegistry) -> None:
    assert kms.is_app_registered(third.address) is False
    outcome = send(chain, stranger, kms.request("registerApp", third.address))
    assert kms.is_app_registered(third.address) is True
    logs = events(kms, outcome)
    assert named(logs, "AppRegistered") == [{"appId": third.address}]
    assert policy_changes(logs) == [(stranger.address, policy_id("registered-app"), padded(third.address), True)]
    topic = "0x" + event_signature_to_log_topic("AppRegistered(address)").hex()
    (raw,) = [log for log in receipt_logs(outcome) if log["topics"][0] == topic]
    assert raw["topics"] == [topic]  # appId is not indexed


def test_register_app_refuses_zero(chain: Chain, stranger: Signer, shared_kms: KmsRegistry) -> None:
    assert_reverts(chain, stranger, shared_kms.request("registerApp", ZERO_ADDRESS), "Invalid app ID")


@pytest.mark.parametrize(("disable_upgrades", "require_tcb", "allow_any"), [(True, True, False), (False, False, True)])
def test_factory_deploys_initialises_and_registers_an_app(
    chain: Chain,
    stranger: Signer,
    third: Signer,
    kms_deployment: KmsDeployment,
    kms: KmsRegistry,
    disable_upgrades: bool,
    require_tcb: bool,
    allow_any: bool,
) -> None:
    request = kms.deploy_app(
        third.address,
        disable_upgrades=disable_upgrades,
        require_tcb_up_to_date=require_tcb,
        allow_any_device=allow_any,
        device_id=DEVICE,
        compose_hash=COMPOSE,
    )
    outcome = send(chain, stranger, request)  # the factory is open to anyone
    assert outcome.receipt is not None
    app = AppAuth.open(chain, kms.app_from_receipt(outcome.receipt))

    logs = events(kms, outcome)
    # the deployer is whoever sent the transaction, not the new owner
    assert named(logs, "AppDeployedViaFactory") == [{"appId": app.address, "deployer": stranger.address}]
    assert named(logs, "AppRegistered") == [{"appId": app.address}]
    assert kms.is_app_registered(app.address)

    assert app.owner() == third.address
    assert app.pending_owner() is None
    assert app.call("upgradesDisabled") is disable_upgrades
    assert app.call("requireTcbUpToDate") is require_tcb
    assert app.allow_any_device() is allow_any
    assert app.is_device_allowed(DEVICE)
    assert app.is_compose_hash_allowed(COMPOSE)
    assert app.implementation() == kms_deployment.app_implementation
    assert named(events(app, outcome), "DeviceAdded") == [{"deviceId": DEVICE}]
    assert named(events(app, outcome), "ComposeHashAdded") == [{"composeHash": COMPOSE}]


@pytest.mark.parametrize("allow_any", [True, False])
def test_five_argument_factory_leaves_tcb_check_off(
    chain: Chain, owner: Signer, third: Signer, kms: KmsRegistry, allow_any: bool
) -> None:
    outcome = send(chain, owner, kms.request(FACTORY5, third.address, False, allow_any, DEVICE, COMPOSE))
    assert outcome.receipt is not None
    app = AppAuth.open(chain, kms.app_from_receipt(outcome.receipt))
    assert named(events(kms, outcome), "AppDeployedViaFactory") == [{"appId": app.address, "deployer": owner.address}]
    assert kms.is_app_registered(app.address)
    assert app.owner() == third.address
    assert app.call("requireTcbUpToDate") is False
    assert app.allow_any_device() is allow_any
    assert app.call("upgradesDisabled") is False
    assert app.is_device_allowed(DEVICE) and app.is_compose_hash_allowed(COMPOSE)


@pytest.mark.parametrize("factory", ["six", "five"])
def test_factory_refuses_zero_owner(chain: Chain, owner: Signer, shared_kms: KmsRegistry, factory: str) -> None:
    if factory == "six":
        request = shared_kms.deploy_app(ZERO_ADDRESS, device_id=DEVICE)
    else:
        request = shared_kms.request(FACTORY5, ZERO_ADDRESS, False, False, DEVICE, COMPOSE)
    assert_reverts(chain, owner, request, "Invalid owner address")


# -- boot decisions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Policies:
    """A KMS allowing OS_IMAGE, MR and DEVICE, with apps in every registry state."""

    kms: KmsRegistry
    apps: dict[str, str]


@pytest.fixture(scope="module")
def policies(chain: Chain, owner: Signer, third: Signer, shared_deployment: KmsDeployment) -> Policies:
    kms = KmsRegistry.open(chain, deploy_kms(chain, owner).kms)
    send(chain, owner, kms.add_os_image(OS_IMAGE))
    send(chain, owner, kms.request("addKmsAggregatedMr", MR))
    send(chain, owner, kms.request("addKmsDevice", DEVICE))
    send(chain, owner, kms.request("registerApp", third.address))  # an EOA
    app = deploy_app(chain, owner, kms, device_id=DEVICE, compose_hash=COMPOSE)
    tcb_app = deploy_app(chain, owner, kms, device_id=DEVICE, compose_hash=COMPOSE, require_tcb_up_to_date=True)
    # a working DstackApp that was never registered with this KMS
    artifact = load_artifact("DstackApp")
    init = artifact.abi.encode_call(APP_INIT6, owner.address, False, False, True, DEVICE, COMPOSE)
    unregistered = deploy_proxy(chain, owner, artifact, shared_deployment.app_implementation, init)
    return Policies(
        kms,
        {"app": app.address, "tcb-app": tcb_app.address, "eoa": third.address, "unregistered": unregistered},
    )


@pytest.mark.parametrize(
    ("tcb", "os_image", "mr", "device", "expected"),
    [
        ("UpToDate", OS_IMAGE, MR, DEVICE, (True, "")),
        # the KMS always requires an up-to-date TCB, and that is reported before anything else
        ("OutOfDate", OTHER_OS_IMAGE, OTHER_MR, OTHER_DEVICE, (False, "TCB status is not up to date")),
        ("OutOfDate", OS_IMAGE, MR, DEVICE, (False, "TCB status is not up to date")),
        ("UpToDate", OTHER_OS_IMAGE, OTHER_MR, OTHER_DEVICE, (False, "OS image is not allowed")),
        ("UpToDate", OS_IMAGE, OTHER_MR, OTHER_DEVICE, (False, "Aggregated MR not allowed")),
        ("UpToDate", OS_IMAGE, MR, OTHER_DEVICE, (False, "KMS is not allowed to boot on this device")),
    ],
)
def test_is_kms_allowed_decision_order(
    policies: Policies, tcb: str, os_image: bytes, mr: bytes, device: bytes, expected: tuple[bool, str]
) -> None:
    boot = BootCheck(ZERO_ADDRESS, ZERO32, device, mr_aggregated=mr, os_image_hash=os_image, tcb_status=tcb)
    assert policies.kms.is_kms_allowed(boot) == expected


@pytest.mark.parametrize(
    ("app", "os_image", "compose", "device", "tcb", "expected"),
    [
        ("app", OS_IMAGE, COMPOSE, DEVICE, "UpToDate", (True, "")),
        ("unregistered", OTHER_OS_IMAGE, COMPOSE, DEVICE, "UpToDate", (False, "App not registered")),
        ("app", OTHER_OS_IMAGE, OTHER_COMPOSE, OTHER_DEVICE, "UpToDate", (False, "OS image is not allowed")),
        ("eoa", OTHER_OS_IMAGE, COMPOSE, DEVICE, "UpToDate", (False, "OS image is not allowed")),
        ("eoa", OS_IMAGE, COMPOSE, DEVICE, "UpToDate", (False, "App not deployed or invalid address")),
        # then the app's own contract decides
        ("app", OS_IMAGE, OTHER_COMPOSE, OTHER_DEVICE, "UpToDate", (False, "Compose hash not allowed")),
        ("app", OS_IMAGE, COMPOSE, OTHER_DEVICE, "UpToDate", (False, "Device not allowed")),
        ("app", OS_IMAGE, COMPOSE, DEVICE, "OutOfDate", (True, "")),
        ("tcb-app", OS_IMAGE, COMPOSE, DEVICE, "OutOfDate", (False, "TCB status is not up to date")),
        ("tcb-app", OS_IMAGE, COMPOSE, DEVICE, "UpToDate", (True, "")),
    ],
)
def test_is_app_allowed_decision_order(
    policies: Policies,
    app: str,
    os_image: bytes,
    compose: bytes,
    device: bytes,
    tcb: str,
    expected: tuple[bool, str],
) -> None:
    boot = BootCheck(policies.apps[app], compose, device, os_image_hash=os_image, tcb_status=tcb)
    assert policies.kms.is_app_allowed(boot) == expected


def test_unregistered_app_allows_itself_but_not_through_the_kms(policies: Policies) -> None:
    boot = BootCheck(policies.apps["unregistered"], COMPOSE, DEVICE, os_image_hash=OS_IMAGE)
    assert AppAuth.open(policies.kms.chain, policies.apps["unregistered"]).is_app_allowed(boot) == (True, "")
    assert policies.kms.is_app_allowed(boot) == (False, "App not registered")


# -- ERC-165 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interface_id", "supported"),
    [("1e079198", True), ("01ffc9a7", True), ("8fd37527", False), ("ffffffff", False)],
)
def test_supports_interface(shared_kms: KmsRegistry, interface_id: str, supported: bool) -> None:
    assert shared_kms.call("supportsInterface", bytes.fromhex(interface_id)) is supported


# -- upgrade and ownership -------------------------------------------------------------------------


def test_owner_upgrade_keeps_state(
    chain: Chain,
    owner: Signer,
    third: Signer,
    kms_deployment: KmsDeployment,
    kms: KmsRegistry,
    next_impl: str,
) -> None:
    *_, deployed = send_batch(
        chain,
        owner,
        [
            kms.request("setKmsInfo", KMS_INFO),
            kms.request("setGatewayAppId", "gateway-app"),
            kms.add_os_image(OS_IMAGE),
            kms.request("addKmsAggregatedMr", MR),
            kms.request("addKmsDevice", DEVICE),
            kms.request("transferOwnership", third.address),
            kms.deploy_app(owner.address, device_id=DEVICE, compose_hash=COMPOSE),
        ],
    )
    app = AppAuth.open(chain, kms.app_from_receipt(deployed.receipt or {}))
    next_view = Contract(chain, kms.address, load_test_artifact("DstackKmsNext").abi)
    with pytest.raises(ContractReverted):
        next_view.call("nextVersion")

    logs = events(kms, send(chain, owner, kms.request("upgradeToAndCall", next_impl, b"")))

    assert next_view.call("nextVersion") == 2
    assert kms.implementation() == next_impl != kms_deployment.kms_implementation
    assert named(logs, "Upgraded") == [{"implementation": next_impl}]
    assert policy_changes(logs) == [(owner.address, policy_id("implementation-upgrade"), padded(next_impl), True)]
    assert kms.owner() == owner.address
    assert kms.call("pendingOwner") == third.address
    assert kms.call("kmsInfo") == tuple(KMS_INFO.values())
    assert kms.call("gatewayAppId") == "gateway-app"
    assert kms.call("appImplementation") == kms_deployment.app_implementation
    assert kms.is_app_registered(app.address)
    boot = BootCheck(app.address, COMPOSE, DEVICE, mr_aggregated=MR, os_image_hash=OS_IMAGE)
    assert kms.is_app_allowed(boot) == (True, "")
    assert kms.is_kms_allowed(boot) == (True, "")


def test_two_step_ownership_transfer(
    chain: Chain, owner: Signer, stranger: Signer, third: Signer, kms: KmsRegistry
) -> None:
    send(chain, owner, kms.request("transferOwnership", stranger.address))
    send(chain, owner, kms.request("transferOwnership", third.address))  # re-targeted before acceptance
    assert kms.owner() == owner.address
    assert kms.call("pendingOwner") == third.address
    assert_reverts(chain, stranger, kms.request("acceptOwnership"), UNAUTHORIZED)

    logs = events(kms, send(chain, third, kms.request("acceptOwnership")))
    assert named(logs, "OwnershipTransferred") == [{"previousOwner": owner.address, "newOwner": third.address}]
    assert kms.owner() == third.address
    assert kms.call("pendingOwner") == ZERO_ADDRESS
    assert_reverts(chain, owner, kms.add_os_image(OS_IMAGE), UNAUTHORIZED)
    send(chain, third, kms.add_os_image(OS_IMAGE))
    assert kms.is_os_image_allowed(OS_IMAGE)
