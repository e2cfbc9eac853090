"""The node inventory (`--nodes-file` / WARDEN_NODES_FILE): JSON, TOML and `phala nodes ls --json` files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from warden.errors import BadInput
from warden.fleet.inventory import Inventory, Node, load_nodes_file

ID_A = "ab" * 32
ID_B = "cd" * 32


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_json_list_with_and_without_0x_and_any_case(tmp_path: Path) -> None:
    nodes = [
        {"name": "prod1", "device_id": "0x" + ID_A, "ppid": "0x" + "01" * 16, "region": "us-east"},
        {"name": "prod2", "device_id": ID_B.upper()},
        {"name": "spare", "device_id": "0X" + ID_B[:62] + "ee"},
    ]
    inventory = load_nodes_file(write(tmp_path / "nodes.json", json.dumps(nodes)))
    assert [n.name for n in inventory.nodes] == ["prod1", "prod2", "spare"]
    prod1, prod2, spare = inventory.nodes
    assert prod1.device_id == bytes.fromhex(ID_A)
    assert prod1.ppid == bytes.fromhex("01" * 16)
    assert prod1.region == "us-east"
    assert prod2.device_id == bytes.fromhex(ID_B)
    assert prod2.ppid is None and prod2.region is None
    assert spare.device_id == bytes.fromhex(ID_B[:62] + "ee")
    assert inventory.name_for_device(bytes.fromhex(ID_B)) == "prod2"
    assert inventory.name_for_device(bytes(32)) is None
    assert prod1.as_json() == {
        "name": "prod1",
        "device_id": "0x" + ID_A,
        "ppid": "0x" + "01" * 16,
        "region": "us-east",
        "status": None,
        "former_device_ids": [],
    }


def test_toml_nodes_tables(tmp_path: Path) -> None:
    text = f"""
[[nodes]]
name = "prod1"
device_id = "0x{ID_A}"
region = "eu"

[[nodes]]
name = "prod2"
device_id = "{ID_B.upper()}"
"""
    inventory = load_nodes_file(write(tmp_path / "nodes.toml", text))
    assert [(n.name, n.device_id, n.region) for n in inventory.nodes] == [
        ("prod1", bytes.fromhex(ID_A), "eu"),
        ("prod2", bytes.fromhex(ID_B), None),
    ]


def test_phala_nodes_ls_json_with_a_null_device_id(tmp_path: Path) -> None:
    phala = {
        "success": True,
        "items": [
            {
                "object_type": "node",
                "id": 17,
                "name": "prod6",
                "region": "us-west",
                "device_id": ID_A,
                "ppid": "0x" + "9f" * 16,
                "status": "online",
                "version": "0.5.3",
            },
            {
                "object_type": "node",
                "id": 18,
                "name": "prod7",
                "region": "us-west",
                "device_id": None,
                "ppid": None,
                "status": "provisioning",
                "version": "0.5.3",
            },
        ],
        "total": 2,
        "page": 1,
        "page_size": 50,
    }
    inventory = load_nodes_file(write(tmp_path / "phala.json", json.dumps(phala)))
    assert len(inventory) == 2
    prod6, prod7 = inventory.nodes
    assert (prod6.name, prod6.device_id, prod6.status) == ("prod6", bytes.fromhex(ID_A), "online")
    assert prod6.ppid == bytes.fromhex("9f" * 16)
    assert (prod7.name, prod7.device_id, prod7.status) == ("prod7", None, "provisioning")


def test_names_match_case_insensitively_and_may_be_ambiguous() -> None:
    inventory = Inventory([Node("Prod1", bytes.fromhex(ID_A)), Node("prod1", bytes.fromhex(ID_B)), Node("x", None)])
    assert [n.device_id for n in inventory.matching(" PROD1 ")] == [bytes.fromhex(ID_A), bytes.fromhex(ID_B)]
    assert inventory.matching("prod2") == []


def test_former_device_ids_name_the_node_that_presented_them(tmp_path: Path) -> None:
    """After a firmware update the old id still on an allowlist is `prod6 (former id)`, not an unknown device;
    an id another node presents now is that node's."""
    old, new, reused = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32
    entries = [
        {"name": "prod6", "device_id": "0x" + new.hex(), "former_device_ids": ["0x" + old.hex(), reused.hex()]},
        {"name": "prod9", "device_id": reused.hex()},
    ]
    inventory = load_nodes_file(write(tmp_path / "nodes.json", json.dumps(entries)))
    assert inventory.former_names() == {old: "prod6"}
    assert [inventory.label_for_device(d) for d in (new, old, reused, bytes(32))] == [
        "prod6",
        "prod6 (former id)",
        "prod9",
        None,
    ]
    assert inventory.nodes[0].as_json()["former_device_ids"] == ["0x" + old.hex(), "0x" + reused.hex()]
    bad = [{"name": "prod6", "device_id": new.hex(), "former_device_ids": "0x01"}]
    with pytest.raises(BadInput, match=r"node 1 \(prod6\): former_device_ids: expected a list"):
        load_nodes_file(write(tmp_path / "bad.json", json.dumps(bad)))


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(BadInput, match=r"nodes file .*nope\.json does not exist"):
        load_nodes_file(missing)


