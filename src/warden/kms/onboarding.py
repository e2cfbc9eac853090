"""A new KMS replica takes the root keys of a running one, after each has checked the other on chain.

The new replica (B) asks the source (A) for an attestation that binds A's root public keys and a
fresh nonce, and checks it with its own policy and `isKmsAllowed`. It then asks for the keys with
its own attestation, bound to a one-time X25519 key; A releases them only if the chain allows B
(`isKmsAllowed`), sealed to that key. B keeps them only if they are the keys A attested.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from warden.errors import OperationFailed
from warden.keys.app_keys import RootKeys
from warden.keys.sealed_box import new_key_pair, open_sealed, report_data_for
from warden.kms.attestation_policy import AttestationPolicy
from warden.kms.authorization import Authorizer
from warden.kms.client import KmsClient, KmsRefused
from warden.kms.service import KMS_IDENTITY_PURPOSE, KMS_KEY_PURPOSE


def onboard(
    source_url: str,
    self_attestation: Callable[[bytes], dict[str, Any]],
    policy: AttestationPolicy,
    authorizer: Authorizer,
) -> RootKeys:
    """The source's root keys, after mutual attestation; raises KmsRefused when either side says no."""
    client = KmsClient(source_url)
    try:
        nonce = os.urandom(32)
        shown = client.call("GetKmsAttestation", {"nonce": nonce.hex()})
        identity = bytes.fromhex(str(shown["identity"]))
        source = policy.boot_info(shown["attestation"], report_data_for(KMS_IDENTITY_PURPOSE, identity + nonce))
        decision = authorizer.authorize_kms(source)
        if not decision.allowed:
            raise KmsRefused(f"source KMS is not allowed for onboarding: {decision.reason}")
        private, public = new_key_pair()
        mine = self_attestation(report_data_for(KMS_KEY_PURPOSE, public))
        answer = client.call("GetKmsKey", {"attestation": mine, "requester_key": public.hex()})
        secrets = json.loads(open_sealed(private, bytes.fromhex(str(answer["sealed_keys"]))))
        keys = RootKeys(ca_secret=bytes.fromhex(secrets["ca_key"]), k256_secret=bytes.fromhex(secrets["k256_key"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise OperationFailed(f"source KMS sent a malformed answer ({type(exc).__name__})") from None
    finally:
        client.close()
    if keys.ca_public_key_spki() + keys.k256_public_key != identity:
        raise KmsRefused("the source KMS sent keys other than the ones it attested")
    return keys
