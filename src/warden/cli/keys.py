"""`warden keys …`: check dstack key signature chains offline (no secrets are ever taken on the command line)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from warden.chain.inputs import hex0x, parse_hex
from warden.cli.common import JsonOption, emit, flag, new_app, note, stdout
from warden.errors import BadInput
from warden.keys.signature_chain import verify_signature_chain

app = new_app("keys", "dstack app keys: check that a GetKey result was issued by a given KMS.")
# a real chain (dstack's simulator, issued by that KMS key), so the example can be pasted and run
VERIFY_EXAMPLE = """\b
Example: warden keys verify --app-id 5bb4ff9a3837357f19dc176407a5709c62eb6c56 --purpose test-purpose \\
  --public-key 02c1082e78670feed1c847db81dbd71be37e4d53200a746c0a89f0afa8173cf566 \\
  --kms-public-key 0321529e458424ab1f710a3a57ec4dad2fb195ddca572f7469242ba6c7563085b6 --signature-chain \\
  0xf50c51735a97072f0c98125ed61fc84e2fdb36e95990b9e57337dadc0e2a9712227f04e07209faecb8891d59ec144a6c13e411dc90b3423f28071bd3fe11978d01,0x9e618603e72d01fedb82deff6daf2d62a572becf0059eec3f89c1ab40e1f2e594d2a283f843f34e8f39e4cc49a612496ce67223a12ac923f8efe330346dfc6c500"""
app.info.epilog = VERIFY_EXAMPLE


def _signature_chain(text: str) -> list[bytes]:
    parts = [part.strip() for part in text.split(",")]
    if any(not part for part in parts):
        raise BadInput("--signature-chain: give the signatures as HEX,HEX with no empty entries")
    return [parse_hex(part, f"signature {index} of --signature-chain") for index, part in enumerate(parts)]


AppIdOption = Annotated[str, flag("--app-id", "The app id (20 bytes).", metavar="HEX")]
PublicKeyOption = Annotated[
    str, flag("--public-key", "The derived public key (SEC1, compressed or not).", metavar="HEX")
]
PurposeOption = Annotated[str, flag("--purpose", "The purpose GetKey was called with.", metavar="TEXT")]
SignatureChainOption = Annotated[
    str, flag("--signature-chain", "GetKey's signature_chain: app-key sig, KMS sig.", metavar="SIG,SIG")
]
KmsPublicKeyOption = Annotated[
    str | None,
    flag(
        "--kms-public-key",
        "The KMS root k256 key to expect (DstackKms kmsInfo.k256Pubkey); exit 1 if the chain differs.",
        metavar="HEX",
    ),
]


@app.command("verify", epilog=VERIFY_EXAMPLE)
def verify(
    app_id: AppIdOption,
    public_key: PublicKeyOption,
    purpose: PurposeOption,
    signature_chain: SignatureChainOption,
    kms_public_key: KmsPublicKeyOption = None,
    json_out: JsonOption = False,
) -> None:
    """Recover the app key and KMS root key behind a GetKey result, and compare with the expected KMS key.

    Without --kms-public-key nothing is trusted yet: "valid" is null and the recovered KMS key is shown
    for you to compare. Exit 1 when the chain leads to a different KMS key, 2 on malformed input.
    """
    expected = parse_hex(kms_public_key, "--kms-public-key") if kms_public_key is not None else None
    check = verify_signature_chain(
        parse_hex(app_id, "--app-id"),
        parse_hex(public_key, "--public-key"),
        purpose,
        _signature_chain(signature_chain),
    )
    valid = check.issued_by(expected) if expected is not None else None
    data: dict[str, Any] = {
        "app_public_key": hex0x(check.app_public_key),
        "kms_public_key": hex0x(check.kms_public_key),
        "valid": valid,
    }
    if valid is None:
        note("no --kms-public-key: compare kms_public_key with the KMS's registered k256 key before trusting it")
    emit(json_out, data, lambda: _summary(data))
    if valid is False:
        raise typer.Exit(1)


def _summary(data: dict[str, Any]) -> None:
    verdict = {True: "yes: issued by the expected KMS", False: "NO: issued by a different KMS key", None: "unchecked"}
    stdout.print(f"app_public_key  {data['app_public_key']}", markup=False)
    stdout.print(f"kms_public_key  {data['kms_public_key']}", markup=False)
    stdout.print(f"valid           {verdict[data['valid']]}", markup=False)