@pytest.mark.parametrize(
    ("name", "text", "phrase"),
    [
        ("nodes.json", '[{"name": "prod1", "device_id": ', "is not valid JSON"),
        ("nodes.toml", "[[nodes]]\nname = prod1\n", "is not valid TOML"),
        ("nodes.json", '{"machines": []}', "expected a list of nodes"),
        ("nodes.json", '"prod1"', "expected a list of nodes"),
    ],
)
def test_unparseable_files_name_the_file(tmp_path: Path, name: str, text: str, phrase: str) -> None:
    path = write(tmp_path / name, text)
    with pytest.raises(BadInput) as caught:
        load_nodes_file(path)
    assert str(path) in str(caught.value)
    assert phrase in str(caught.value)


def test_entry_without_name_says_which_entry(tmp_path: Path) -> None:
    path = write(tmp_path / "nodes.json", json.dumps([{"name": "ok", "device_id": ID_A}, {"device_id": ID_B}]))
    with pytest.raises(BadInput) as caught:
        load_nodes_file(path)
    assert str(path) in str(caught.value)
    assert "node 2" in str(caught.value) and "missing `name`" in str(caught.value)


@pytest.mark.parametrize("bad_id", ["0x" + "ab" * 31, "ab" * 33, "0x" + "zz" * 32])
def test_malformed_device_id_names_the_file_and_the_node(tmp_path: Path, bad_id: str) -> None:
    nodes = [{"name": "prod1", "device_id": ID_A}, {"name": "prod2", "device_id": bad_id}]
    path = write(tmp_path / "nodes.json", json.dumps(nodes))
    with pytest.raises(BadInput) as caught:
        load_nodes_file(path)
    message = str(caught.value)
    assert str(path) in message and "prod2" in message and "device_id" in message
    assert "prod1" not in message


@pytest.mark.parametrize("bad_ppid", ["0x811dca2a", "01" * 17, "zz" * 16])
def test_a_ppid_in_a_nodes_file_must_be_16_bytes(tmp_path: Path, bad_ppid: str) -> None:
    path = write(tmp_path / "nodes.json", json.dumps([{"name": "prod1", "device_id": ID_A, "ppid": bad_ppid}]))
    with pytest.raises(BadInput) as caught:
        load_nodes_file(path)
    message = str(caught.value)
    assert str(path) in message and "prod1" in message and "ppid" in message


def test_malformed_device_id_in_toml_names_the_file_and_the_node(tmp_path: Path) -> None:
    path = write(tmp_path / "nodes.toml", '[[nodes]]\nname = "edge9"\ndevice_id = "0x1234"\n')
    with pytest.raises(BadInput, match=r"nodes\.toml.*edge9.*device_id.*expected 32 bytes"):
        load_nodes_file(path)
