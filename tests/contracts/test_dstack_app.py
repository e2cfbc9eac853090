"""DstackApp against a real anvil: initializers, owner-only writes and their events, the boot decision,
ERC-165 ids, UUPS upgrades and two-step ownership."""

from __future__ import annotations

from typing import Any, cast

import pytest
from eth_typing import ABIFunction
from eth_utils import abi_to_signature, event_signature_to_log_topic, function_abi_to_4byte_selector

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

INIT5 = "initialize(address,bool,bool,bytes32,bytes32)"
INIT6 = "initialize(address,bool,bool,bool,bytes32,bytes32)"


def proxied_app(chain: Chain, signer: Signer, impl: str, init_sig: str, *args: Any) -> AppAuth:
    """A DstackApp proxy deployed directly (not through the KMS factory), initialised with `init_sig`."""
    artifact = load_artifact("DstackApp")
    address = deploy_proxy(chain, signer, artifact, impl, artifact.abi.encode_call(init_sig, *args))
    return AppAuth.open(chain, address)


def proxied_app_events(
    chain: Chain, signer: Signer, impl: str, init_sig: str, *args: Any
) -> tuple[AppAuth, list[DecodedLog]]:
    """The same, returning the events the initializer emitted as well."""
    artifact = load_artifact("DstackApp")
    init = artifact.abi.encode_call(init_sig, *args)
    outcome = deploy_proxy_outcome(chain, signer, artifact, impl, init)
    assert outcome.contract_address is not None
    app = AppAuth.open(chain, outcome.contract_address)
    return app, events(app, outcome)


# Contracts are deployed once per module where a test only reads or simulates, and per test where it
# writes: every mined transaction costs a receipt poll.


@pytest.fixture(scope="module")
def factory(chain: Chain, owner: Signer) -> KmsDeployment:
    """A KMS used only as the app factory (and for its DstackApp implementation)."""
    return deploy_kms(chain, owner)


@pytest.fixture(scope="module")
def kms(chain: Chain, factory: KmsDeployment) -> KmsRegistry:
    return KmsRegistry.open(chain, factory.kms)


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    """A fresh app owned by `owner`, with nothing allowed."""
    return deploy_app(chain, owner, kms)


@pytest.fixture(scope="module")
def shared_app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    """An app owned by `owner` for tests that do not change it."""
    return deploy_app(chain, owner, kms)


@pytest.fixture(scope="module")
def next_impl(chain: Chain, owner: Signer) -> str:
    """A deployed DstackAppNext implementation (version 3), the upgrade target."""
    (impl,) = deploy_implementations(chain, owner, [load_test_artifact("DstackAppNext")])
    return impl


# -- initializers ----------------------------------------------------------------------------------


def test_five_argument_initializer_leaves_tcb_check_off(
    chain: Chain, owner: Signer, third: Signer, factory: KmsDeployment
) -> None:
    app = proxied_app(chain, owner, factory.app_implementation, INIT5, third.address, False, True, DEVICE, COMPOSE)
    assert app.owner() == third.address
    assert app.call("requireTcbUpToDate") is False
    assert app.allow_any_device() is True
    assert app.call("upgradesDisabled") is False
    assert app.is_device_allowed(DEVICE)
    assert app.is_compose_hash_allowed(COMPOSE)
    # an outdated TCB is not a reason to refuse when the flag is off
    boot = BootCheck(app.address, COMPOSE, OTHER_DEVICE, tcb_status="OutOfDate")
    assert app.is_app_allowed(boot) == (True, "")


@pytest.mark.parametrize("require_tcb", [True, False])
def test_six_argument_initializer_sets_every_flag(
    chain: Chain, owner: Signer, factory: KmsDeployment, require_tcb: bool
) -> None:
    app = proxied_app(
        chain,
        owner,
        factory.app_implementation,
        INIT6,
        owner.address,
        True,
        require_tcb,
        False,
        DEVICE,
        COMPOSE,
    )
    assert app.call("requireTcbUpToDate") is require_tcb
    assert app.allow_any_device() is False
    assert app.call("upgradesDisabled") is True
    assert app.info().require_tcb_up_to_date is require_tcb
    outdated = BootCheck(app.address, COMPOSE, DEVICE, tcb_status="OutOfDate")
    expected = (False, "TCB status is not up to date") if require_tcb else (True, "")
    assert app.is_app_allowed(outdated) == expected


