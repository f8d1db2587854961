"""The patching audit on a fake host: a file tree (dpkg status, APT lists, reboot flag) built from
the fixture files in tests/unit/fixtures/patching, and APT's own answers (apt-cache policy,
apt-config dump) as recorded on a Debian host with the test repository of molecule/patching."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "unit" / "fixtures" / "patching"
MODULE_PATH = ROOT / "plugins" / "modules" / "patching_audit.py"

spec = importlib.util.spec_from_file_location("fleetcare_patching_audit", MODULE_PATH)
patching_audit = importlib.util.module_from_spec(spec)
spec.loader.exec_module(patching_audit)

from ansible_collections.fleetcare.ops.plugins.module_utils import debian  # noqa: E402
from ansible_collections.fleetcare.ops.plugins.module_utils.patching_checks import BY_ID, CHECKS  # noqa: E402

PARAMS = {"lists_max_age_days": 7, "update": "none", "report": True}
NOW = 1_800_000_000.0


def _text(name: str) -> str:
    return (FIXTURES / name).read_text()


def fake_apt(policy_packages: str | None = None, config: str | None = None):
    """APT's answers: apt-cache policy without and with package names, apt-config dump."""
    calls = []

    def runner(argv, timeout=20):
        calls.append(list(argv))
        if argv[0] == "apt-cache" and argv[5] == "policy":
            assert argv[1:5] == ["-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache="], "writes no cache"
            return 0, _text("policy_files.txt") if len(argv) == 6 else (
                policy_packages if policy_packages is not None else _text("policy_packages.txt")), ""
        if argv[:2] == ["apt-config", "dump"]:
            return 0, config if config is not None else _text("apt_config.txt"), ""
        raise AssertionError(f"unexpected command {argv}")

    runner.calls = calls
    return runner


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """A fake podman container root with the fixture dpkg status and one fresh Release file."""
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    shutil.copy(FIXTURES / "dpkg_status", tmp_path / "var/lib/dpkg/status")
    lists = tmp_path / "var/lib/apt/lists"
    lists.mkdir(parents=True)
    shutil.copy(FIXTURES / "Release", lists / "_srv_fc-repo_dists_fc-security_Release")
    (tmp_path / "run").mkdir()
    (tmp_path / "run/.containerenv").write_text("")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/os-release").write_text("ID=debian\nVERSION_CODENAME=bookworm\n")
    return tmp_path


def run(root: Path, runner=None, now: float | None = None, **params):
    found, result = patching_audit.audit(dict(PARAMS, **params), str(root), runner or fake_apt(),
                                         now=time.time() if now is None else now)
    body = found["fleetcare"]
    return {f["id"]: f for f in body["findings"]}, body, result


def test_policy_files_give_each_list_its_release_origin():
    origins = debian.parse_policy_files(_text("policy_files.txt"))
    assert origins["file:/srv/fc-repo fc-security/main"]["label"] == "fleetcare-Security"
    assert origins["http://deb.debian.org/debian bookworm/main"] == {
        "origin": "Debian", "label": "Debian", "suite": "oldstable", "codename": "bookworm"}
    assert [k for k, r in origins.items() if debian.is_security_origin(r)] == [
        "file:/srv/fc-repo fc-security/main", "http://deb.debian.org/debian-security bookworm-security/main"]


def test_policy_packages_versions_and_their_lists():
    policy = debian.parse_policy_packages(_text("policy_packages.txt"))
    assert policy["fc-sec"]["installed"] == "1.0" and policy["fc-sec"]["candidate"] == "1.1"
    assert policy["fc-sec"]["sources"]["1.1"] == ["file:/srv/fc-repo fc-security/main"]
    assert policy["local-only"]["sources"]["0.1"] == []


def test_dpkg_holds_and_installed_packages():
    status = _text("dpkg_status")
    assert debian.parse_dpkg_held(status) == ["fc-held"]
    assert debian.installed_packages(status) == ["bash", "fc-held", "fc-other", "fc-sec", "local-only"]


def test_pending_split_into_security_and_other(host: Path):
    findings, body, result = run(host)
    assert body["expected"] == len(CHECKS) == len(findings) == 6
    sec, other = findings["PTCH-SEC-001"], findings["PTCH-UPD-001"]
    assert (sec["status"], sec["severity"]) == ("fail", "major")
    assert sec["evidence"]["updates"] == [{"package": "fc-sec", "installed": "1.0", "candidate": "1.1",
                                           "origins": ["fleetcare-Security"]}]
    assert other["status"] == "fail"
    assert [u["package"] for u in other["evidence"]["updates"]] == ["fc-other"]
    metrics = {m["name"]: m["value"] for m in body["metrics"]}
    assert metrics["patching_pending_security"] == 1.0 and metrics["patching_pending_other"] == 1.0
    assert result["upgrade"] == []  # update: none


def test_held_package_is_reported_and_never_selected(host: Path):
    findings, _, result = run(host, update="all")
    held = findings["PTCH-HOLD-001"]
    assert held["status"] == "fail"
    assert held["evidence"]["held"] == ["fc-held"]
    assert held["evidence"]["held_with_updates"][0]["package"] == "fc-held"
    assert held["evidence"]["held_with_updates"][0]["security"] is True
    assert result["upgrade"] == ["fc-other=1.1", "fc-sec=1.1"]


def test_security_only_selects_the_security_update(host: Path):
    _, _, result = run(host, update="security")
    assert result["upgrade"] == ["fc-sec=1.1"]


