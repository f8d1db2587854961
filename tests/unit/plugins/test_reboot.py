"""The shared reboot primitive (module_utils/reboot.py): the state kept before a reboot, and the
proof after it, judged on fake roots (a boot ID file, kernels in /boot)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.fleetcare.ops.plugins.module_utils.findings import NotApplicable
from ansible_collections.fleetcare.ops.plugins.module_utils.reboot import boot_state, judge_reboot

OLD, NEW = "6.1.0-37-cloud-amd64", "6.1.0-41-cloud-amd64"


def _root(tmp_path: Path, boot_id: str, kernels=(OLD,)) -> Path:
    (tmp_path / "proc/sys/kernel/random").mkdir(parents=True, exist_ok=True)
    (tmp_path / "proc/sys/kernel/random/boot_id").write_text(boot_id + "\n")
    (tmp_path / "proc/uptime").write_text("12.50 20.00\n")
    (tmp_path / "boot").mkdir(exist_ok=True)
    for release in kernels:
        (tmp_path / "boot" / f"vmlinuz-{release}").write_text("")
    return tmp_path


def test_boot_state_reads_the_boot_id_and_the_kernels(tmp_path: Path):
    state = boot_state(str(_root(tmp_path, "aaaa", (OLD, NEW))), running=OLD)
    assert state == {"boot_id": "aaaa", "running_kernel": OLD, "newest_installed_kernel": NEW,
                     "uptime_seconds": 12}


def test_a_reboot_into_the_newest_kernel_passes(tmp_path: Path):
    before = boot_state(str(_root(tmp_path, "aaaa", (OLD, NEW))), running=OLD)
    after = boot_state(str(_root(tmp_path, "bbbb", (OLD, NEW))), running=NEW)
    status, evidence = judge_reboot({"action": "reboot", "reason": "policy smart", "before": before}, after)
    assert status == "pass"
    assert evidence["rebooted"] and evidence["runs_newest_kernel"]
    assert (evidence["boot_id_before"], evidence["boot_id_after"]) == ("aaaa", "bbbb")
    assert (evidence["kernel_before"], evidence["running_kernel"]) == (OLD, NEW)


def test_the_same_boot_id_fails(tmp_path: Path):
    state = boot_state(str(_root(tmp_path, "aaaa")), running=OLD)
    status, evidence = judge_reboot({"action": "reboot", "before": state}, state)
    assert status == "fail" and not evidence["rebooted"]
    assert "did not reboot" in evidence["problems"][0]


def test_coming_back_on_an_older_kernel_fails(tmp_path: Path):
    before = boot_state(str(_root(tmp_path, "aaaa", (OLD, NEW))), running=OLD)
    after = boot_state(str(_root(tmp_path, "bbbb", (OLD, NEW))), running=OLD)
    status, evidence = judge_reboot({"action": "reboot", "before": before}, after)
    assert status == "fail" and evidence["rebooted"] and not evidence["runs_newest_kernel"]
    assert NEW in evidence["problems"][0]


@pytest.mark.parametrize("decision, words", [
    ({"action": "not_applicable", "reason": "this is a podman container"}, "podman container"),
    ({"action": "none", "reason": "policy never"}, "no reboot was decided (policy never)"),
    (None, "no reboot was decided"),
])
def test_no_reboot_decided_is_not_applicable(tmp_path: Path, decision, words):
    with pytest.raises(NotApplicable, match=words.replace("(", r"\(").replace(")", r"\)")):
        judge_reboot(decision, boot_state(str(_root(tmp_path, "aaaa"))))
