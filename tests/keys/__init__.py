"""Public dstack key vectors shared by the key tests (each names the dstack file it comes from)."""

from __future__ import annotations

# sdk/simulator/appkeys.json: the keys the dstack simulator's KMS issued to its app
SIMULATOR_K256_KEY = bytes.fromhex("d6e88992cdeeee35fe70b5db61ab66cdb191fb9b6ec9313757ef162dd7214d5d")
SIMULATOR_K256_SIGNATURE = bytes.fromhex(
    "9e618603e72d01fedb82deff6daf2d62a572becf0059eec3f89c1ab40e1f2e59"
    "4d2a283f843f34e8f39e4cc49a612496ce67223a12ac923f8efe330346dfc6c500"
)
# the simulator's app id (its attestation.bin) and the keys sdk/go/dstack/client_web3_test.go expects
SIMULATOR_APP_ID = bytes.fromhex("5bb4ff9a3837357f19dc176407a5709c62eb6c56")
SIMULATOR_APP_PUBLIC_KEY = bytes.fromhex("02818494263695e8839122dbd88e281d7380622999df4e60a14befa0f2d096fc7c")
SIMULATOR_KMS_PUBLIC_KEY = bytes.fromhex("0321529e458424ab1f710a3a57ec4dad2fb195ddca572f7469242ba6c7563085b6")
# the path and purpose that Go SDK test asks GetKey for
SIMULATOR_PATH = "/test/path"
SIMULATOR_PURPOSE = "test-purpose"

# dstack/vmm/src/vmm-cli.py `verify_signature` doctest (also sdk/python/tests/test_verify_env_encrypt_public_key.py):
# a KMS's legacy signature over an env-encrypt X25519 public key for the all-zero app id
ENV_PUBLIC_KEY = bytes.fromhex("e33a1832c6562067ff8f844a61e51ad051f1180b66ec2551fb0251735f3ee90a")
ENV_SIGNATURE = bytes.fromhex(
    "8542c49081fbf4e03f62034f13fbf70630bdf256a53032e38465a27c36fd6bed"
    "7a5e7111652004aef37f7fd92fbfc1285212c4ae6a6154203a48f5e16cad2cef00"
)
ENV_APP_ID = bytes(20)
ENV_SIGNER = bytes.fromhex("0217610d74cbd39b6143842c6d8bc310d79da1d82cc9d17f8876376221eda0c38f")

# dstack/ra-tls/src/kdf.rs `test_derive_dh_secret_stable_output`: a root P-256 key (PKCS#8 DER, from rcgen)
# and the secret derive_dh_secret gives for the context ["context one", "context two"]
DH_ROOT_PKCS8 = bytes.fromhex(
    "308187020100301306072a8648ce3d020106082a8648ce3d030107046d306b02"
    "01010420f57527cea4ab7ffb49af99b158cdc0e3ec06398f528349ea236b7d2a"
    "fe19cec1a1440342000491f50522407ce29dce3ed7d31a15d80c1c42f13a2355"
    "2d2b33a0ce09ee11e47bce95936f3e7f80d195f879e28e1b144ef37ac9ab8e36"
    "a690cbf930b775897b27"
)
DH_CONTEXT = (b"context one", b"context two")
DH_SECRET = bytes.fromhex("663afd58820be8ad645f9c035e93199d114ab16f738db62393bc1d7d623e8813")
