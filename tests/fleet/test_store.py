"""The inventory on SQLite and PostgreSQL: schema from the migrations, tokens, identity history, isolation."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from warden.chain.logcache import CachedScan
from warden.chain.provider_limits import ProviderLimits
from warden.errors import BadInput
from warden.fleet.database import engine_for, head_revision, schema_revision
from warden.fleet.models import Base
from warden.fleet.scan_store import FleetScanCache
from warden.fleet.store import AppView, Fleet, NotFound

APP = "0x" + "11" * 20
OTHER_APP = "0x" + "22" * 20
OLD, NEW = bytes([1]) * 32, bytes([2]) * 32


def test_migrations_create_exactly_the_models_schema(fleet: Fleet) -> None:
    assert schema_revision(fleet.engine) == head_revision()
    with fleet.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_reopening_an_existing_database_keeps_its_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'inv.db'}"
    first = Fleet.open(url)
    workspace, token = first.create_workspace("acme")
    first.close()
    again = Fleet.open(url)  # migrations are idempotent
    assert again.workspace_for_token(token) == workspace
    again.close()


def test_tokens_identify_their_workspace_and_are_stored_hashed(fleet: Fleet) -> None:
    acme, acme_token = fleet.create_workspace("acme")
    beta, beta_token = fleet.create_workspace("beta")
    assert fleet.workspace_for_token(acme_token) == acme
    assert fleet.workspace_for_token(beta_token) == beta
    assert fleet.workspace_for_token(acme_token + "x") is None
    with fleet.engine.connect() as connection:
        stored = [row[0] for row in connection.exec_driver_sql("SELECT token_sha256 FROM api_tokens")]
    assert acme_token not in stored and len(stored) == 2
    with pytest.raises(BadInput, match="exists already"):
        fleet.create_workspace("acme")


def test_a_ppid_change_appends_to_the_history_and_flags_stranded_cvms(fleet: Fleet) -> None:
    acme, _ = fleet.create_workspace("acme")
    fleet.add_node("prod6", region="eu-west")
    fleet.grant(acme, "prod6")
    first = fleet.record_identity("prod6", b"a" * 16, OLD, seen_at=1000)
    assert first.changed and first.old_device_id is None
    fleet.register_app(acme, APP, chain_id=31337, name="demo")
    fleet.register_app(acme, OTHER_APP, chain_id=31337, name="open")
    fleet.add_cvm(acme, "demo-2", app="demo", node="prod6", status="running")
    fleet.add_cvm(acme, "open-1", app="open", node="prod6", status="running")

    same = fleet.record_identity("prod6", b"a" * 16, OLD, seen_at=1500)
    assert not same.changed and same.flagged_cvms == []

    asked: list[tuple[str, bytes]] = []

    def allows(app: AppView, device: bytes) -> bool:
        asked.append((app.address, device))
        return app.address == OTHER_APP  # the second app runs with allowAnyDevice, say

    update = fleet.record_identity("prod6", b"b" * 16, NEW, allows=allows, seen_at=2000)
    assert update.changed and update.old_device_id == OLD and update.flagged_cvms == ["demo-2"]
    assert sorted(asked) == sorted([(APP, NEW), (OTHER_APP, NEW)])

    history = fleet.node_history(acme, "prod6")
    assert [(h.old_device_id, h.device_id, h.first_seen, h.last_seen) for h in history] == [
        (None, OLD, 1000, 1500),
        (OLD, NEW, 2000, 2000),
    ]
    stranded = fleet.find_cvm(acme, "demo-2")
    assert stranded.device_allowed is False and stranded.node_device_id == NEW
    assert stranded.status_reason is not None and "does not allow" in stranded.status_reason
    assert fleet.find_cvm(acme, "open-1").device_allowed is True
    assert fleet.node(acme, "prod6").ppid == b"b" * 16
    (node,) = fleet.nodes(acme)
    assert (node.device_id, node.former_device_ids) == (NEW, (OLD,))
    assert node.inventory_node().former_device_ids == (OLD,)


def test_a_workspace_sees_only_nodes_it_may_deploy_to(fleet: Fleet) -> None:
    acme, _ = fleet.create_workspace("acme")
    beta, _ = fleet.create_workspace("beta")
    for name in ("prod5", "prod9"):
        fleet.add_node(name)
        fleet.record_identity(name, name.encode() * 2, name.encode().ljust(32, b"."))
    fleet.grant(acme, "prod5")
    fleet.grant(beta, "prod9")
    assert [n.name for n in fleet.nodes(acme)] == ["prod5"]
    with pytest.raises(NotFound):
        fleet.node(acme, "prod9")
    with pytest.raises(NotFound):
        fleet.node_history(acme, "prod9")
    fleet.register_app(acme, APP, chain_id=1)
    with pytest.raises(NotFound):
        fleet.add_cvm(acme, "x", app=APP, node="prod9")
    with pytest.raises(NotFound):
        fleet.app(beta, APP)


def test_cvms_are_found_by_name_uuid_or_instance_id(fleet: Fleet) -> None:
    acme, _ = fleet.create_workspace("acme")
    fleet.add_node("hosted")
    fleet.grant(acme, "hosted")
    fleet.register_app(acme, APP, chain_id=1, name="demo")
    cvm = fleet.add_cvm(acme, "demo-selfhost", app=APP, node="hosted", instance_id=bytes(range(20)))
    for key in ("demo-selfhost", cvm.uuid, cvm.uuid.upper(), "0x" + bytes(range(20)).hex(), bytes(range(20)).hex()):
        assert fleet.find_cvm(acme, key).name == "demo-selfhost"
    with pytest.raises(NotFound, match="by name, UUID or instance id"):
        fleet.find_cvm(acme, "nope")
    for key in ("demo-selfhost", cvm.uuid, bytes(range(20)).hex()):  # a CVM stands for its app
        assert fleet.app(acme, key).address == APP
    with pytest.raises(NotFound, match="unknown app 'nope'"):
        fleet.app(acme, "nope")
    with pytest.raises(BadInput, match="exists already"):
        fleet.add_cvm(acme, "demo-selfhost", app=APP, node="hosted")
    with pytest.raises(BadInput, match="invalid CVM status"):
        fleet.set_cvm_status(acme, "demo-selfhost", "exploded")


def test_bad_database_urls_are_refused_clearly() -> None:
    with pytest.raises(BadInput, match="invalid database URL"):
        engine_for("not a url")
    with pytest.raises(BadInput, match="unsupported database"):
        engine_for("mysql://root@127.0.0.1/test")


def test_a_workspace_made_with_a_configured_token_has_that_token_only(fleet: Fleet) -> None:
    token = "wdn_" + "c" * 40
    ref = fleet.ensure_workspace("devnet", token)
    assert fleet.ensure_workspace("devnet", token) == ref  # the next start finds it
    assert fleet.workspace_for_token(token) == ref
    assert {w.name: w.tokens for w in fleet.workspaces()} == {"devnet": 1}  # no token nobody was shown


def test_the_scan_cache_keeps_logs_limits_and_block_times_in_the_database(fleet: Fleet) -> None:
    """The control plane's ScanCache: what one opening wrote, another (a restart, another worker) reads."""
    key = "31337:0xabc:0xtopic"
    log = {"blockNumber": "0x10", "logIndex": "0x0", "data": "0x", "topics": ["0xtopic"]}
    first = FleetScanCache(fleet)
    assert first.get(key) is None and first.get_limits("endpoint") is None and first.get_block_times(["0x1"]) == {}
    first.put(key, CachedScan(16, "0xhash16", [log]))
    first.put(key, CachedScan(20, "0xhash20", [log, log | {"blockNumber": "0x14"}]))  # replaces the row
    first.put_limits("endpoint", ProviderLimits(10_000, 100, True, None))
    first.put_limits("endpoint", ProviderLimits(8_000, 50, False, True))
    first.put_block_times({"0xaa": 1_700_000_000, "0xbb": 1_700_000_002})
    first.put_block_times({"0xaa": 1_700_000_000, "0xcc": 1_700_000_004})  # known ones are kept, not doubled

    again = FleetScanCache(fleet)  # the tables exist already
    cached = again.get(key)
    assert cached is not None and (cached.scanned_to, cached.block_hash, len(cached.logs)) == (20, "0xhash20", 2)
    assert cached.logs[0] == log
    assert again.get_limits("endpoint") == ProviderLimits(8_000, 50, False, True)
    hashes = [f"0x{i:064x}" for i in range(1_200)]  # more than one IN (...) query
    again.put_block_times({h: i for i, h in enumerate(hashes)})
    assert again.get_block_times(["0xaa", "0xcc", "0xdd"]) == {"0xaa": 1_700_000_000, "0xcc": 1_700_000_004}
    assert again.get_block_times(hashes) == {h: i for i, h in enumerate(hashes)}
    again.drop(key)
    assert again.get(key) is None and first.get(key) is None


def test_the_revision_moves_with_every_inventory_change_and_only_then(fleet: Fleet) -> None:
    acme, _ = fleet.create_workspace("acme")
    start = fleet.revision()
    fleet.add_node("prod5", region="eu")
    fleet.grant(acme, "prod5")
    app = fleet.register_app(acme, "0x" + "ab" * 20, chain_id=31337)
    fleet.add_cvm(acme, "web-1", app=app.address, node="prod5")
    after_writes = fleet.revision()
    assert after_writes >= start + 4

    fleet.nodes(acme), fleet.cvms(acme), fleet.apps(acme), fleet.placements(acme, app.address)  # reads
    fleet.issue_token(acme, "ci")  # not the inventory
    assert fleet.revision() == after_writes

    fleet.set_cvm_status(acme, "web-1", "stopped")
    assert fleet.revision() == after_writes + 1
