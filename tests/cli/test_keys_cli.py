"""`warden keys verify`: the JSON contract, exit codes 0/1/2, and clean errors on malformed input."""

from __future__ import annotations

from tests.keys import (
    SIMULATOR_APP_ID,
    SIMULATOR_APP_PUBLIC_KEY,
    SIMULATOR_K256_KEY,
    SIMULATOR_K256_SIGNATURE,
    SIMULATOR_KMS_PUBLIC_KEY,
    SIMULATOR_PATH,
    SIMULATOR_PURPOSE,
)
from tests.support.cli import Run, assert_clean_error, warden
from warden.keys.get_key import get_key

RESULT = get_key(SIMULATOR_K256_KEY, SIMULATOR_K256_SIGNATURE, SIMULATOR_PATH, SIMULATOR_PURPOSE)
CHAIN = ",".join("0x" + signature.hex() for signature in RESULT.signature_chain)
OTHER_KMS = "02" + "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"  # the generator point


def verify(*extra: str, chain: str = CHAIN, app_id: str = "0x" + SIMULATOR_APP_ID.hex()) -> Run:
    return warden(
        "keys", "verify", "--app-id", app_id, "--public-key", RESULT.public_key.hex(),
        "--purpose", SIMULATOR_PURPOSE, "--signature-chain", chain, *extra,
    )  # fmt: skip


def test_a_chain_from_the_expected_kms_is_valid() -> None:
    run = verify("--kms-public-key", SIMULATOR_KMS_PUBLIC_KEY.hex(), "--json")
    assert run.exit_code == 0, run.stderr
    assert run.json() == {
        "app_public_key": "0x" + SIMULATOR_APP_PUBLIC_KEY.hex(),
        "kms_public_key": "0x" + SIMULATOR_KMS_PUBLIC_KEY.hex(),
        "valid": True,
    }


def test_a_chain_from_another_kms_exits_1_with_valid_false() -> None:
    run = verify("--kms-public-key", OTHER_KMS, "--json")
    assert run.exit_code == 1
    data = run.json()
    assert data["valid"] is False and data["kms_public_key"] == "0x" + SIMULATOR_KMS_PUBLIC_KEY.hex()
    assert "Traceback" not in run.stderr
    human = verify("--kms-public-key", OTHER_KMS)
    assert human.exit_code == 1 and "NO: issued by a different KMS key" in human.stdout


def test_without_an_expected_kms_key_nothing_is_claimed() -> None:
    run = verify("--json")
    assert run.exit_code == 0
    assert run.json()["valid"] is None
    assert "compare kms_public_key" in run.stderr
    human = verify()
    assert "0x" + SIMULATOR_APP_PUBLIC_KEY.hex() in human.stdout and "unchecked" in human.stdout


def test_a_tampered_purpose_is_not_valid() -> None:
    run = warden(
        "keys", "verify", "--app-id", SIMULATOR_APP_ID.hex(), "--public-key", RESULT.public_key.hex(),
        "--purpose", "other", "--signature-chain", CHAIN, "--kms-public-key", SIMULATOR_KMS_PUBLIC_KEY.hex(), "--json",
    )  # fmt: skip
    assert run.exit_code == 1 and run.json()["valid"] is False


def test_malformed_input_exits_2_without_a_traceback() -> None:
    app_sig, kms_sig = (signature.hex() for signature in RESULT.signature_chain)
    assert_clean_error(verify(app_id="5bb4ff9a"), 2, "app_id must be 20 bytes")
    assert_clean_error(verify(app_id="not-hex"), 2, "--app-id")
    assert_clean_error(verify(chain=app_sig), 2, "2 signatures")
    assert_clean_error(verify(chain=f"{app_sig},{kms_sig},{kms_sig}"), 2, "2 signatures")
    assert_clean_error(verify(chain=f"{app_sig},"), 2, "no empty entries")
    assert_clean_error(verify(chain=f"{app_sig[:-2]},{kms_sig}"), 2, "chain[0]", "65 bytes")
    assert_clean_error(verify(chain=f"{app_sig},{kms_sig[:-2]}1b"), 2, "chain[1]", "recovery id 27")
    assert_clean_error(verify(chain=f"{app_sig},zz"), 2, "signature 1 of --signature-chain")
    assert_clean_error(verify("--kms-public-key", "0x1234"), 2, "KMS public key")
    missing = warden("keys", "verify", "--app-id", SIMULATOR_APP_ID.hex())
    assert missing.exit_code == 2 and "Traceback" not in missing.stderr


def test_help_shows_an_example() -> None:
    run = warden("keys", "verify", "--help")
    assert run.exit_code == 0 and "Example:" in run.stdout
    assert "verify" in warden("keys", "--help").stdout
