"""Profiles from the user config file: selected by --profile or WARDEN_PROFILE (or default_profile), and
beaten by the environment and by flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.chain import deploy_app
from tests.support.cli import assert_clean_error, ok, warden
from tests.support.limited_rpc import LimitedRpc
from tests.support.processes import free_port
from warden.chain.app import AppAuth
from warden.chain.connection import Chain
from warden.chain.kms import KmsRegistry
from warden.chain.signer import Signer
from warden.devnet.anvil import Anvil


@pytest.fixture
def app(chain: Chain, owner: Signer, kms: KmsRegistry) -> AppAuth:
    return deploy_app(chain, owner, kms)


def config(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return {"WARDEN_CONFIG": str(path)}


def test_profile_supplies_the_rpc_and_the_kms(anvil: Anvil, app: AppAuth, kms: KmsRegistry, tmp_path: Path) -> None:
    env = config(tmp_path, f'[profiles.local]\nrpc_url = "{anvil.url}"\nchain_id = 31337\nkms = "{kms.address}"\n')
    assert ok(warden("app", "info", app.address, "--profile", "local", "--json", env=env))["app"] == app.address
    assert ok(warden("kms", "info", "--json", env=env | {"WARDEN_PROFILE": "local"}))["kms"] == kms.address


def test_default_profile_and_precedence(anvil: Anvil, app: AppAuth, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    env = config(tmp_path, f'default_profile = "broken"\n[profiles.broken]\nrpc_url = "{dead}"\n'
                 f'[profiles.good]\nrpc_url = "{anvil.url}"\n')  # fmt: skip
    assert warden("app", "info", app.address, "--json", env=env).exit_code == 1  # the default: a dead RPC
    assert ok(warden("app", "info", app.address, "--profile", "good", "--json", env=env))
    # the environment beats the profile, and a flag beats both
    assert ok(warden("app", "info", app.address, "--json", env=env | {"ETH_RPC_URL": anvil.url}))
    flag = warden("app", "info", app.address, "--profile", "good", "--rpc-url", dead, "--json", env=env)
    assert flag.exit_code == 1


def test_a_profile_chain_id_guards_its_rpc(anvil: Anvil, app: AppAuth, tmp_path: Path) -> None:
    env = config(tmp_path, f'[profiles.base]\nrpc_url = "{anvil.url}"\nchain_id = 8453\n')
    run = warden("app", "info", app.address, "--profile", "base", env=env)
    assert_clean_error(run, 2, "8453")


@pytest.mark.parametrize(
    ("text", "args", "phrase"),
    [
        ("[profiles.a]\n", ("--profile", "b"), "no profile 'b'"),
        ("[profiles.a\n", ("--profile", "a"), "not valid TOML"),
        ("[profiles.a]\ncolour = 'red'\n", ("--profile", "a"), "unknown setting(s) colour"),
        ("[profiles.a]\nchain_id = '8453'\n", ("--profile", "a"), "chain_id must be an integer"),
        ("default_profile = 'gone'\n", (), "no profile 'gone'"),
        ("[profiles.a]\nmax_log_range = 0\n", ("--profile", "a"), "max_log_range must be an integer >= 1"),
        ("[profiles.a]\nbatches = 'no'\n", ("--profile", "a"), "batches must be true or false"),
        ("[profiles.a]\nfrom_block = -1\n", ("--profile", "a"), "from_block must be an integer >= 0"),
        ("[profiles.a]\nrequire_key = 'yes'\n", ("--profile", "a"), "require_key must be true or false"),
    ],
)
def test_bad_profiles_are_bad_input(tmp_path: Path, text: str, args: tuple[str, ...], phrase: str) -> None:
    env = config(tmp_path, text)
    run = warden("allow-devices", "list", "0x" + "11" * 20, *args, env=env)
    assert_clean_error(run, 2, phrase)


def test_a_named_profile_without_a_config_file_is_bad_input(tmp_path: Path) -> None:
    run = warden("app", "info", "0x" + "11" * 20, "--profile", "prod", env={"WARDEN_CONFIG": str(tmp_path / "no")})
    assert_clean_error(run, 2, "no profile 'prod'", "there is no config file")


def test_a_profile_states_the_provider_limits_and_where_a_pruned_node_starts(
    anvil: Anvil, chain: Chain, owner: Signer, kms: KmsRegistry, tmp_path: Path
) -> None:
    app = deploy_app(chain, owner, kms, device_id=b"\x5a" * 32)
    chain.rpc.call("anvil_mine", [hex(30)])
    head = chain.block_number()
    start = head - 10  # after the app was created: the profile is trusted, nothing before it is read
    with LimitedRpc(anvil.url, max_log_range=25, batches=False, state_from=head) as proxy:
        env = config(tmp_path, f'[profiles.p]\nrpc_url = "{proxy.url}"\nmax_log_range = 25\nbatches = false\n'
                     f"from_block = {start}\n")  # fmt: skip
        env |= {"XDG_CACHE_HOME": str(tmp_path / "cache")}
        listed = ok(warden("allow-devices", "list", app.address, "--profile", "p", "--json", env=env))
        ranges = list(proxy.log_ranges)
        refused = proxy.calls["batch"]
        proxy.reset_counts()
        flag = ok(warden("allow-devices", "list", app.address, "--profile", "p", "--from-block", "0", "--no-cache",
                         "--json", env=env))  # fmt: skip
        flag_ranges = list(proxy.log_ranges)

    assert [d["device_id"] for d in listed["devices"]] == []  # the add happened before `from_block`
    assert min(low for low, _ in ranges) == start and all(high - low < 25 for low, high in ranges)
    assert refused == 0  # batches=false: none was tried
    assert [d["device_id"] for d in flag["devices"]] == ["0x" + "5a" * 32]  # --from-block beats the profile
    assert min(low for low, _ in flag_ranges) == 0
