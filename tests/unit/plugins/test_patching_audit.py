"""The patching audit on a fake host: a file tree (dpkg status, APT lists, reboot flag) built from
the fixture files in tests/unit/fixtures/patching, and APT's own answers (apt-cache policy,
apt-config dump) as recorded on a Debian host with the test repository of molecule/patching."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
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
from ansible_collections.fleetcare.ops.plugins.module_utils.host import run_cmd  # noqa: E402
from ansible_collections.fleetcare.ops.plugins.module_utils.patching_checks import BY_ID, CHECKS  # noqa: E402

PARAMS = {"lists_max_age_days": 7, "update": "none", "report": True, "lock_wait": 0, "uu_max_age_days": 2,
          "debsecan_source": "", "debsecan_suite": ""}
NOW = 1_800_000_000.0


def _text(name: str) -> str:
    return (FIXTURES / name).read_text()


def fake_apt(policy_packages: str | None = None, config: str | None = None, dpkg_audit: str = "",
             needrestart: str | None = None):
    """APT's answers: apt-cache policy without and with package names, apt-config dump; and
    dpkg --audit and needrestart -b."""
    calls, folders = [], set()

    def runner(argv, timeout=20):
        calls.append(list(argv))
        if argv[0] == "apt-cache" and argv[5] == "policy":
            # never the host's own caches: in memory, or in the call's own temporary folder
            assert argv[1] == argv[3] == "-o", argv
            pkg, src = argv[2].partition("=")[2], argv[4].partition("=")[2]
            assert argv[2].startswith("Dir::Cache::pkgcache=") and argv[4].startswith("Dir::Cache::srcpkgcache=")
            if pkg or src:
                folder = Path(pkg).parent
                assert folder.name.startswith("fleetcare-apt-") and folder.is_dir(), argv
                assert (Path(pkg).name, Path(src).name, Path(src).parent) == ("pkgcache.bin", "srcpkgcache.bin", folder)
                folders.add(folder)
            return 0, _text("policy_files.txt") if len(argv) == 6 else (
                policy_packages if policy_packages is not None else _text("policy_packages.txt")), ""
        if argv[:2] == ["apt-config", "dump"]:
            return 0, config if config is not None else _text("apt_config.txt"), ""
        if argv[0] == "dpkg" and argv[-1] == "--audit":
            return 0, dpkg_audit, ""
        if argv[0] == "needrestart" and needrestart is not None:
            assert argv[1:] == ["-b", "-r", "l"], "list mode only"
            return 0, needrestart, ""
        raise AssertionError(f"unexpected command {argv}")

    runner.calls, runner.folders = calls, folders
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
    assert body["expected"] == len(CHECKS) == len(findings) == 12
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
    uu = findings["PTCH-UU-001"]
    assert uu["status"] == "fail" and "no successful run" in uu["evidence"]["reason"]
    log = host / "var/log/unattended-upgrades/unattended-upgrades.log"
    log.parent.mkdir(parents=True)
    log.write_text("2027-01-14 06:10:01,117 INFO Starting unattended upgrades script\n"
                   "2027-01-14 06:10:09,902 INFO All upgrades installed\n"
                   "2027-01-15 06:10:02,001 ERROR Cache has broken packages, exiting\n")
    success = time.mktime(time.strptime("2027-01-14 06:10:09", "%Y-%m-%d %H:%M:%S"))
    findings, _, _ = run(host, now=success + 86400)
    uu = findings["PTCH-UU-001"]
    assert uu["status"] == "pass", uu
    assert uu["evidence"]["last_success"] == "2027-01-14 06:10:09"
    assert uu["evidence"]["last_error_message"] == "Cache has broken packages, exiting"
    findings, body, _ = run(host, now=success + 3 * 86400)
    assert findings["PTCH-UU-001"]["status"] == "fail"
    assert "3.0 days ago" in findings["PTCH-UU-001"]["evidence"]["reason"]
    assert {m["name"]: m["value"] for m in body["metrics"]}["patching_unattended_days_since_success"] == 3.0
    findings, _, _ = run(host, now=success + 3 * 86400, uu_max_age_days=4)
    assert findings["PTCH-UU-001"]["status"] == "pass"
    disabled = _text("apt_config.txt").replace('Unattended-Upgrade "1"', 'Unattended-Upgrade "0"')
    findings, _, _ = run(host, fake_apt(config=disabled))
    assert findings["PTCH-UU-001"]["status"] == "fail" and findings["PTCH-UU-001"]["evidence"]["enabled"] is False


def test_apt_unusable_makes_every_check_an_error(host: Path):
    def broken(argv, timeout=20):
        return 100, "", "E: Could not open lock file"

    findings, body, result = run(host, broken)
    assert body["expected"] == 12
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


# ------------------------------------------------------------------ after an upgrade, dpkg state

NEEDRESTART_B = """NEEDRESTART-VER: 3.6
NEEDRESTART-KCUR: 6.1.0-18-amd64
NEEDRESTART-KEXP: 6.1.0-18-amd64
NEEDRESTART-KSTA: 1
NEEDRESTART-SVC: ssh.service
NEEDRESTART-SVC: cron.service
NEEDRESTART-SESS: root @ session #3
"""


def _with_package(host: Path, name: str) -> None:
    status = host / "var/lib/dpkg/status"
    status.write_text(status.read_text() + f"\nPackage: {name}\nStatus: install ok installed\nVersion: 1.0\n")


def test_restart_needed_from_needrestart_batch_output(host: Path):
    _with_package(host, "needrestart")
    findings, body, _ = run(host, fake_apt(needrestart=NEEDRESTART_B))
    restart = findings["PTCH-RESTART-001"]
    assert restart["status"] == "fail"
    assert restart["evidence"]["services"] == ["cron.service", "ssh.service"]
    assert restart["evidence"]["sessions"] == ["root @ session #3"]
    assert {m["name"]: m["value"] for m in body["metrics"]}["patching_restart_needed"] == 2.0
    findings, _, _ = run(host, fake_apt(needrestart="NEEDRESTART-VER: 3.6\nNEEDRESTART-KSTA: 1\n"))
    assert findings["PTCH-RESTART-001"]["status"] == "pass"


def test_restart_needed_from_deleted_libraries_without_needrestart(host: Path):
    proc = host / "proc"
    for pid, comm, unit, maps in (
            ("812", "sshd", "0::/system.slice/ssh.service",
             "7f1c2a000000-7f1c2a021000 r-xp 00000000 fe:01 1234 /usr/lib/x86_64-linux-gnu/libssl.so.3 (deleted)\n"
             "7f1c2b000000-7f1c2b001000 rw-s 00000000 00:01 99 /dev/zero (deleted)\n"),
            ("900", "bash", "0::/user.slice/user-0.slice/session-3.scope",
             "55d0c0000000-55d0c0100000 r-xp 00000000 fe:01 77 /usr/bin/bash\n"),
            ("901", "worker", "0::/system.slice/fc-app.service",
             "7f00-7f10 rw-s 00000000 00:05 5 /memfd:pulse (deleted)\n")):
        (proc / pid).mkdir(parents=True)
        (proc / pid / "comm").write_text(comm + "\n")
        (proc / pid / "cgroup").write_text(unit + "\n")
        (proc / pid / "maps").write_text(maps)
    findings, _, _ = run(host)
    restart = findings["PTCH-RESTART-001"]
    assert restart["status"] == "fail"
    assert "needrestart is not installed" in restart["evidence"]["source"]
    assert restart["evidence"]["services"] == ["ssh.service"]
    assert restart["evidence"]["processes"] == [{"pid": 812, "command": "sshd", "unit": "ssh.service",
                                                 "libraries": ["/usr/lib/x86_64-linux-gnu/libssl.so.3"]}]
    (proc / "812" / "maps").write_text("55d0-55d1 r-xp 00000000 fe:01 1 /usr/sbin/sshd\n")
    assert run(host)[0]["PTCH-RESTART-001"]["status"] == "pass"


def test_interrupted_dpkg_blocks_the_update(host: Path):
    findings, _, result = run(host, update="all")
    assert findings["PTCH-DPKG-001"]["status"] == "pass" and result["blocked"] == []
    half = ("The following packages are only half configured, probably due to problems\n"
            "configuring them the first time.  The configuration should be retried using\n"
            "dpkg --configure <package> or the configure menu option in dselect:\n"
            " fc-sec               fleetcare patching test package\n")
    findings, _, result = run(host, fake_apt(dpkg_audit=half), update="all")
    dpkg = findings["PTCH-DPKG-001"]
    assert (dpkg["status"], dpkg["severity"]) == ("fail", "critical")
    assert " fc-sec               fleetcare patching test package" in dpkg["evidence"]["dpkg_audit"]
    assert "dpkg --configure -a" in dpkg["remediation"]
    assert result["blocked"] and result["blocked"][0].startswith("PTCH-DPKG-001")
    updates = host / "var/lib/dpkg/updates"
    updates.mkdir()
    (updates / "0001").write_text("")
    findings, _, result = run(host, update="all")
    assert findings["PTCH-DPKG-001"]["status"] == "fail"
    assert findings["PTCH-DPKG-001"]["evidence"]["journal_files"] == ["0001"]


def _real_dpkg_then_apt(argv, timeout=20):
    if argv[0] == "dpkg":
        return run_cmd(argv, timeout)
    return fake_apt()(argv, timeout)


def test_interrupted_dpkg_for_real(tmp_path: Path):
    """dpkg itself unpacks a package into a private root without configuring it: dpkg --audit
    (run for real, on that root's database) reports it, and the update is blocked."""
    from fleetcare_lab import aptrepo

    repo = aptrepo.build(tmp_path / "repo")
    root = tmp_path / "root"
    admin = root / "var/lib/dpkg"
    (admin / "updates").mkdir(parents=True)
    (admin / "info").mkdir()
    for name in ("status", "available"):
        (admin / name).write_text("")
    deb = repo / "pool" / aptrepo.SECURITY_SUITE / "fc-sec_1.1_all.deb"
    subprocess.run(["dpkg", f"--root={root}", "--force-script-chrootless", "--force-not-root", "--unpack",
                    str(deb)], check=True, capture_output=True)
    (root / "var/lib/apt/lists").mkdir(parents=True)
    shutil.copy(FIXTURES / "Release", root / "var/lib/apt/lists/x_Release")
    findings, _, result = run(root, _real_dpkg_then_apt, update="all")
    dpkg = findings["PTCH-DPKG-001"]
    assert dpkg["status"] == "fail", dpkg
    assert any(line.split()[:1] == ["fc-sec"] for line in dpkg["evidence"]["dpkg_audit"]), dpkg["evidence"]
    assert result["blocked"]
    subprocess.run(["dpkg", f"--root={root}", "--force-script-chrootless", "--force-not-root",
                    "--configure", "-a"], check=True, capture_output=True)
    assert run(root, _real_dpkg_then_apt)[0]["PTCH-DPKG-001"]["status"] == "pass"


HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o640)
fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def _hold(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_held_dpkg_lock_names_its_holder(host: Path):
    """A real fcntl lock on the root's lock-frontend, held by another process, as apt takes it."""
    lock = host / "var/lib/dpkg/lock-frontend"
    holder = _hold(lock, 30)
    try:
        start = time.monotonic()
        findings, _, result = run(host, update="all", lock_wait=1)
        waited = time.monotonic() - start
        found = findings["PTCH-LOCK-001"]
        assert found["status"] == "fail"
        assert found["evidence"]["holders"][0]["pid"] == holder.pid
        assert found["evidence"]["holders"][0]["file"] == "/var/lib/dpkg/lock-frontend"
        assert HOLD_LOCK.strip().splitlines()[0] in found["evidence"]["holders"][0]["command"]
        assert f"held by pid {holder.pid}" in found["evidence"]["reason"]
        assert 1 <= waited < 5, waited  # waited its bound, then reported
        assert result["blocked"] and result["blocked"][0].startswith("PTCH-LOCK-001")
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    findings, _, result = run(host, update="all")
    assert findings["PTCH-LOCK-001"]["status"] == "pass" and result["blocked"] == []


def test_lock_released_within_the_wait_passes(host: Path):
    holder = _hold(host / "var/lib/dpkg/lock", 1)
    try:
        findings, _, result = run(host, update="all", lock_wait=10)
    finally:
        holder.wait()
        holder.stdout.close()
    assert findings["PTCH-LOCK-001"]["status"] == "pass" and result["blocked"] == []


def test_health_and_patching_judge_a_reboot_alike(host: Path):
    """HLTH-REBOOT-001 and PTCH-REBOOT-001 are one implementation (debian.reboot_state)."""
    hi = importlib.import_module("ansible_collections.fleetcare.ops.plugins.module_utils.health_inspection")
    (host / "var/run").mkdir(parents=True)
    (host / "var/run/reboot-required").write_text("*** System restart required ***\n")
    (host / "var/run/reboot-required.pkgs").write_text("libc6\n")
    ctx = type("Ctx", (), {"root": str(host), "container": "podman"})()
    status, _sev, health, _ = hi.check_reboot(ctx)
    patching = run(host)[0]["PTCH-REBOOT-001"]
    assert status == patching["status"] == "fail"
    assert health == patching["evidence"]


# ------------------------------------------------------------------ CVE IDs from debsecan


def _real_debsecan_then_apt(argv, timeout=20):
    if argv[0] == "debsecan":
        return run_cmd(argv, timeout)
    return fake_apt()(argv, timeout)


def test_debsecan_summary_parser():
    assert patching_audit.parse_debsecan_summary(
        "CVE-2026-1 fc-sec (fixed, high urgency)\nCVE-2026-2 fc-sec\nTEMP-0001-AB libx\n\n") == {
        "fc-sec": ["CVE-2026-1", "CVE-2026-2"], "libx": ["TEMP-0001-AB"]}


def test_cve_ids_per_pending_security_update_from_real_debsecan(host: Path, tmp_path_factory):
    """debsecan itself (Debian package, installed on this machine) reads a data file the test
    writes in its own format (fleetcare_lab.aptrepo.debsecan_data) from a file:/// source."""
    from fleetcare_lab import aptrepo

    assert shutil.which("debsecan"), "debsecan is required: apt-get install -y debsecan (CI does)"
    data = aptrepo.debsecan_data(tmp_path_factory.mktemp("debsecan"), ("bookworm",))
    source = data.as_uri() + "/"
    findings, body, _ = run(host, _real_debsecan_then_apt, debsecan_source=source)
    sec = findings["PTCH-SEC-001"]
    assert sec["evidence"]["cve_data"] == "none: debsecan is not installed"  # not in this host's dpkg status
    _with_package(host, "debsecan")
    findings, body, _ = run(host, _real_debsecan_then_apt, debsecan_source=source)
    sec = findings["PTCH-SEC-001"]
    assert sec["evidence"]["cve_data"] == "debsecan", sec["evidence"]
    assert sec["evidence"]["cve_suite"] == "bookworm"  # the host's codename
    assert sec["evidence"]["updates"][0]["package"] == "fc-sec"
    assert sec["evidence"]["updates"][0]["cves"] == ["CVE-2026-10001", "CVE-2026-10002"]
    assert sec["evidence"]["cves"] == ["CVE-2026-10001", "CVE-2026-10002"]
    held = findings["PTCH-HOLD-001"]["evidence"]["held_with_updates"]
    assert held[0]["cves"] == ["CVE-2026-10003"]
    assert "cves" not in findings["PTCH-UPD-001"]["evidence"]["updates"][0]
    assert {m["name"]: m["value"] for m in body["metrics"]}["patching_pending_security_cves"] == 2.0
    # a suite without a data file: the audit goes on, saying why there are no IDs
    findings, _, _ = run(host, _real_debsecan_then_apt, debsecan_source=source, debsecan_suite="trixie")
    sec = findings["PTCH-SEC-001"]
    assert sec["status"] == "fail" and sec["evidence"]["cve_data"].startswith("error: debsecan exited 1")
    assert "cves" not in sec["evidence"]["updates"][0] and sec["evidence"]["cves"] == []


def test_no_debsecan_source_no_cve_ids(host: Path):
    sec = run(host)[0]["PTCH-SEC-001"]
    assert sec["evidence"]["cve_data"] == "none: patching_debsecan_source is not set"


# ------------------------------------------------------------------ the health gate's verdict

def _hf(fid, status, severity, reason=""):
    return {"id": fid, "status": status, "severity": severity, "title": fid.lower(), "evidence": {"reason": reason}}


def test_gate_fails_on_a_new_failure_of_a_gated_severity(host: Path):
    before = [_hf("HLTH-DISK-001", "fail", "major"), _hf("HLTH-UNIT-001", "pass", "critical")]
    after = [_hf("HLTH-DISK-001", "fail", "major"), _hf("HLTH-UNIT-001", "fail", "critical", "fc-app.service failed"),
             _hf("HLTH-LOG-001", "fail", "minor")]
    findings, _, result = run(host, gate={"ran": True, "before": before, "after": after})
    gate = findings["PTCH-GATE-001"]
    assert (gate["status"], gate["severity"]) == ("fail", "critical")
    assert gate["evidence"]["new_failures"] == [{"id": "HLTH-UNIT-001", "severity": "critical",
                                                 "title": "hlth-unit-001", "reason": "fc-app.service failed"}]
    assert gate["evidence"]["failing_before"] == ["HLTH-DISK-001"]  # failing before: not the update's doing
    assert "HLTH-UNIT-001 (critical)" in gate["evidence"]["reason"]
    assert result["gate"]["new_failures"][0]["id"] == "HLTH-UNIT-001"
    findings, _, _ = run(host, gate={"ran": True, "before": before, "after": before})
    assert findings["PTCH-GATE-001"]["status"] == "pass"
    findings, _, _ = run(host, gate={"ran": True, "before": [], "after": after, "severities": ["minor"]})
    assert [f["id"] for f in findings["PTCH-GATE-001"]["evidence"]["new_failures"]] == ["HLTH-LOG-001"]


def test_gate_not_run_or_stopped_is_not_applicable(host: Path):
    assert run(host)[0]["PTCH-GATE-001"]["status"] == "not_applicable"
    assert run(host, gate={"ran": "False", "after": []})[0]["PTCH-GATE-001"]["status"] == "not_applicable"
    gate = run(host, gate={"stopped_by": ["web-2: HLTH-UNIT-001"]})[0]["PTCH-GATE-001"]
    assert gate["status"] == "not_applicable" and "web-2: HLTH-UNIT-001" in gate["evidence"]["reason"]


def test_the_decided_reboot_is_judged_from_the_run_record(host: Path):
    """PTCH-REBOOT-002: not_applicable without a run, and in a container whatever the record says."""
    findings, _, _ = run(host, record_dir="/var/lib/fleetcare/patching")
    assert findings["PTCH-REBOOT-002"]["status"] == "not_applicable"
    records = host / "var/lib/fleetcare/patching"
    records.mkdir(parents=True)
    (records / "last-run.json").write_text(json.dumps({
        "version": 1, "result": "success", "start": NOW, "end": NOW,
        "reboot": {"action": "reboot", "reason": "policy always", "before": {"boot_id": "x"}}}))
    findings, _, _ = run(host, record_dir="/var/lib/fleetcare/patching")
    assert findings["PTCH-REBOOT-002"]["status"] == "not_applicable"
    assert "container" in findings["PTCH-REBOOT-002"]["evidence"]["reason"]


def test_gate_of_a_host_unhealthy_before_fails_naming_the_findings(host: Path):
    before = [_hf("HLTH-CERT-001", "fail", "critical", "expires in 1 day"), _hf("HLTH-LOG-001", "fail", "minor")]
    findings, _, result = run(host, gate={"ran": False, "skipped": True, "before": before})
    gate = findings["PTCH-GATE-001"]
    assert (gate["status"], gate["severity"]) == ("fail", "critical")
    assert gate["evidence"]["failing_before"] == ["HLTH-CERT-001"]  # the minor one is not gated
    assert gate["evidence"]["reason"] == "not patched: unhealthy before patching (HLTH-CERT-001 failing)"
    assert result["gate"]["new_failures"] == []  # a skipped host never stops the rollout
    # only failures of a gated severity make a host unhealthy
    findings, _, _ = run(host, gate={"skipped": "True", "before": before[1:]})
    assert findings["PTCH-GATE-001"]["status"] == "not_applicable"


# ------------------------------------------------------------------ the patch run in one call


RUN_PARAMS = {name: spec.get("default") for name, spec in patching_audit.ARGUMENT_SPEC.items()}


def finding(id_: str, status: str = "pass", severity: str = "critical") -> dict:
    return {"id": id_, "status": status, "severity": severity, "title": id_, "evidence": {"reason": f"{id_} why"}}


class Health:
    """The health checks' answers, one list per call (before, after)."""

    def __init__(self, *answers):
        self.answers, self.calls = list(answers), 0

    def __call__(self):
        self.calls += 1
        return self.answers.pop(0)


def patch(host: Path, check_mode: bool = False, health=None, runner=None, **params):
    from test_patching_run import fake_apt_get

    apt = fake_apt_get(host)
    refreshed = []

    def refresh(max_age, timeout, check, root):
        refreshed.append(root)
        return False, "", None

    gate = {"health": health is not None, "severities": ["critical"]}
    out, error = patching_audit.patch_run(
        {**RUN_PARAMS, "update": "all", "apply": True, "gate": gate, **params}, check_mode, str(host),
        health=health, refresh=refresh, apt=apt, runner=runner or fake_apt(), now=NOW)
    assert error == ""
    return out, apt, refreshed


def test_one_call_reads_apts_origins_once_and_the_package_policy_before_and_after_apt(host: Path):
    runner = fake_apt()
    out, apt, _ = patch(host, runner=runner)
    policies = [argv[6:] for argv in runner.calls if argv[0] == "apt-cache"]
    assert policies.count([]) == 1  # the package files and their origins: apt leaves them as they were
    assert len([names for names in policies if names]) == 2  # what is pending: before apt and after it
    assert apt.calls and out["patching"]["pending"] is not None


def test_the_audits_of_one_call_share_apts_caches_in_a_folder_removed_at_its_end(host: Path):
    runner = fake_apt()
    patch(host, runner=runner)
    policies = [argv for argv in runner.calls if argv[0] == "apt-cache"]
    assert len(policies) == 3
    (folder,) = runner.folders  # one folder for the plan and for the audit after apt
    assert not folder.exists()


def test_apts_caches_fall_back_to_memory_when_the_folder_cannot_hold_them(host: Path):
    answer = fake_apt()

    def runner(argv, timeout=20):
        if argv[0] == "apt-cache" and argv[2] != "Dir::Cache::pkgcache=":
            runner.calls.append(list(argv))
            return 100, "", "E: Unable to write to /tmp/x/pkgcache.bin"
        return answer(argv, timeout)

    runner.calls = answer.calls
    out, _, _ = patch(host, runner=runner)
    memory = [argv for argv in runner.calls if argv[0] == "apt-cache" and argv[2] == "Dir::Cache::pkgcache="]
    assert len(memory) == 3 and out["patching"]["pending"]


def test_one_call_gates_installs_records_and_reports_the_state_left(host: Path):
    health = Health([finding("HLTH-DISK-001")], [finding("HLTH-DISK-001")])
    out, apt, refreshed = patch(host, health=health)
    assert health.calls == 2 and refreshed == [str(host)]
    assert apt.calls[0][0][-2:] == ["fc-other=1.1", "fc-sec=1.1"]  # the plan's choice, held left out
    record = json.loads((host / "var/lib/fleetcare/patching/last-run.json").read_text())
    assert out["record"]["result"] == record["result"] == "success" and out["changed"] is True
    found = {f["id"]: f for f in out["fleetcare"]["findings"]}
    assert found["PTCH-RUN-001"]["status"] == "pass"
    assert found["PTCH-GATE-001"]["status"] == "pass" and out["patching"]["gate"]["ran"] is True


def test_health_worse_after_fails_the_gate_and_names_the_finding(host: Path):
    health = Health([finding("HLTH-CERT-001")], [finding("HLTH-CERT-001", "fail")])
    out, _, _ = patch(host, health=health)
    gate = {f["id"]: f for f in out["fleetcare"]["findings"]}["PTCH-GATE-001"]
    assert gate["status"] == "fail" and "HLTH-CERT-001 (critical)" in gate["evidence"]["reason"]
    assert [f["id"] for f in out["patching"]["gate"]["new_failures"]] == ["HLTH-CERT-001"]


def test_an_unhealthy_host_is_not_patched_and_its_gate_fails(host: Path):
    health = Health([finding("HLTH-UNIT-001", "fail"), finding("HLTH-LOAD-001", "fail", "major")])
    out, apt, _ = patch(host, health=health)
    assert health.calls == 1 and apt.calls == []  # no apt, and no gate after
    assert out["record"]["result"] == "unhealthy" and "HLTH-UNIT-001" in out["record"]["reason"]
    assert "HLTH-LOAD-001" not in out["record"]["reason"]  # major is not gated here
    gate = {f["id"]: f for f in out["fleetcare"]["findings"]}["PTCH-GATE-001"]
    assert gate["status"] == "fail" and gate["evidence"]["failing_before"] == ["HLTH-UNIT-001"]


def test_a_stopped_rollout_touches_nothing_and_runs_no_gate(host: Path):
    health = Health()
    out, apt, refreshed = patch(host, health=health, stopped="the rollout stopped: health gate failed on web-2")
    assert health.calls == 0 and apt.calls == [] and refreshed == []
    assert out["record"]["result"] == "stopped" and out["changed"] is False


def test_a_reboot_to_follow_returns_before_the_gate_after_and_reports_nothing(host: Path):
    (host / "run/.containerenv").unlink()  # not a container: the policy may reboot it
    health = Health([finding("HLTH-TIME-001")])
    out, apt, _ = patch(host, health=health, reboot="always")
    assert out["record"]["reboot"]["action"] == "reboot", out["record"]
    assert apt.calls and health.calls == 1 and "fleetcare" not in out
    # after the reboot: the same module, without apply, runs the gate after and reports
    after = Health([finding("HLTH-TIME-001"), finding("HLTH-CERT-001", "fail")])
    again, error = patching_audit.patch_run(dict(RUN_PARAMS, gate={"health": True, "severities": ["critical"]}),
                                            False, str(host), health=after, runner=fake_apt(), now=NOW)
    assert error == "" and after.calls == 1
    assert [f["id"] for f in again["patching"]["gate"]["new_failures"]] == ["HLTH-CERT-001"]
    assert {f["id"]: f for f in again["fleetcare"]["findings"]}["PTCH-GATE-001"]["status"] == "fail"


def test_check_mode_plans_and_reports_but_changes_nothing(host: Path):
    status = (host / "var/lib/dpkg/status").read_bytes()
    health = Health()
    out, apt, refreshed = patch(host, check_mode=True, health=health)
    assert (health.calls, apt.calls, refreshed) == (0, [], [])
    assert not (host / "var/lib/fleetcare").exists() and (host / "var/lib/dpkg/status").read_bytes() == status
    assert out["record"] == {"result": "check_mode", "planned": ["fc-other=1.1", "fc-sec=1.1"]}
    assert out["changed"] is False and len(out["fleetcare"]["findings"]) == len(CHECKS)


def test_without_apply_an_update_kind_only_audits(host: Path):
    out, apt, refreshed = patch(host, apply=False)
    assert apt.calls == [] and refreshed == [] and "record" not in out
    assert out["patching"]["upgrade"] == ["fc-other=1.1", "fc-sec=1.1"]


def test_gate_options_are_checked_against_the_health_module_in_one_line():
    assert patching_audit.gate_params({"options": {"disk_warn_pct": 80}})[1] == ""
    params, problem = patching_audit.gate_params({"options": {"disk_warn_pctt": 80}})
    assert params is None and problem.startswith("gate.options: ") and "disk_warn_pctt" in problem
    problem = patching_audit.gate_params({"options": {"disk_warn_pct": 99, "disk_critical_pct": 90}})[1]
    assert problem.startswith("gate.options: ") and "disk" in problem


@pytest.mark.parametrize("value", [False, "False", "false", "no", 0, None])
def test_a_gate_switched_off_by_a_template_runs_no_health(host: Path, value):
    health = Health()
    out, error = patching_audit.patch_run(dict(RUN_PARAMS, gate={"health": value}), False, str(host),
                                          health=health, runner=fake_apt(), now=NOW)
    assert error == "" and health.calls == 0 and out["patching"]["gate"]["ran"] is False