def test_initial_device_and_compose_hash_are_added_with_events(
    chain: Chain, owner: Signer, factory: KmsDeployment
) -> None:
    app, logs = proxied_app_events(
        chain, owner, factory.app_implementation, INIT6, owner.address, False, False, False, DEVICE, COMPOSE
    )
    assert app.is_device_allowed(DEVICE)
    assert app.is_compose_hash_allowed(COMPOSE)
    assert app.is_app_allowed(BootCheck(app.address, COMPOSE, DEVICE)) == (True, "")
    assert [e.args for e in logs if e.event == "DeviceAdded"] == [{"deviceId": DEVICE}]
    assert [e.args for e in logs if e.event == "ComposeHashAdded"] == [{"composeHash": COMPOSE}]
    policies = {
        (bytes(e.args["policy"]), bytes(e.args["value"]), e.args["enabled"]) for e in logs if e.event == "PolicyChanged"
    }
    assert policies == {(policy_id("device"), DEVICE, True), (policy_id("compose-hash"), COMPOSE, True)}


def test_zero_initial_device_and_compose_hash_add_nothing(chain: Chain, owner: Signer, factory: KmsDeployment) -> None:
    app, logs = proxied_app_events(
        chain, owner, factory.app_implementation, INIT5, owner.address, False, False, ZERO32, ZERO32
    )
    assert not app.is_device_allowed(ZERO32)
    assert not app.is_compose_hash_allowed(ZERO32)
    assert app.is_app_allowed(BootCheck(app.address, ZERO32, ZERO32)) == (False, "Compose hash not allowed")
    assert named(logs, "Initialized") == [{"version": 1}]  # the logs are there, but nothing was added
    for event in ("DeviceAdded", "ComposeHashAdded", "PolicyChanged"):
        assert named(logs, event) == []


@pytest.mark.parametrize("init_sig", [INIT5, INIT6])
def test_zero_owner_is_refused(chain: Chain, owner: Signer, factory: KmsDeployment, init_sig: str) -> None:
    flags = (False,) * (init_sig.count("bool"))
    with pytest.raises(ContractReverted, match="invalid owner address"):
        proxied_app(chain, owner, factory.app_implementation, init_sig, ZERO_ADDRESS, *flags, DEVICE, COMPOSE)


@pytest.mark.parametrize("init_sig", [INIT5, INIT6])
def test_initialized_proxy_cannot_be_initialized_again(
    chain: Chain, owner: Signer, stranger: Signer, shared_app: AppAuth, init_sig: str
) -> None:
    app = shared_app
    flags = (False,) * (init_sig.count("bool"))
    for signer in (owner, stranger):
        request = app.request(init_sig, signer.address, *flags, DEVICE, COMPOSE)
        assert_reverts(chain, signer, request, "InvalidInitialization")


def test_implementation_itself_cannot_be_initialized(chain: Chain, stranger: Signer, factory: KmsDeployment) -> None:
    impl = Contract(chain, factory.app_implementation, load_artifact("DstackApp").abi)
    request = impl.request(INIT6, stranger.address, False, False, True, DEVICE, COMPOSE)
    assert_reverts(chain, stranger, request, "InvalidInitialization")
    assert impl.call("owner") == ZERO_ADDRESS


# -- owner-only writes -----------------------------------------------------------------------------

OWNER_ONLY = [
    "addComposeHash",
    "removeComposeHash",
    "addDevice",
    "removeDevice",
    "setAllowAnyDevice",
    "setRequireTcbUpToDate",
    "disableUpgrades",
    "upgradeToAndCall",
    "transferOwnership",
    "renounceOwnership",
]


def owner_only_args(fn: str, impl: str, new_owner: str) -> tuple[Any, ...]:
    return {
        "addComposeHash": (COMPOSE,),
        "removeComposeHash": (COMPOSE,),
        "addDevice": (DEVICE,),
        "removeDevice": (DEVICE,),
        "setAllowAnyDevice": (True,),
        "setRequireTcbUpToDate": (True,),
        "disableUpgrades": (),
        "upgradeToAndCall": (impl, b""),
        "transferOwnership": (new_owner,),
        "renounceOwnership": (),
    }[fn]


@pytest.mark.parametrize("fn", OWNER_ONLY)
def test_owner_only_functions_revert_for_a_stranger(
    chain: Chain, owner: Signer, stranger: Signer, factory: KmsDeployment, shared_app: AppAuth, fn: str
) -> None:
    app = shared_app
    args = owner_only_args(fn, factory.app_implementation, stranger.address)
    assert_reverts(chain, stranger, app.request(fn, *args), UNAUTHORIZED)
    # the same call goes through for the owner, so the refusal is about who asks
    assert simulate(chain, owner, [app.request(fn, *args)])


