"""The KMS: releases an app's keys only to an attested caller the chain allows, sealed to the caller's key.

Every request that releases something carries an attestation (a TDX quote, its event log, the
vm_config) whose report_data binds a key of the caller's; the KMS verifies it, replays the event log,
builds BootInfo, asks DstackKms (`isAppAllowed` / `isKmsAllowed`) and only then derives the keys
(the same on every replica: they are pure functions of the root keys and the app id).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any

from warden.errors import BadInput, Denied, OperationFailed
from warden.hexutil import parse_hex
from warden.identity.bootinfo import BootInfo
from warden.keys.app_keys import (
    PerAppKeys,
    RootKeys,
    app_ca_secret,
    derive_app_keys,
    derive_per_app_keys,
    env_encrypt_public_key,
    sign_env_encrypt_public_key,
)
from warden.keys.sealed_box import report_data_for, seal
from warden.kms.attestation_policy import AttestationPolicy
from warden.kms.authorization import BACKEND_UNAVAILABLE, Authorizer, Decision
from warden.kms.certs import app_ca_certificate, issue_leaf, parse_cert_request, pem, root_ca_certificate
from warden.kms.decision_tally import DECISIONS

log = logging.getLogger("warden.kms")

APP_KEY_PURPOSE = "warden-kms-app-key"  # report_data = sha512(purpose ":" requester X25519 key)
KMS_KEY_PURPOSE = "warden-kms-onboard"
KMS_IDENTITY_PURPOSE = "warden-kms-identity"
RA_TLS_PURPOSE = "ratls-cert"  # a CSR's attestation binds sha512("ratls-cert:" ‖ SPKI), as dstack's does
PER_APP_KEYS_CACHED = 4096  # apps whose instance-independent keys stay derived


class KmsDenied(Denied):
    """The chain (or the KMS's own policy) said no; `str()` is what the caller sees."""


@dataclass
class KmsSettings:
    version: str = "0.5.7"
    csr_api_versions: tuple[int, ...] = (1, 2)  # a 0.5.4-era KMS accepts only (1,)


@dataclass
class KmsService:
    keys: RootKeys
    authorizer: Authorizer
    policy: AttestationPolicy
    settings: KmsSettings = field(default_factory=KmsSettings)
    # this KMS's own attestation (report_data → GetQuote-shaped dict), when it runs in a CVM
    self_attestation: Callable[[bytes], dict[str, Any]] | None = None
    clock: Callable[[], float] = field(default=time.time)
    # what an app's instances share (env key, k256 key and its signature): a pure function of the root keys and
    # the app id, so derived once per app; bounded, so a stream of app ids cannot grow it without end
    _per_app_keys: Callable[[RootKeys, bytes], PerAppKeys] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._per_app_keys = lru_cache(maxsize=PER_APP_KEYS_CACHED)(derive_per_app_keys)

    @cached_property
    def root_ca_pem(self) -> str:
        """The root CA certificate (a function of the root key alone), built once instead of per request."""
        return pem(root_ca_certificate(self.keys.ca_secret))

    # -- unauthenticated ---------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        info = self.authorizer.info()
        return {
            "version": self.settings.version,
            "ca_cert": self.root_ca_pem,
            "k256_pubkey": self.keys.k256_public_key.hex(),
            "allow_any_upgrade": False,
            "is_dev": False,
            "bootstrap_info": None,
            "gateway_app_id": info.gateway_app_id,
            "kms_contract_address": info.kms_contract_addr,
            "chain_id": info.chain_id,
            "app_auth_implementation": info.app_implementation,
            "supported_csr_api_versions": list(self.settings.csr_api_versions),
        }

    def health(self) -> tuple[dict[str, Any], bool]:
        """`GET /`: the KMS is up, and whether its chain answers now (while it does not, keys are denied).

        Returns the body and whether the chain answered. Nothing secret: the RPC shows scheme, host and port."""
        chain: dict[str, Any] = {
            "kms_contract_address": self.authorizer.kms_address,
            "rpc": self.authorizer.rpc_endpoint,
        }
        try:
            info = self.authorizer.info()
        except OperationFailed:
            chain |= {"status": "unavailable", "chain_id": self.authorizer.chain_id, "message": BACKEND_UNAVAILABLE}
            return {"status": "error", "version": self.settings.version, "chain": chain}, False
        chain |= {"status": "ok", "chain_id": info.chain_id, "gateway_app_id": info.gateway_app_id}
        return {"status": "ok", "version": self.settings.version, "chain": chain}, True

    def env_encrypt_pub_key(self, body: dict[str, Any]) -> dict[str, Any]:
        app_id = _hex_arg(body, "app_id")
        if len(app_id) != 20:
            raise BadInput("app_id must be 20 bytes")
        public_key = env_encrypt_public_key(self.keys, app_id)
        timestamp = int(self.clock())
        signature, signature_v1 = sign_env_encrypt_public_key(self.keys, app_id, public_key, timestamp)
        return {
            "public_key": public_key.hex(),
            "signature": signature.hex(),
            "timestamp": timestamp,
            "signature_v1": signature_v1.hex(),
        }

    def kms_attestation(self, body: dict[str, Any]) -> dict[str, Any]:
        """This KMS's attestation, binding its root public keys and the caller's nonce (mutual onboarding)."""
        if self.self_attestation is None:
            raise OperationFailed("this KMS does not run in a CVM: it has no attestation to show")
        nonce = _hex_arg(body, "nonce")
        identity = self.identity_bytes()
        attestation = self.self_attestation(report_data_for(KMS_IDENTITY_PURPOSE, identity + nonce))
        return {"attestation": attestation, "identity": identity.hex()}

    def identity_bytes(self) -> bytes:
        return self.keys.ca_public_key_spki() + self.keys.k256_public_key

    # -- attested ----------------------------------------------------------------------------------
    def get_app_key(self, body: dict[str, Any]) -> dict[str, Any]:
        requester, report_data = self._app_key_request(body)
        boot = self.policy.boot_info(_attestation(body), report_data)
        return self._release_app_key(requester, boot, self.authorizer.authorize_app(boot))

    async def get_app_key_async(self, body: dict[str, Any]) -> dict[str, Any]:
        """`get_app_key` on an event loop. With fixed collateral the attestation checks are computation only and
        run right there, as do the key derivation and sealing; a collateral source that may fetch runs on a
        thread instead. The chain question waits on the authorizer's threads and deadline."""
        requester, report_data = self._app_key_request(body)
        attestation = _attestation(body)
        if self.policy.may_block:
            boot = await asyncio.to_thread(self.policy.boot_info, attestation, report_data)
        else:
            boot = self.policy.boot_info(attestation, report_data)
        return self._release_app_key(requester, boot, await self.authorizer.authorize_app_async(boot))

    def _app_key_request(self, body: dict[str, Any]) -> tuple[bytes, bytes]:
        """The requester's key and the report_data its quote must carry."""
        version = _int_arg(body, "api_version", 0)
        if version > 1:
            raise BadInput(f"Unsupported API version: {version}")
        requester = _hex_arg(body, "requester_key")
        return requester, report_data_for(APP_KEY_PURPOSE, requester)

    def _release_app_key(self, requester: bytes, boot: BootInfo, decision: Decision) -> dict[str, Any]:
        DECISIONS.record("kms", decision.allowed, decision.reason)
        _require_allowed(boot, decision)
        keys = derive_app_keys(self.keys, boot.app_id, boot.instance_id, self._per_app_keys)
        released = {
            "ca_cert": self.root_ca_pem,
            "disk_crypt_key": keys.disk_crypt_key.hex(),
            "env_crypt_key": keys.env_crypt_key.hex(),
            "k256_key": keys.k256_key.hex(),
            "k256_signature": keys.k256_signature.hex(),
            "gateway_app_id": decision.gateway_app_id,
            "os_image_hash": boot.os_image_hash.hex(),
        }
        log.info("released app keys: app %s instance %s device %s", boot.app_id.hex(), boot.instance_id.hex(),
                 boot.device_id.hex())  # fmt: skip
        return {"sealed_keys": seal(requester, json.dumps(released).encode()).hex()}

    def sign_cert(self, body: dict[str, Any]) -> dict[str, Any]:
        version = _int_arg(body, "api_version", 1)
        if version not in self.settings.csr_api_versions:
            raise BadInput(f"Unsupported API version: {version}")
        request = parse_cert_request(version, body.get("csr"), body.get("signature"))
        # a runtime certificate request measures as at boot, so it matches the boot-time decision
        boot, _ = self._authorized_app(
            {"attestation": request.attestation}, report_data_for(RA_TLS_PURPOSE, request.public_key_der), True
        )
        ca_secret = app_ca_secret(self.keys, boot.app_id)
        app_ca = app_ca_certificate(self.keys.ca_secret, ca_secret, boot.app_id)
        now = dt.datetime.fromtimestamp(self.clock(), dt.UTC)
        leaf = issue_leaf(request, app_ca, ca_secret, boot.app_id, now)
        log.info("signed a certificate for app %s (CSR v%d)", boot.app_id.hex(), version)
        return {"certificate_chain": [pem(leaf), pem(app_ca), self.root_ca_pem]}

    def get_kms_key(self, body: dict[str, Any]) -> dict[str, Any]:
        """Hand the root keys to another KMS replica that the chain allows (isKmsAllowed)."""
        requester = _hex_arg(body, "requester_key")
        boot = self.policy.boot_info(_attestation(body), report_data_for(KMS_KEY_PURPOSE, requester))
        decision = self.authorizer.authorize_kms(boot)
        DECISIONS.record("kms-replica", decision.allowed, decision.reason)
        if not decision.allowed:
            log.info("refused root keys to a KMS on device %s: %s", boot.device_id.hex(), decision.reason)
            raise KmsDenied(f"KMS not allowed: {decision.reason}")
        log.info("handed root keys to a KMS replica on device %s", boot.device_id.hex())
        secret = {"ca_key": self.keys.ca_secret.hex(), "k256_key": self.keys.k256_secret.hex()}
        return {"sealed_keys": seal(requester, json.dumps(secret).encode()).hex()}

    def _authorized_app(
        self, body: dict[str, Any], report_data: bytes, boottime: bool = False
    ) -> tuple[BootInfo, Decision]:
        boot = self.policy.boot_info(_attestation(body), report_data, boottime=boottime)
        decision = self.authorizer.authorize_app(boot)
        _require_allowed(boot, decision)
        return boot, decision


def _require_allowed(boot: BootInfo, decision: Decision) -> None:
    if not decision.allowed:
        log.info("boot denied: app %s device %s: %s", boot.app_id.hex(), boot.device_id.hex(), decision.reason)
        raise KmsDenied(f"Boot denied: {decision.reason}")


def _attestation(body: dict[str, Any]) -> dict[str, Any]:
    attestation = body.get("attestation")
    if not isinstance(attestation, dict):
        raise BadInput("request has no `attestation` object (quote, event_log, vm_config)")
    return attestation


def _hex_arg(body: dict[str, Any], name: str) -> bytes:
    value = body.get(name)
    if not isinstance(value, str):
        raise BadInput(f"request needs `{name}` (hex)")
    return parse_hex(value, f"`{name}`")


def _int_arg(body: dict[str, Any], name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadInput(f"`{name}` must be an integer")
    return value
