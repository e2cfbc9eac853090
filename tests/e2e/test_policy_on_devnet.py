"""`warden plan` / `warden apply` on a whole devnet: the demo app named by its name, devices by node names
from the control plane, and a firmware update that shows up in `plan` as its fix."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.devnet_runbook import DEMO_APP, Devnet
from warden.errors import EXIT_CHANGES_PENDING


def test_policy_plan_apply_after_a_firmware_update(devnet: Devnet, tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    # the app by its name and devices by node name, both through the control plane
    policy.write_text(f'[apps.{DEMO_APP}]\nallow_any_device = false\ndevices = ["prod5", "prod6", "hosted"]\n')
    in_sync = devnet.run("plan", str(policy), "--prune", "--json")
    assert in_sync.exit_code == 0, (in_sync.stdout, in_sync.stderr)
    assert in_sync.json()["sections"][0]["contract"] == devnet.app

    old = devnet.device_of("prod6")
    assert devnet.run("devnet", "node", "update-firmware", "prod6").exit_code == 0
    new = devnet.device_of("prod6")
    drifted = devnet.run("plan", str(policy))
    assert drifted.exit_code == EXIT_CHANGES_PENDING, drifted.stderr
    assert f"+ add device {new} (prod6)" in drifted.stdout
    assert f"device {old} (prod6 (former id)) is on chain but not in the policy" in drifted.stdout

    sent = devnet.sent_by_owner()
    applied = devnet.ok("apply", str(policy), "--prune", "--wait")
    assert [(r["change"], r["status"]) for r in applied["results"]] == [("add-device", "added"),
                                                                        ("remove-device", "removed")]  # fmt: skip
    assert devnet.sent_by_owner() == sent + 2
    assert devnet.allowed_devices()[new] == "prod6" and old not in devnet.allowed_devices()
    rebooted = devnet.run("devnet", "cvm", "reboot", "shared-key-demo-2")
    assert rebooted.exit_code == 0, rebooted.stderr

    again = devnet.ok("apply", str(policy), "--prune", "--wait")
    assert again["results"] == [] and devnet.sent_by_owner() == sent + 2
    assert devnet.run("plan", str(policy), "--prune").exit_code == 0