def test_add_and_remove_compose_hash(chain: Chain, owner: Signer, app: AppAuth) -> None:
    added = events(app, send(chain, owner, app.add_compose_hash(COMPOSE)))
    assert app.is_compose_hash_allowed(COMPOSE)
    assert named(added, "ComposeHashAdded") == [{"composeHash": COMPOSE}]
    assert policy_changes(added) == [(owner.address, policy_id("compose-hash"), COMPOSE, True)]

    removed = events(app, send(chain, owner, app.remove_compose_hash(COMPOSE)))
    assert not app.is_compose_hash_allowed(COMPOSE)
    assert named(removed, "ComposeHashRemoved") == [{"composeHash": COMPOSE}]
    assert policy_changes(removed) == [(owner.address, policy_id("compose-hash"), COMPOSE, False)]


def test_add_and_remove_device(chain: Chain, owner: Signer, app: AppAuth) -> None:
    added = events(app, send(chain, owner, app.add_device(DEVICE)))
    assert app.is_device_allowed(DEVICE)
    assert named(added, "DeviceAdded") == [{"deviceId": DEVICE}]
    assert policy_changes(added) == [(owner.address, policy_id("device"), DEVICE, True)]

    removed = events(app, send(chain, owner, app.remove_device(DEVICE)))
    assert not app.is_device_allowed(DEVICE)
    assert named(removed, "DeviceRemoved") == [{"deviceId": DEVICE}]
    assert policy_changes(removed) == [(owner.address, policy_id("device"), DEVICE, False)]


@pytest.mark.parametrize(
    ("fn", "event_sig", "value"),
    [
        ("addDevice", "DeviceAdded(bytes32)", DEVICE),
        ("removeDevice", "DeviceRemoved(bytes32)", DEVICE),
        ("addComposeHash", "ComposeHashAdded(bytes32)", COMPOSE),
        ("removeComposeHash", "ComposeHashRemoved(bytes32)", COMPOSE),
    ],
)
def test_allowlist_events_keep_the_unindexed_dstack_log_shape(
    chain: Chain, owner: Signer, app: AppAuth, fn: str, event_sig: str, value: bytes
) -> None:
    """Existing dstack decoders read the id from `data`, with the event signature as the only topic."""
    outcome = send(chain, owner, app.request(fn, value))
    topic = "0x" + event_signature_to_log_topic(event_sig).hex()
    raw = [log for log in receipt_logs(outcome) if log["topics"][0] == topic]
    assert len(raw) == 1
    assert raw[0]["topics"] == [topic]
    assert raw[0]["data"] == "0x" + value.hex()


@pytest.mark.parametrize("enabled", [True, False])
def test_set_allow_any_device(chain: Chain, owner: Signer, app: AppAuth, enabled: bool) -> None:
    if not enabled:
        send(chain, owner, app.set_allow_any_device(True))
    logs = events(app, send(chain, owner, app.set_allow_any_device(enabled)))
    assert app.allow_any_device() is enabled
    assert named(logs, "AllowAnyDeviceSet") == [{"allowAny": enabled}]
    assert policy_changes(logs) == [(owner.address, policy_id("allow-any-device"), ZERO32, enabled)]


@pytest.mark.parametrize("enabled", [True, False])
def test_set_require_tcb_up_to_date(chain: Chain, owner: Signer, app: AppAuth, enabled: bool) -> None:
    if not enabled:
        send(chain, owner, app.set_require_tcb_up_to_date(True))
    logs = events(app, send(chain, owner, app.set_require_tcb_up_to_date(enabled)))
    assert app.call("requireTcbUpToDate") is enabled
    assert named(logs, "RequireTcbUpToDateSet") == [{"requireUpToDate": enabled}]
    assert policy_changes(logs) == [(owner.address, policy_id("require-tcb-up-to-date"), ZERO32, enabled)]


def test_disable_upgrades(chain: Chain, owner: Signer, app: AppAuth) -> None:
    assert app.call("upgradesDisabled") is False
    logs = events(app, send(chain, owner, app.disable_upgrades()))
    assert app.call("upgradesDisabled") is True
    assert named(logs, "UpgradesDisabled") == [{}]
    assert policy_changes(logs) == [(owner.address, policy_id("upgrades-disabled"), ZERO32, True)]


# -- the boot decision -----------------------------------------------------------------------------


def deploy_strict_app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    """Requires an up-to-date TCB, allows COMPOSE on DEVICE only."""
    return deploy_app(chain, owner, kms, device_id=DEVICE, compose_hash=COMPOSE, require_tcb_up_to_date=True)