def test_nothing_pending_passes(host: Path):
    policy = "\n".join(line.replace("Candidate: 1.1", "Candidate: 1.0")
                       for line in _text("policy_packages.txt").splitlines())
    findings, _, result = run(host, fake_apt(policy_packages=policy), update="all")
    assert findings["PTCH-SEC-001"]["status"] == findings["PTCH-UPD-001"]["status"] == "pass"
    assert findings["PTCH-HOLD-001"]["status"] == "pass"
    assert result["upgrade"] == []


def test_list_age_judged_against_the_threshold(host: Path):
    release = host / "var/lib/apt/lists/_srv_fc-repo_dists_fc-security_Release"
    changed = os.stat(release).st_ctime
    findings, _, _ = run(host, now=changed + 3 * 86400)
    assert findings["PTCH-LIST-001"]["status"] == "pass"
    assert findings["PTCH-LIST-001"]["evidence"]["days_since_update"] == pytest.approx(3, abs=0.01)
    findings, _, _ = run(host, now=changed + 8 * 86400)
    assert findings["PTCH-LIST-001"]["status"] == "fail"
    release.unlink()
    findings, _, _ = run(host)
    assert findings["PTCH-LIST-001"]["status"] == "error"
    assert "never succeeded" in findings["PTCH-LIST-001"]["evidence"]["reason"]


def test_reboot_required_with_its_reason(host: Path):
    findings, _, _ = run(host)
    assert findings["PTCH-REBOOT-001"]["status"] == "pass"
    (host / "var/run").mkdir(parents=True)
    (host / "var/run/reboot-required").write_text("*** System restart required ***\n")
    (host / "var/run/reboot-required.pkgs").write_text("libc6\nfc-sec\n")
    findings, body, _ = run(host)
    reboot = findings["PTCH-REBOOT-001"]
    assert reboot["status"] == "fail"
    assert reboot["evidence"]["packages"] == ["fc-sec", "libc6"]
    assert "reboot-required (fc-sec, libc6)" in reboot["evidence"]["reason"]
    assert "container" in reboot["evidence"]["note"]
    assert {m["name"]: m["value"] for m in body["metrics"]}["patching_reboot_required"] == 1.0


def test_newer_kernel_outside_a_container_is_a_reason(tmp_path: Path):
    boot = tmp_path / "boot"
    boot.mkdir()
    (boot / "vmlinuz-6.1.0-20-amd64").write_text("")
    pending, evidence = debian.reboot_state("6.1.0-18-amd64", "", str(tmp_path))
    assert pending and "older than the installed 6.1.0-20-amd64" in evidence["reason"]
    pending, evidence = debian.reboot_state("6.1.0-18-amd64", "podman", str(tmp_path))
    assert not pending and evidence["reason"] == ""


def test_unattended_upgrades_installed_and_enabled(host: Path):
    findings, _, _ = run(host)
    uu = findings["PTCH-UU-001"]
    assert uu["status"] == "fail" and uu["evidence"]["installed"] is False and uu["evidence"]["enabled"] is True
    status = host / "var/lib/dpkg/status"
    status.write_text(status.read_text() + "\nPackage: unattended-upgrades\nStatus: install ok installed\n")
    findings, _, _ = run(host)
    assert findings["PTCH-UU-001"]["status"] == "pass"
    disabled = _text("apt_config.txt").replace('Unattended-Upgrade "1"', 'Unattended-Upgrade "0"')
    findings, _, _ = run(host, fake_apt(config=disabled))
    assert findings["PTCH-UU-001"]["status"] == "fail" and findings["PTCH-UU-001"]["evidence"]["enabled"] is False


def test_apt_unusable_makes_every_check_an_error(host: Path):
    def broken(argv, timeout=20):
        return 100, "", "E: Could not open lock file"

    findings, body, result = run(host, broken)
    assert body["expected"] == 6
    assert {f["status"] for f in findings.values()} == {"error"}
    assert "apt-cache policy exited 100" in findings["PTCH-SEC-001"]["evidence"]["reason"]
    assert result["upgrade"] == []


def test_one_policy_call_for_all_packages(host: Path):
    runner = fake_apt()
    run(host, runner)
    policy_calls = [c for c in runner.calls if c[0] == "apt-cache"]
    assert len(policy_calls) == 2 and policy_calls[1][6:] == ["bash", "fc-held", "fc-other", "fc-sec", "local-only"]


def test_every_check_has_its_texts():
    assert set(BY_ID) == set(patching_audit.CHECK_FUNCS)
    for record in CHECKS:
        assert record["id"].startswith("PTCH-") and record["rationale"] and record["remediation"]


def test_the_test_repository_has_one_security_suite(tmp_path: Path):
    """The builder Molecule's prepare uses (needs dpkg-deb and apt-ftparchive, package apt-utils)."""
    from fleetcare_lab import aptrepo

    repo = aptrepo.build(tmp_path / "repo")
    releases = {suite: debian.parse_release((repo / "dists" / suite / "Release").read_text())
                for suite in aptrepo.LABELS}
    assert [s for s, r in releases.items() if debian.is_security_origin(r)] == [aptrepo.SECURITY_SUITE]
    packages = (repo / "dists" / aptrepo.SECURITY_SUITE / "main/binary-amd64/Packages").read_text()
    assert sorted(re.findall(r"^Package: (\S+)\n(?:.+\n)*?Version: (\S+)", packages, re.M)) == [
        ("fc-held", "1.1"), ("fc-sec", "1.1")]
    assert "trusted=yes" in aptrepo.sources()
