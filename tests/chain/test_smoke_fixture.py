from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer

from tests.support.chain import deploy_app


def test_factory_app_is_owned_by_signer(chain: Chain, owner: Signer, kms: KmsRegistry) -> None:
    app = deploy_app(chain, owner, kms, device_id=b"\x01" * 32)
    assert app.owner() == owner.address
    assert app.is_device_allowed(b"\x01" * 32)
