"""The committed artifacts are what the Solidity sources compile to, with the pinned compiler."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from warden.chain.artifacts import load_artifact

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = REPO / "contracts"
RUNTIME_ARTIFACTS = REPO / "src" / "warden" / "chain" / "artifacts"
TEST_ARTIFACTS = REPO / "tests" / "contracts" / "artifacts"
RUNTIME_NAMES = ["DstackApp", "DstackKms", "ERC1967Proxy"]
TEST_NAMES = ["DstackAppNext", "DstackKmsNext"]
SOLC = "0.8.24"


def test_artifacts_match_the_sources() -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: it is needed to compile the contracts (then run `make install`)")
    if not (CONTRACTS / "node_modules").is_dir():
        pytest.fail("contracts/node_modules is missing: run `make install` to install solc and OpenZeppelin")
    result = subprocess.run(
        [node, "contracts/build.mjs", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, (
        "committed artifacts differ from the sources (rebuild with `node contracts/build.mjs`):\n"
        f"{result.stderr}{result.stdout}"
    )
    assert "artifacts up to date" in result.stdout


def artifact_files() -> list[Path]:
    return sorted(RUNTIME_ARTIFACTS.glob("*.json")) + sorted(TEST_ARTIFACTS.glob("*.json"))


def test_every_expected_artifact_is_committed() -> None:
    names = {p.stem for p in artifact_files()}
    assert set(RUNTIME_NAMES) <= {p.stem for p in RUNTIME_ARTIFACTS.glob("*.json")}
    assert set(TEST_NAMES) <= names
    for name in RUNTIME_NAMES:
        artifact = load_artifact(name)  # what the installed package reads
        assert artifact.name == name
        assert artifact.bytecode and artifact.deployed_bytecode


@pytest.mark.parametrize("path", artifact_files(), ids=lambda p: p.name)
def test_artifact_has_abi_bytecode_and_pinned_compiler(path: Path) -> None:
    data = json.loads(path.read_text())
    assert data["contractName"] == path.stem
    assert isinstance(data["abi"], list) and data["abi"], "empty ABI"
    for field in ("bytecode", "deployedBytecode"):
        code = data[field]
        assert isinstance(code, str) and code.startswith("0x") and len(code) > 2, f"no {field}"
        bytes.fromhex(code[2:])  # valid hex
    # "0.8.24+commit.e11b9ed9": the version before the build suffix is the pinned one
    assert str(data["compiler"]).split("+", 1)[0] == SOLC, data["compiler"]