@pytest.fixture
def strict_app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    return deploy_strict_app(chain, owner, kms)


@pytest.fixture(scope="module")
def shared_strict_app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    return deploy_strict_app(chain, owner, kms)


@pytest.mark.parametrize(
    ("compose_hash", "device_id", "tcb_status", "expected"),
    [
        (COMPOSE, DEVICE, "UpToDate", (True, "")),
        # every check fails: the TCB is reported first
        (OTHER_COMPOSE, OTHER_DEVICE, "OutOfDate", (False, "TCB status is not up to date")),
        (COMPOSE, DEVICE, "OutOfDate", (False, "TCB status is not up to date")),
        (COMPOSE, DEVICE, "", (False, "TCB status is not up to date")),
        (COMPOSE, DEVICE, "uptodate", (False, "TCB status is not up to date")),
        # compose hash before device
        (OTHER_COMPOSE, OTHER_DEVICE, "UpToDate", (False, "Compose hash not allowed")),
        (COMPOSE, OTHER_DEVICE, "UpToDate", (False, "Device not allowed")),
    ],
)
def test_is_app_allowed_decision_order(
    shared_strict_app: AppAuth,
    compose_hash: bytes,
    device_id: bytes,
    tcb_status: str,
    expected: tuple[bool, str],
) -> None:
    boot = BootCheck(shared_strict_app.address, compose_hash, device_id, tcb_status=tcb_status)
    assert shared_strict_app.is_app_allowed(boot) == expected


def test_tcb_status_is_ignored_when_not_required(chain: Chain, owner: Signer, kms: KmsRegistry) -> None:
    app = deploy_app(chain, owner, kms, device_id=DEVICE, compose_hash=COMPOSE)
    boot = BootCheck(app.address, COMPOSE, DEVICE, tcb_status="OutOfDate")
    assert app.is_app_allowed(boot) == (True, "")


def test_allow_any_device_admits_unknown_devices(chain: Chain, owner: Signer, strict_app: AppAuth) -> None:
    unknown = BootCheck(strict_app.address, COMPOSE, OTHER_DEVICE)
    assert strict_app.is_app_allowed(unknown) == (False, "Device not allowed")
    send(chain, owner, strict_app.set_allow_any_device(True))
    assert strict_app.is_app_allowed(unknown) == (True, "")
    # the compose hash and TCB checks still apply
    assert strict_app.is_app_allowed(BootCheck(strict_app.address, OTHER_COMPOSE, OTHER_DEVICE)) == (
        False,
        "Compose hash not allowed",
    )
    assert strict_app.is_app_allowed(BootCheck(strict_app.address, COMPOSE, OTHER_DEVICE, tcb_status="X")) == (
        False,
        "TCB status is not up to date",
    )


def test_removed_entries_stop_being_allowed(chain: Chain, owner: Signer, strict_app: AppAuth) -> None:
    boot = BootCheck(strict_app.address, COMPOSE, DEVICE)
    assert strict_app.is_app_allowed(boot) == (True, "")
    send(chain, owner, strict_app.remove_device(DEVICE))
    assert strict_app.is_app_allowed(boot) == (False, "Device not allowed")
    send(chain, owner, strict_app.remove_compose_hash(COMPOSE))
    assert strict_app.is_app_allowed(boot) == (False, "Compose hash not allowed")


def test_version_is_two(shared_app: AppAuth) -> None:
    assert shared_app.call("version") == 2
    assert shared_app.info().version == 2


# -- ERC-165 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interface_id", "supported"),
    [
        ("1e079198", True),  # IAppAuth
        ("8fd37527", True),  # IAppAuthBasicManagement
        ("01ffc9a7", True),  # ERC-165
        ("ffffffff", False),  # must be false by ERC-165
        ("12345678", False),
    ],
)
def test_supports_interface(shared_app: AppAuth, interface_id: str, supported: bool) -> None:
    assert shared_app.call("supportsInterface", bytes.fromhex(interface_id)) is supported


def test_interface_ids_match_the_abi_selectors() -> None:
    """The ids dstack's KMS and tooling look for follow from the functions the ABI really has."""
    abi = load_artifact("DstackApp").abi

    def entry(name: str) -> ABIFunction:
        return cast(ABIFunction, abi.function(name))

    def sel(name: str) -> int:
        return int.from_bytes(function_abi_to_4byte_selector(entry(name)), "big")

    assert sel("isAppAllowed") == 0x1E079198
    assert abi_to_signature(entry("isAppAllowed")) == (
        "isAppAllowed((address,bytes32,address,bytes32,bytes32,bytes32,bytes32,string,string[]))"
    )
    management = sel("addComposeHash") ^ sel("removeComposeHash") ^ sel("addDevice") ^ sel("removeDevice")
    assert management == 0x8FD37527
    assert sel("supportsInterface") == 0x01FFC9A7


