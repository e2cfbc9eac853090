"""What users type (addresses, 32-byte ids, keys, keystores) and how reverts read."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector as selector

from tests.support.chain import STRANGER_KEY, THIRD_KEY
from warden.chain.abi import ContractAbi, decode_revert
from warden.chain.artifacts import load_artifact
from warden.chain.inputs import parse_address, parse_bytes32
from warden.chain.signer import load_signer, signer_from_key, signer_from_keystore, write_keystore
from warden.devnet.anvil import DEV_ADDRESS, DEV_PRIVATE_KEY
from warden.errors import BadInput

STRANGER_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
THIRD_ADDRESS = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC"


def cheap_keystore(path: Path, key: str, password: str) -> Path:
    """A keystore with a fast KDF, so tests that only read keystores stay quick."""
    path.write_text(json.dumps(Account.encrypt(bytes.fromhex(key[2:]), password, kdf="pbkdf2", iterations=2)))
    return path


# -- addresses ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        DEV_ADDRESS,
        DEV_ADDRESS.lower(),
        DEV_ADDRESS[2:].lower(),
        "0x" + DEV_ADDRESS[2:].upper(),
        "0X" + DEV_ADDRESS[2:].upper(),
        "app_" + DEV_ADDRESS.lower(),
        "APP_" + DEV_ADDRESS[2:],
        f"  {DEV_ADDRESS}\n",
    ],
)
def test_parse_address_accepts_common_forms_and_returns_the_checksum_form(text: str) -> None:
    assert parse_address(text) == DEV_ADDRESS


def test_parse_address_catches_a_one_character_case_typo() -> None:
    typo = DEV_ADDRESS.replace("Fd6", "fd6")
    assert typo != DEV_ADDRESS
    with pytest.raises(BadInput) as caught:
        parse_address(typo, "app id")
    assert str(caught.value) == f"invalid app id {typo!r}: checksum mismatch (did you mean {DEV_ADDRESS}?)"
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (DEV_ADDRESS[:-2], "expected 20 bytes (40 hex digits), got 19"),
        (DEV_ADDRESS + "00", "expected 20 bytes (40 hex digits), got 21"),
        ("0x" + "g" + DEV_ADDRESS[3:].lower(), "not hex (unexpected 'g')"),
        (DEV_ADDRESS[:-1], "odd number of hex digits"),
        ("0x", "empty"),
    ],
)
def test_parse_address_explains_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(BadInput, match=r"^invalid address") as caught:
        parse_address(text)
    assert problem in str(caught.value)


# -- 32-byte ids --------------------------------------------------------------------------------------


def test_parse_bytes32_accepts_any_case_with_or_without_0x() -> None:
    value = bytes(range(32))
    assert parse_bytes32(value.hex()) == value
    assert parse_bytes32("0x" + value.hex().upper()) == value


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("0x" + "ab" * 31, "expected 32 bytes (64 hex digits), got 31"),
        ("ab" * 33, "expected 32 bytes (64 hex digits), got 33"),
        ("0x" + "zz" + "ab" * 31, "not hex (unexpected 'z')"),
        ("0x" + "a" * 63, "odd number of hex digits"),
        ("", "empty"),
    ],
)
def test_parse_bytes32_explains_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(BadInput) as caught:
        parse_bytes32(text, "device id")
    assert str(caught.value).startswith("invalid device id")
    assert problem in str(caught.value)


# -- signers ------------------------------------------------------------------------------------------


def test_load_signer_prefers_the_flag_then_the_keystore_then_private_key(tmp_path: Path) -> None:
    keystore = cheap_keystore(tmp_path / "key.json", STRANGER_KEY, "pw")
    env = {"WARDEN_KEYSTORE": str(keystore), "WARDEN_KEYSTORE_PASSWORD": "pw", "PRIVATE_KEY": THIRD_KEY}

    flag = load_signer(private_key=DEV_PRIVATE_KEY, env=env)
    assert (flag.address, flag.source) == (DEV_ADDRESS, "--private-key")

    from_keystore = load_signer(env=env)
    assert (from_keystore.address, from_keystore.source) == (STRANGER_ADDRESS, f"keystore {keystore}")

    from_env = load_signer(env={"PRIVATE_KEY": THIRD_KEY})
    assert (from_env.address, from_env.source) == (THIRD_ADDRESS, "PRIVATE_KEY")

    with pytest.raises(BadInput, match="no signer: pass --private-key, or set PRIVATE_KEY"):
        load_signer(env={})


def test_a_keystore_without_password_asks_or_says_what_to_set(tmp_path: Path) -> None:
    keystore = cheap_keystore(tmp_path / "key.json", STRANGER_KEY, "secret")
    with pytest.raises(BadInput, match="set WARDEN_KEYSTORE_PASSWORD"):
        load_signer(keystore=str(keystore), env={})

    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "secret"

    signer = load_signer(keystore=str(keystore), env={}, ask_password=ask)
    assert signer.address == STRANGER_ADDRESS
    assert prompts == [f"password for keystore {keystore}: "]


@pytest.mark.parametrize(
    "key",
    [
        DEV_PRIVATE_KEY[:-2],  # one byte short
        DEV_PRIVATE_KEY[:-1] + "g",  # a typo
        "0x" + "00" * 32,  # 32 bytes, but not a valid secret
    ],
)
def test_an_invalid_key_is_refused_without_echoing_it(key: str) -> None:
    with pytest.raises(BadInput) as caught:
        load_signer(env={"PRIVATE_KEY": key})
    message = str(caught.value)
    assert message.startswith("invalid private key from PRIVATE_KEY")
    assert key[2:20] not in message
    assert key[-16:] not in message
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_a_signer_never_shows_its_key() -> None:
    signer = signer_from_key(DEV_PRIVATE_KEY, "PRIVATE_KEY")
    digits = DEV_PRIVATE_KEY[2:]
    for shown in (repr(signer), str(signer), f"{signer}", f"{signer!r}"):
        assert digits not in shown.lower()
    assert repr(signer) == f"Signer({DEV_ADDRESS}, from PRIVATE_KEY)"


def test_keystore_round_trip_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "warden.json"
    path.write_text("old")
    path.chmod(0o644)

    assert write_keystore(path, DEV_PRIVATE_KEY, "correct horse") == DEV_ADDRESS

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert DEV_PRIVATE_KEY[2:] not in path.read_text()
    signer = signer_from_keystore(path, "correct horse")
    assert signer.address == DEV_ADDRESS
    assert signer.source == f"keystore {path}"


def test_keystore_problems_are_bad_input(tmp_path: Path) -> None:
    keystore = cheap_keystore(tmp_path / "key.json", DEV_PRIVATE_KEY, "right")
    with pytest.raises(BadInput, match="wrong password"):
        signer_from_keystore(keystore, "wrong")

    with pytest.raises(BadInput, match="does not exist"):
        signer_from_keystore(tmp_path / "missing.json", "right")

    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(BadInput, match="is not a keystore: not JSON"):
        signer_from_keystore(garbage, "right")


@pytest.mark.parametrize(
    ("content", "phrase"),
    [
        (None, "does not exist"),
        ("{not json", "is not a keystore: not JSON"),
        ('{"hello": "world"}', "is not a keystore"),
        ("[1, 2]", "is not a keystore"),
        ('{"version": 3, "crypto": "x"}', "is not a keystore"),
        ('{"version": 1, "crypto": {}}', "is not a keystore"),
    ],
)
def test_a_bad_keystore_path_is_refused_before_any_password_prompt(
    tmp_path: Path, content: str | None, phrase: str
) -> None:
    path = tmp_path / "key.json"
    if content is not None:
        path.write_text(content)
    prompts: list[str] = []

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return "secret"

    with pytest.raises(BadInput, match=phrase) as by_flag:
        load_signer(keystore=str(path), env={}, ask_password=ask)
    with pytest.raises(BadInput, match=phrase) as by_env:
        load_signer(env={"WARDEN_KEYSTORE": str(path)}, ask_password=ask)
    assert str(path) in str(by_flag.value) and str(path) in str(by_env.value)
    assert prompts == []


def test_a_keystore_with_a_capitalised_crypto_section_is_read(tmp_path: Path) -> None:
    path = cheap_keystore(tmp_path / "key.json", STRANGER_KEY, "pw")
    data = json.loads(path.read_text())
    data["Crypto"] = data.pop("crypto")
    path.write_text(json.dumps(data))
    assert load_signer(keystore=str(path), env={"WARDEN_KEYSTORE_PASSWORD": "pw"}).address == STRANGER_ADDRESS


# -- revert reasons -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_abi() -> ContractAbi:
    return load_artifact("DstackApp").abi


def test_decode_revert_error_string() -> None:
    data = selector("Error(string)") + abi_encode(["string"], ["Device not allowed"])
    assert decode_revert(data) == "Device not allowed"


@pytest.mark.parametrize(("code", "reason"), [(0x11, "panic: arithmetic overflow"), (0x99, "panic: 0x99")])
def test_decode_revert_panic(code: int, reason: str) -> None:
    assert decode_revert(selector("Panic(uint256)") + abi_encode(["uint256"], [code])) == reason


def test_decode_revert_custom_error_with_arguments(app_abi: ContractAbi) -> None:
    data = selector("OwnableUnauthorizedAccount(address)") + abi_encode(["address"], [STRANGER_ADDRESS])
    assert decode_revert(data, app_abi) == f"OwnableUnauthorizedAccount(account={STRANGER_ADDRESS})"
    assert app_abi.decode_revert(data) == f"OwnableUnauthorizedAccount(account={STRANGER_ADDRESS})"
    # without the ABI the selector cannot be named, but the raw data is kept
    assert decode_revert(data) == f"custom error 0x{data.hex()}"


@pytest.mark.parametrize(
    "data",
    [
        selector("Error(string)") + b"\x00\x01",  # truncated string
        bytes.fromhex("deadbeef") + b"\x00" * 7,  # unknown selector
        selector("OwnableUnauthorizedAccount(address)"),  # arguments missing
    ],
)
def test_decode_revert_garbage_is_shown_raw(data: bytes, app_abi: ContractAbi) -> None:
    assert decode_revert(data, app_abi) == f"custom error 0x{data.hex()}"


@pytest.mark.parametrize("data", [b"", b"\x08\xc3\x79"])
def test_decode_revert_without_a_selector_is_none(data: bytes) -> None:
    assert decode_revert(data) is None
