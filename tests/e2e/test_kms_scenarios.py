"""The field report's scenarios against a real KMS over HTTP, real anvil and simulated TDX nodes."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from dstack_sdk import DstackClient
from eth_account import Account
from eth_account.messages import encode_defunct

from tests.e2e.conftest import kms_service
from tests.e2e.world import COMPOSE_PLATFORM_A, COMPOSE_PLATFORM_B, World
from tests.support.chain import send
from tests.support.http_server import serve
from warden.chain.signer import Signer
from warden.keys.app_keys import RootKeys
from warden.keys.sealed_box import new_key_pair, report_data_for
from warden.keys.signature_chain import verify_signature_chain
from warden.kms.client import KmsClient, KmsRefused
from warden.kms.server import create_kms_app
from warden.kms.service import APP_KEY_PURPOSE
from warden.tee.guest import Guest
from warden.tee.guest_api import create_guest_app
from warden.tee.pki import MockIntelPki

MESSAGE = "shared-key-demo says hello"


def sdk_signature(guest: Guest) -> tuple[str, str]:
    """What an app does inside its CVM: dstack-sdk GetKey, then sign with that key (eth_account, RFC 6979)."""
    with serve(create_guest_app(guest)) as url:
        client = DstackClient(url)
        key = client.get_key("/shared-demo", "ethereum")
        account = Account.from_key(key.decode_key())
        signed = account.sign_message(encode_defunct(text=MESSAGE))
        # the signature chain proves the key came from this KMS for this app
        check = verify_signature_chain(
            bytes.fromhex(guest.cvm.app_id.hex()),
            bytes(account._key_obj.public_key.to_compressed_bytes()),
            "ethereum",
            [bytes.fromhex(s) for s in key.signature_chain],
        )
        assert check.kms_public_key == guest_kms_key(guest)
        return account.address, "0x" + bytes(signed.signature).hex()


def guest_kms_key(guest: Guest) -> bytes:
    meta = guest.kms.call("GetMeta", {})
    return bytes.fromhex(str(meta["k256_pubkey"]))


def test_three_cvms_on_two_platforms_share_one_key_and_sign_identically(world: World) -> None:
    guests = [
        world.guest(world.cvm("prod5", compose_hash=COMPOSE_PLATFORM_A, instance=1)),
        world.guest(world.cvm("prod6", compose_hash=COMPOSE_PLATFORM_A, instance=2)),
        world.guest(world.cvm("hosted", compose_hash=COMPOSE_PLATFORM_B, instance=3)),
    ]
    for guest in guests:
        guest.boot()
    results = {sdk_signature(g) for g in guests}
    assert len(results) == 1  # same address, byte-identical signature
    # disks stay per instance
    assert len({g.keys.disk_crypt_key for g in guests if g.keys}) == 3


def test_a_different_app_gets_different_keys(world: World, owner: Signer) -> None:
    from tests.support.chain import deploy_app

    other = deploy_app(world.chain, owner, world.kms, device_id=world.node("prod5").device_id,
                       compose_hash=COMPOSE_PLATFORM_A)  # fmt: skip
    mine = world.guest(world.cvm("prod5"))
    theirs = world.guest(world.cvm("prod5", app=bytes.fromhex(other.address[2:])))
    mine.boot()
    theirs.boot()
    assert mine.get_key("/shared-demo", "ethereum").key != theirs.get_key("/shared-demo", "ethereum").key


def test_replica_on_a_node_not_allowed_is_refused_until_its_device_is_added(world: World) -> None:
    replica = world.guest(world.cvm("prod9"))
    with pytest.raises(KmsRefused, match="Boot denied: Device not allowed"):
        replica.boot()
    world.allow_device("prod9")
    replica.boot()
    assert replica.keys is not None


def test_allow_any_device_lets_any_node_boot(world: World) -> None:
    send(world.chain, world.owner, world.app.set_allow_any_device(True))
    world.guest(world.cvm("prod9")).boot()


def test_an_unlisted_compose_hash_is_refused(world: World) -> None:
    unknown = bytes(31) + b"\x01"
    with pytest.raises(KmsRefused, match="Boot denied: Compose hash not allowed"):
        world.guest(world.cvm("prod5", compose_hash=unknown)).boot()
    send(world.chain, world.owner, world.app.add_compose_hash(unknown))
    world.guest(world.cvm("prod5", compose_hash=unknown)).boot()


def test_a_firmware_update_stops_the_next_boot_until_the_new_device_is_added(world: World) -> None:
    world.guest(world.cvm("prod6")).boot()
    world.node("prod6").rotate_ppid()
    with pytest.raises(KmsRefused, match="Device not allowed"):
        world.guest(world.cvm("prod6")).boot()
    world.allow_device("prod6")
    world.guest(world.cvm("prod6")).boot()


def test_new_guest_and_old_kms_get_keys_but_no_certificate_unless_it_falls_back(world: World) -> None:
    old_kms = kms_service(world.kms, world.pki, world.service.keys, csr_versions=(1,))
    with serve(create_kms_app(old_kms)) as old_url:
        new_guest = world.guest(world.cvm("prod5"), version="0.5.7", url=old_url)
        new_guest.boot()
        assert new_guest.keys is not None and new_guest.certificate is None
        assert new_guest.certificate_error == "Unsupported API version: 2"

        fallback = world.guest(world.cvm("prod5"), version="0.5.7", fallback_to_v1=True, url=old_url)
        fallback.boot()
        assert fallback.certificate is not None and fallback.certificate.csr_api_version == 1

        old_guest = world.guest(world.cvm("prod5"), version="0.5.4", url=old_url)
        old_guest.boot()
        assert old_guest.certificate is not None
    current = world.guest(world.cvm("prod5"), version="0.5.7")
    current.boot()
    assert current.certificate is not None and current.certificate.csr_api_version == 2
    assert len(current.certificate.chain) == 3


def test_kms_with_the_rpc_unreachable_releases_nothing(world: World, tmp_path: Path) -> None:
    from warden.chain.connection import Chain
    from warden.chain.kms import KmsRegistry

    dead = KmsRegistry(Chain.connect(world.chain.rpc.url), world.kms.address)
    dead.chain.rpc.urls = ["http://127.0.0.1:9"]
    dead.chain.rpc.retries = 0
    service = kms_service(dead, world.pki, world.service.keys)
    with (
        serve(create_kms_app(service)) as url,
        pytest.raises(KmsRefused, match="Boot denied: authorization backend unavailable"),
    ):
        world.guest(world.cvm("prod5"), url=url).boot()


def test_a_second_replica_onboards_and_derives_identical_keys(world: World, tmp_path: Path) -> None:
    from warden.kms.onboarding import onboard

    # the KMS replicas run in CVMs of the KMS app; the chain must allow their MR, device and image
    kms_cvm_a, kms_cvm_b = world.cvm("kms-a", app=b"\x4b" * 20), world.cvm("kms-b", app=b"\x4b" * 20)
    for cvm in (kms_cvm_a, kms_cvm_b):
        boot = world.service.policy.boot_info(cvm.get_quote_response(b"\x00"), report_data=bytes(64))
        send(world.chain, world.owner, world.kms.request("addKmsAggregatedMr", boot.mr_aggregated))
        send(world.chain, world.owner, world.kms.request("addKmsDevice", boot.device_id))
    world.service.self_attestation = kms_cvm_a.get_quote_response
    replica_keys = onboard(world.kms_url, kms_cvm_b.get_quote_response, world.service.policy, world.service.authorizer)
    assert replica_keys == world.service.keys
    replica = kms_service(world.kms, world.pki, replica_keys)
    with serve(create_kms_app(replica)) as replica_url:
        a = world.guest(world.cvm("prod5"))
        b = world.guest(world.cvm("prod5"), url=replica_url)
        a.boot()
        b.boot()
        assert a.get_key("/shared-demo", "ethereum").key == b.get_key("/shared-demo", "ethereum").key


def test_a_kms_not_allowed_on_chain_gets_no_root_keys(world: World) -> None:
    from warden.kms.onboarding import onboard

    rogue = world.cvm("rogue", app=b"\x4b" * 20)
    world.service.self_attestation = world.cvm("kms-a", app=b"\x4b" * 20).get_quote_response
    with pytest.raises(KmsRefused):
        onboard(world.kms_url, rogue.get_quote_response, world.service.policy, world.service.authorizer)


# -- security -------------------------------------------------------------------------------------------


def test_a_quote_replayed_with_another_requester_key_is_refused(world: World) -> None:
    cvm = world.cvm("prod5")
    _, victim_key = new_key_pair()
    stolen = cvm.get_quote_response(report_data_for(APP_KEY_PURPOSE, victim_key))
    _, attacker_key = new_key_pair()
    client = KmsClient(world.kms_url)
    with pytest.raises(Exception, match="does not bind the requester"):
        client.call("GetAppKey", {"api_version": 1, "attestation": stolen, "requester_key": attacker_key.hex()})


def test_a_quote_from_another_root_is_refused(world: World, tmp_path: Path) -> None:
    foreign = MockIntelPki.load_or_create(tmp_path / "foreign-pki")
    from warden.tee.cvm import SimCvm

    cvm = world.cvm("prod5")
    impostor = SimCvm(
        cvm.node,
        foreign,
        app_id=cvm.app_id,
        compose_hash=cvm.compose_hash,
        instance_id=cvm.instance_id,
        os_image_hash=cvm.os_image_hash,
        key_provider=cvm.key_provider,
    )
    with pytest.raises(KmsRefused, match="does not verify"):
        world.guest(impostor).boot()


def test_an_event_log_that_does_not_match_rtmr3_is_refused(world: World) -> None:
    cvm = world.cvm("prod5")
    _private, public = new_key_pair()
    attestation = cvm.get_quote_response(report_data_for(APP_KEY_PURPOSE, public))
    log = json.loads(attestation["event_log"])
    log.append({"imr": 3, "event_type": 134217729, "digest": "", "event": "late", "event_payload": ""})
    attestation["event_log"] = json.dumps(log)
    with pytest.raises(KmsRefused, match="does not match the quote"):
        KmsClient(world.kms_url).call("GetAppKey", {"api_version": 1, "attestation": attestation,
                                                    "requester_key": public.hex()})  # fmt: skip


def test_an_unregistered_app_is_refused(world: World) -> None:
    with pytest.raises(KmsRefused, match="App not registered"):
        world.guest(world.cvm("prod5", app=b"\x99" * 20)).boot()


def test_get_app_key_refuses_api_version_2(world: World) -> None:
    with pytest.raises(KmsRefused, match="Unsupported API version: 2"):
        KmsClient(world.kms_url).call("GetAppKey", {"api_version": 2})


def test_no_key_material_reaches_the_logs(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    guest = world.guest(world.cvm("prod5"))
    guest.boot()
    assert guest.keys is not None
    secrets = [guest.keys.k256_key.hex(), guest.keys.disk_crypt_key.hex(), guest.keys.env_crypt_key.hex(),
               world.service.keys.k256_secret.hex(), world.service.keys.ca_secret.hex()]  # fmt: skip
    text = caplog.text + repr(guest.keys) + repr(world.service.keys)
    assert "released app keys" in caplog.text
    for secret in secrets:
        assert secret not in text


def test_root_keys_in_memory_compare_by_value() -> None:
    keys = RootKeys.generate()
    assert keys == RootKeys(keys.ca_secret, keys.k256_secret)