# -- upgrades --------------------------------------------------------------------------------------


def test_owner_upgrade_keeps_state(
    chain: Chain, owner: Signer, third: Signer, kms: KmsRegistry, next_impl: str
) -> None:
    app = deploy_app(chain, owner, kms, device_id=DEVICE, compose_hash=COMPOSE, allow_any_device=True)
    send(chain, owner, app.add_device(OTHER_DEVICE))
    send(chain, owner, app.transfer_ownership(third.address))
    before = app.implementation()
    impl = next_impl

    logs = events(app, send(chain, owner, app.request("upgradeToAndCall", impl, b"")))

    assert app.call("version") == 3
    assert app.implementation() == impl != before
    assert named(logs, "Upgraded") == [{"implementation": impl}]
    assert policy_changes(logs) == [(owner.address, policy_id("implementation-upgrade"), padded(impl), True)]
    assert app.owner() == owner.address
    assert app.pending_owner() == third.address
    assert app.is_device_allowed(DEVICE) and app.is_device_allowed(OTHER_DEVICE)
    assert app.is_compose_hash_allowed(COMPOSE)
    assert app.allow_any_device() is True
    assert app.call("requireTcbUpToDate") is False
    assert app.is_app_allowed(BootCheck(app.address, COMPOSE, b"\x99" * 32)) == (True, "")


def test_stranger_cannot_upgrade(
    chain: Chain, owner: Signer, stranger: Signer, shared_app: AppAuth, next_impl: str
) -> None:
    app = shared_app
    before = app.implementation()
    assert_reverts(chain, stranger, app.request("upgradeToAndCall", next_impl, b""), UNAUTHORIZED)
    assert app.implementation() == before
    assert app.call("version") == 2


def test_no_upgrade_after_disable_upgrades(chain: Chain, owner: Signer, app: AppAuth, next_impl: str) -> None:
    upgrade = app.request("upgradeToAndCall", next_impl, b"")
    assert simulate(chain, owner, [upgrade])  # possible until upgrades are disabled
    send(chain, owner, app.disable_upgrades())
    assert app.call("upgradesDisabled") is True
    assert_reverts(chain, owner, upgrade, "Upgrades are permanently disabled")
    assert app.call("version") == 2


def test_app_deployed_with_upgrades_disabled_cannot_be_upgraded(
    chain: Chain, owner: Signer, kms: KmsRegistry, next_impl: str
) -> None:
    app = deploy_app(chain, owner, kms, disable_upgrades=True)
    assert app.call("upgradesDisabled") is True
    assert_reverts(chain, owner, app.request("upgradeToAndCall", next_impl, b""), "Upgrades are permanently disabled")
    assert app.call("version") == 2


# -- two-step ownership ----------------------------------------------------------------------------


def test_two_step_ownership_transfer(
    chain: Chain, owner: Signer, stranger: Signer, third: Signer, app: AppAuth
) -> None:
    started = events(app, send(chain, owner, app.transfer_ownership(third.address)))
    assert named(started, "OwnershipTransferStarted") == [{"previousOwner": owner.address, "newOwner": third.address}]
    assert app.owner() == owner.address
    assert app.pending_owner() == third.address

    assert_reverts(chain, stranger, app.accept_ownership(), UNAUTHORIZED)

    accepted = events(app, send(chain, third, app.accept_ownership()))
    assert named(accepted, "OwnershipTransferred") == [{"previousOwner": owner.address, "newOwner": third.address}]
    assert app.owner() == third.address
    assert app.pending_owner() is None

    assert_reverts(chain, owner, app.add_device(DEVICE), UNAUTHORIZED)
    send(chain, third, app.add_device(DEVICE))
    assert app.is_device_allowed(DEVICE)


def test_pending_owner_can_be_retargeted(
    chain: Chain, owner: Signer, stranger: Signer, third: Signer, app: AppAuth
) -> None:
    send(chain, owner, app.transfer_ownership(third.address))
    send(chain, owner, app.transfer_ownership(stranger.address))
    assert app.pending_owner() == stranger.address
    assert_reverts(chain, third, app.accept_ownership(), UNAUTHORIZED)
    send(chain, stranger, app.accept_ownership())
    assert app.owner() == stranger.address
    assert app.pending_owner() is None
