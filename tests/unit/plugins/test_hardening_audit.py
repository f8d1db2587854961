"""fleetcare.ops.hardening_audit: each kind judged against fixture text, no Ansible run.

The sshd -T fixtures were captured from the lab images (Debian 11 and 13, default sshd_config).
"""

from __future__ import annotations

import grp
import importlib.util
import os
import pwd
import stat
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
MODULE_PATH = ROOT / "plugins" / "modules" / "hardening_audit.py"
FIXTURES = ROOT / "tests" / "unit" / "fixtures" / "hardening"
CATALOG = yaml.safe_load((ROOT / "roles" / "hardening" / "vars" / "catalog.yml").read_text())["__hardening_catalog"]


def _load_module():
    spec = importlib.util.spec_from_file_location("fleetcare_hardening_audit", MODULE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ha = _load_module()

from ansible_collections.fleetcare.ops.plugins.module_utils import debian, host, sshd  # noqa: E402

ME = pwd.getpwuid(os.getuid()).pw_name
MY_GROUP = grp.getgrgid(os.getgid()).gr_name


def write(root: Path, rel: str, text: str, mode: int | None = None) -> Path:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mode is not None:
        path.chmod(mode)
    return path


def control(kind, params, cid="HARD-TEST-001", severity="minor", container=True, **extra):
    return dict({"id": cid, "title": "test " + cid, "severity": severity, "kind": kind, "params": params,
                 "applies_in_container": container, "remediation": "fix it", "references": ["Lynis TEST-0001"]},
                **extra)


class FakeRunner:
    """Answers commands from a table; records what was run."""

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.calls = []

    def __call__(self, argv, timeout=None):
        self.calls.append(list(argv))
        for prefix, answer in self.answers.items():
            if tuple(argv[: len(prefix)]) == prefix:
                if isinstance(answer, Exception):
                    raise answer
                return answer
        raise ha.CheckError(f"{argv[0]} is not installed")


# ---------------------------------------------------------------- sshd_option


@pytest.fixture(scope="module")
def sshd11():
    return sshd.parse_sshd_t((FIXTURES / "sshd-T-debian11.txt").read_text())


@pytest.fixture(scope="module")
def sshd13():
    return sshd.parse_sshd_t((FIXTURES / "sshd-T-debian13.txt").read_text())


def test_sshd_simple_values(sshd13):
    assert ha.eval_sshd_option({"option": "permitemptypasswords", "value": "no"}, sshd13)[0] == "pass"
    status, evidence = ha.eval_sshd_option({"option": "x11forwarding", "value": "no"}, sshd13)
    assert status == "fail" and evidence["expected"] == "no" and evidence["actual"] == "yes"


def test_sshd_values_compare_case_insensitively(sshd13):
    assert ha.eval_sshd_option({"option": "LogLevel", "value": "info"}, sshd13)[0] == "pass"


def test_sshd_permitrootlogin_alias(sshd13):
    # sshd -T prints the default prohibit-password under its old name.
    assert sshd13["permitrootlogin"] == ["without-password"]
    assert ha.eval_sshd_option({"option": "permitrootlogin", "value": "prohibit-password"}, sshd13)[0] == "pass"
    assert ha.eval_sshd_option({"option": "permitrootlogin", "value": "no"}, sshd13)[0] == "fail"


def test_sshd_removal_lists_with_wildcards(sshd11, sshd13):
    weak_macs = {"option": "macs", "value": "-hmac-md5*,hmac-ripemd160*,hmac-sha1-96*,umac-64*"}
    status, evidence = ha.eval_sshd_option(weak_macs, sshd13)
    assert status == "fail"
    assert evidence["offenders"] == ["umac-64-etm@openssh.com", "umac-64@openssh.com"]
    cbc = {"option": "ciphers", "value": "-3des-cbc,aes128-cbc,aes192-cbc,aes256-cbc"}
    assert ha.eval_sshd_option(cbc, sshd11)[0] == "pass"


def test_sshd_full_lists_compare_as_sets():
    effective = sshd.parse_sshd_t("ciphers aes256-gcm@openssh.com,chacha20-poly1305@openssh.com\n")
    wanted = {"option": "ciphers", "value": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com"}
    assert ha.eval_sshd_option(wanted, effective)[0] == "pass"


def test_sshd_multi_line_options_compare_as_sets():
    effective = sshd.parse_sshd_t("allowgroups sudo\nallowgroups root\n")
    assert ha.eval_sshd_option({"option": "allowgroups", "value": "root sudo"}, effective)[0] == "pass"
    assert ha.eval_sshd_option({"option": "allowgroups", "value": "root"}, effective)[0] == "fail"
    status, evidence = ha.eval_sshd_option({"option": "allowgroups", "value": "root"}, {})
    assert status == "fail" and evidence["actual"] == ""


def test_sshd_unknown_option_fails_with_reason(sshd11):
    status, evidence = ha.eval_sshd_option({"option": "requiredrsasize", "value": "2048"}, sshd11)
    assert status == "fail" and evidence["actual"] is None and "does not know" in evidence["reason"]


def test_every_catalog_sshd_option_exists_on_debian_11_and_13(sshd11, sshd13):
    for record in CATALOG:
        if record["kind"] == "sshd_option" and record["params"]["option"] not in sshd.LIST_LINE_OPTIONS:
            option = record["params"]["option"]
            assert option in sshd11 and option in sshd13, record["id"]


# ---------------------------------------------------------------- sysctl


def test_sysctl_whitespace_normalised():
    assert ha.eval_sysctl({"key": "kernel.printk", "value": "4 4 1 7"}, "4\t4\t1\t7\n")[0] == "pass"
    status, evidence = ha.eval_sysctl({"key": "kernel.kptr_restrict", "value": "2"}, "0\n")
    assert status == "fail" and evidence == {"key": "kernel.kptr_restrict", "expected": "2", "actual": "0"}


def test_sysctl_missing_key_is_not_applicable(tmp_path):
    finding = ha.audit_one(control("sysctl", {"key": "kernel.nope", "value": "1"}, container=False),
                           ha.Host(str(tmp_path)), in_container=False)
    assert finding["status"] == "not_applicable" and "no kernel.nope" in finding["evidence"]["reason"]


def test_sysctl_read_from_proc(tmp_path):
    write(tmp_path, "/proc/sys/net/ipv4/tcp_syncookies", "1\n")
    finding = ha.audit_one(control("sysctl", {"key": "net.ipv4.tcp_syncookies", "value": "1"}),
                           ha.Host(str(tmp_path)), in_container=False)
    assert finding["status"] == "pass"


def test_network_sysctl_in_a_container_is_judged_where_writable(tmp_path):
    # A system container (user namespace, /proc/sys writable) owns its network namespace's keys.
    write(tmp_path, "/proc/sys/net/ipv4/conf/all/log_martians", "0\n")
    rec = control("sysctl", {"key": "net.ipv4.conf.all.log_martians", "value": "1"})
    finding = ha.audit_one(rec, ha.Host(str(tmp_path), in_container=True), in_container=True)
    assert finding["status"] == "fail" and finding["evidence"]["actual"] == "0"


def test_network_sysctl_in_a_read_only_container_is_not_applicable(tmp_path, monkeypatch):
    # An application container: the engine mounts /proc/sys read-only (as root, os.access cannot
    # show that on a test file, so the one probe is replaced).
    write(tmp_path, "/proc/sys/net/ipv4/conf/all/log_martians", "0\n")
    host = ha.Host(str(tmp_path), in_container=True)
    monkeypatch.setattr(host, "sysctl_writable", lambda key: False)
    rec = control("sysctl", {"key": "net.ipv4.conf.all.log_martians", "value": "1"})
    finding = ha.audit_one(rec, host, in_container=True)
    assert finding["status"] == "not_applicable"
    assert "read-only" in finding["evidence"]["reason"] and finding["evidence"]["actual"] == "0"
    # Outside a container the same key is judged, writable or not (audit as an unprivileged user).
    host = ha.Host(str(tmp_path), in_container=False)
    monkeypatch.setattr(host, "sysctl_writable", lambda key: False)
    assert ha.audit_one(rec, host, in_container=False)["status"] == "fail"


def test_unless_present_makes_a_control_not_applicable_where_the_host_needs_it(tmp_path):
    write(tmp_path, "/proc/sys/net/ipv4/ip_forward", "1\n")
    rec = control("sysctl", {"key": "net.ipv4.ip_forward", "value": "0",
                             "unless_present": ["/usr/bin/dockerd", "/usr/sbin/libvirtd"]})
    assert ha.audit_one(rec, ha.Host(str(tmp_path)), in_container=False)["status"] == "fail"
    write(tmp_path, "/usr/sbin/libvirtd", "")
    finding = ha.audit_one(rec, ha.Host(str(tmp_path)), in_container=False)
    assert finding["status"] == "not_applicable"
    assert finding["evidence"]["unless_present"] == ["/usr/sbin/libvirtd"]
    assert "/usr/sbin/libvirtd is installed" in finding["evidence"]["reason"]


# ---------------------------------------------------------------- apt_source

SECURITY = {"suite": "{codename}-security", "uri": "http://deb.debian.org/debian-security", "components": "main"}


def test_apt_source_missing_suite_fails(tmp_path):
    write(tmp_path, "/etc/os-release", 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n')
    write(tmp_path, "/etc/apt/sources.list", "deb http://deb.debian.org/debian bookworm main\n")
    finding = ha.audit_one(control("apt_source", SECURITY), ha.Host(str(tmp_path)), in_container=False)
    assert finding["status"] == "fail"
    assert finding["evidence"]["suite"] == "bookworm-security"
    assert "no enabled deb source" in finding["evidence"]["actual"]


@pytest.mark.parametrize(("rel", "text"), [
    ("/etc/apt/sources.list",
     "# deb http://deb.debian.org/debian-security bookworm-security main\n"
     "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/sec"
     " bookworm-security main\n"),
    ("/etc/apt/sources.list.d/debian.sources",
     "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
     "Types: deb deb-src\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n"
     "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"),
])
def test_apt_source_any_mirror_one_line_or_deb822_passes(tmp_path, rel, text):
    write(tmp_path, "/etc/os-release", "VERSION_CODENAME=bookworm\n")
    write(tmp_path, rel, text)
    finding = ha.audit_one(control("apt_source", SECURITY), ha.Host(str(tmp_path)), in_container=False)
    assert finding["status"] == "pass", finding["evidence"]
    assert any("bookworm-security" in entry for entry in finding["evidence"]["actual"])


@pytest.mark.parametrize("text", [
    "# deb http://deb.debian.org/debian-security bookworm-security main\n",
    "deb-src http://deb.debian.org/debian-security bookworm-security main\n",
    "deb http://deb.debian.org/debian-security bullseye-security main\n",
])
def test_apt_source_commented_source_only_or_other_release_fails(tmp_path, text):
    write(tmp_path, "/etc/os-release", "VERSION_CODENAME=bookworm\n")
    write(tmp_path, "/etc/apt/sources.list.d/security.list", text)
    assert ha.audit_one(control("apt_source", SECURITY), ha.Host(str(tmp_path)), in_container=False)["status"] == "fail"


def test_apt_source_disabled_deb822_stanza_fails(tmp_path):
    write(tmp_path, "/etc/os-release", "VERSION_CODENAME=trixie\n")
    write(tmp_path, "/etc/apt/sources.list.d/debian.sources",
          "Enabled: no\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: trixie-security\n"
          "Components: main\n")
    assert ha.audit_one(control("apt_source", SECURITY), ha.Host(str(tmp_path)), in_container=False)["status"] == "fail"


def test_apt_source_without_codename_is_not_applicable(tmp_path):
    write(tmp_path, "/etc/os-release", 'PRETTY_NAME="Debian GNU/Linux trixie/sid"\n')
    finding = ha.audit_one(control("apt_source", SECURITY), ha.Host(str(tmp_path)), in_container=False)
    assert finding["status"] == "not_applicable" and "VERSION_CODENAME" in finding["evidence"]["reason"]


# ---------------------------------------------------------------- file_mode


def mode_control(path, mode, **more):
    return control("file_mode", dict({"path": path, "mode": mode}, **more))


def audit_at(tmp_path, rec, runner=None):
    return ha.audit_one(rec, ha.Host(str(tmp_path), runner or FakeRunner()), in_container=False)


def test_file_mode_pass_and_excess_bits(tmp_path):
    write(tmp_path, "/etc/shadow", "x", 0o640)
    assert audit_at(tmp_path, mode_control("/etc/shadow", "0640", owner=ME, group=MY_GROUP))["status"] == "pass"
    assert audit_at(tmp_path, mode_control("/etc/shadow", "0644"))["status"] == "pass"  # stricter is fine
    found = audit_at(tmp_path, mode_control("/etc/shadow", "0600"))
    assert found["status"] == "fail"
    assert found["evidence"]["offenders"] == [{"path": "/etc/shadow", "problems": ["mode 0640 exceeds 0600"]}]


def test_file_mode_owner_and_group(tmp_path):
    write(tmp_path, "/etc/crontab", "x", 0o600)
    found = audit_at(tmp_path, mode_control("/etc/crontab", "0600", owner="no-such-owner"))
    assert found["status"] == "fail"
    assert f"owner {ME}, not no-such-owner" in found["evidence"]["offenders"][0]["problems"]


def test_file_mode_glob_and_absent(tmp_path):
    write(tmp_path, "/etc/ssh/ssh_host_rsa_key", "k", 0o600)
    write(tmp_path, "/etc/ssh/ssh_host_ed25519_key", "k", 0o644)
    found = audit_at(tmp_path, mode_control("/etc/ssh/ssh_host_*_key", "0600"))
    assert found["status"] == "fail" and found["evidence"]["checked"] == 2
    assert [o["path"] for o in found["evidence"]["offenders"]] == ["/etc/ssh/ssh_host_ed25519_key"]
    absent = audit_at(tmp_path, mode_control("/boot/grub/grub.cfg", "0600"))
    assert absent["status"] == "pass" and absent["evidence"]["actual"] == "absent"


def test_mode_excess_keeps_special_bits():
    assert ha.mode_excess(stat.S_IFDIR | 0o2755, 0o2755) == 0
    assert ha.mode_excess(stat.S_IFREG | 0o4755, 0o755) == 0o4000


# ---------------------------------------------------------------- config_line / ini_option / file_*

LOGIN_DEFS = """# comment
#PASS_MAX_DAYS 30
PASS_MAX_DAYS\t99999
UMASK\t\t022
UMASK\t\t027
ENV_SUPATH\tPATH=/usr/local/sbin:/usr/sbin:/usr/bin
"""


def test_config_line_last_uncommented_wins():
    params = {"path": "/etc/login.defs", "key": "UMASK", "value": "027", "separator": "\t"}
    assert ha.eval_config_line(params, LOGIN_DEFS)[0] == "pass"
    status, evidence = ha.eval_config_line(dict(params, key="PASS_MAX_DAYS", value="365"), LOGIN_DEFS)
    assert status == "fail" and evidence["actual"] == "99999"


def test_config_line_equals_separator_and_missing():
    text = "# minlen = 8\nminlen = 14\ndifok=2\n"
    params = {"path": "/etc/security/pwquality.conf", "key": "minlen", "value": "14", "separator": " = "}
    assert ha.eval_config_line(params, text)[0] == "pass"
    assert ha.eval_config_line(dict(params, key="difok", value="2"), text)[0] == "pass"
    status, evidence = ha.eval_config_line(dict(params, key="maxrepeat", value="3"), text)
    assert status == "fail" and evidence["reason"] == "maxrepeat is not set"
    status, evidence = ha.eval_config_line(params, None)
    assert status == "fail" and "does not exist" in evidence["reason"]


def test_config_line_value_with_spaces():
    params = {"path": "/etc/chrony/chrony.conf", "key": "makestep", "value": "1 3"}
    assert ha.eval_config_line(params, "pool 2.debian.pool.ntp.org iburst\nmakestep  1   3\n")[0] == "pass"


def test_ini_option_sections():
    text = "[Journal]\nStorage=auto\n[Journal]\n# Storage=volatile\nStorage = persistent\n[Other]\nCompress=no\n"
    params = {"path": "/etc/systemd/journald.conf.d/x.conf", "section": "Journal", "option": "Storage",
              "value": "persistent"}
    assert ha.eval_ini_option(params, text)[0] == "pass"
    assert ha.eval_ini_option(dict(params, option="Compress", value="no"), text)[0] == "fail"
    assert ha.eval_ini_option(params, None)[0] == "fail"


def test_file_content_trailing_newline_and_mode(tmp_path):
    write(tmp_path, "/etc/issue", "Authorised access only.\n\n", 0o644)
    rec = control("file_content", {"path": "/etc/issue", "content": "Authorised access only.", "mode": "0644"})
    assert audit_at(tmp_path, rec)["status"] == "pass"
    (tmp_path / "etc" / "issue").chmod(0o666)
    found = audit_at(tmp_path, rec)
    assert found["status"] == "fail" and "exceeds" in found["evidence"]["reason"]
    write(tmp_path, "/etc/issue", "Debian GNU/Linux 12 \\n \\l\n", 0o644)
    assert audit_at(tmp_path, rec)["evidence"]["reason"] == "content differs"


def test_file_absent(tmp_path):
    rec = control("file_absent", {"path": "/etc/cron.deny"})
    assert audit_at(tmp_path, rec)["status"] == "pass"
    write(tmp_path, "/etc/cron.deny", "")
    assert audit_at(tmp_path, rec)["status"] == "fail"


# ---------------------------------------------------------------- packages

DPKG_STATUS = """Package: openssh-server
Status: install ok installed
Architecture: amd64

Package: telnetd
Status: deinstall ok config-files
Architecture: amd64

Package: libc6
Status: install ok installed
Architecture: amd64

Package: libc6
Status: purge ok not-installed
Architecture: i386

Package: nis
Status: install ok unpacked
"""


def test_dpkg_status_parsing():
    states = debian.parse_dpkg_status(DPKG_STATUS)
    assert states == {"openssh-server": "installed", "telnetd": "config-files", "libc6": "installed",
                      "nis": "unpacked"}


def test_packages_present_and_absent():
    states = debian.parse_dpkg_status(DPKG_STATUS)
    assert ha.eval_package_present({"package": "openssh-server"}, states)[0] == "pass"
    assert ha.eval_package_present({"package": "libpam-pwquality"}, states) == (
        "fail", {"package": "libpam-pwquality", "expected": "installed", "actual": "not installed"})
    assert ha.eval_package_absent({"package": "telnetd"}, states)[0] == "pass"  # only config files left
    assert ha.eval_package_absent({"package": "nis"}, states)[0] == "fail"  # unpacked counts as there
    assert ha.eval_package_absent({"package": "rsh-server"}, states)[0] == "pass"


def test_dpkg_status_read_once(tmp_path):
    write(tmp_path, "/var/lib/dpkg/status", DPKG_STATUS)
    host = ha.Host(str(tmp_path))
    first = host.packages()
    (tmp_path / "var" / "lib" / "dpkg" / "status").unlink()
    assert host.packages() is first


# ---------------------------------------------------------------- services

SHOW = """Id=cron.service
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=enabled

Id=avahi-daemon.service
LoadState=not-found
ActiveState=inactive
SubState=dead
UnitFileState=

Id=debug-shell.service
LoadState=loaded
ActiveState=inactive
SubState=dead
UnitFileState=disabled

Id=rpcbind.service
LoadState=masked
ActiveState=inactive
SubState=dead
UnitFileState=masked

Id=cups.service
LoadState=loaded
ActiveState=active
SubState=running
UnitFileState=disabled
"""
SHOW_NAMES = ["cron.service", "avahi-daemon.service", "debug-shell.service", "rpcbind.service", "cups.service"]


def test_services_disabled_and_enabled():
    units = ha.parse_systemctl_show(SHOW, SHOW_NAMES)
    disabled = {name: ha.eval_service_disabled({"service": name}, units)[0] for name in SHOW_NAMES}
    assert disabled == {"cron.service": "fail", "avahi-daemon.service": "pass", "debug-shell.service": "pass",
                        "rpcbind.service": "pass", "cups.service": "fail"}  # disabled but still running
    assert ha.eval_service_enabled({"service": "cron"}, units)[0] == "pass"
    status, evidence = ha.eval_service_enabled({"service": "rsyslog"}, units)
    assert status == "fail" and evidence["actual"]["unit_file_state"] == "not installed"


def test_systemd_asked_once_for_every_unit(tmp_path):
    runner = FakeRunner({("systemctl", "show"): (0, SHOW, "")})
    controls = [control("service_disabled", {"service": "avahi-daemon.service"}, "HARD-SVC-001"),
                control("service_enabled", {"service": "cron"}, "HARD-CRON-001")]
    findings, _metrics = ha.audit(controls, root=str(tmp_path), runner=runner)
    assert [c[:2] for c in runner.calls] == [["systemctl", "show"]]
    assert set(runner.calls[0][5:]) == {"avahi-daemon.service", "cron.service", "auditd.service"}
    assert [f["status"] for f in findings] == ["pass", "fail"]  # the fake's answer is in another order


# ---------------------------------------------------------------- module_blacklist

PROC_MODULES = "usb_storage 77824 0 - Live 0x0\next4 1064960 1 - Live 0x0\n"


def test_module_blacklist(tmp_path):
    write(tmp_path, "/etc/modprobe.d/60-fleetcare.conf",
          "# managed\ninstall cramfs /bin/false\nblacklist cramfs\ninstall usb-storage /bin/true\n")
    write(tmp_path, "/etc/modprobe.d/other.conf", "install sctp /sbin/modprobe --ignore-install sctp\n")
    write(tmp_path, "/proc/modules", PROC_MODULES)
    host = ha.Host(str(tmp_path))
    assert ha.eval_module_blacklist({"module": "cramfs"}, *host.modprobe())[0] == "pass"
    status, evidence = ha.eval_module_blacklist({"module": "usb-storage"}, *host.modprobe())
    assert status == "fail" and evidence["actual"]["loaded"] is True and "unload" in evidence["reason"]
    status, evidence = ha.eval_module_blacklist({"module": "sctp"}, *host.modprobe())
    assert status == "fail" and "install sctp /bin/false" in evidence["reason"]


# ---------------------------------------------------------------- mount_option

PROC_MOUNTS = r"""overlay / overlay rw,relatime 0 0
tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0
/dev/sda2 /tmp ext4 rw,relatime 0 0
tmpfs /tmp tmpfs rw,nosuid,nodev,noexec 0 0
/dev/sdb1 /srv/my\040data ext4 rw 0 0
"""


def test_mount_options():
    mounts = ha.mount_table(PROC_MOUNTS)
    assert "/srv/my data" in mounts
    assert ha.eval_mount_option({"mount": "/tmp", "option": "noexec"}, mounts)[0] == "pass"  # top mount wins
    assert ha.eval_mount_option({"mount": "/dev/shm", "option": "noexec"}, mounts)[0] == "fail"
    status, evidence = ha.eval_mount_option({"mount": "/var/tmp", "option": "nodev"}, mounts)
    assert status == "fail" and "not a separate mount" in evidence["reason"]
    status, evidence = ha.eval_mount_option({"mount": "/var/tmp", "option": "nodev", "optional": True}, mounts)
    assert status == "pass" and "optional" in evidence["note"]


# ---------------------------------------------------------------- audit_rule

AUDITCTL_L = """-w /etc/sudoers -p wa -k scope
-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -F key=time-change
-a always,exit -F arch=b64 -S mount -F auid>=1000 -F auid!=-1 -F key=mounts
"""


def test_audit_rule_canonical_forms_match():
    file_rule = "-a always,exit -F arch=b64 -S settimeofday,adjtimex -S clock_settime -k time-change"
    loaded = "-a exit,always -F arch=b64 -S adjtimex,settimeofday,clock_settime -F key=time-change"
    assert ha.canonical_audit_rule(file_rule) == ha.canonical_audit_rule(loaded)
    assert ha.canonical_audit_rule("-F auid!=unset") == ha.canonical_audit_rule("-F auid!=4294967295")
    assert ha.canonical_audit_rule("-w /etc/group -p wa -k identity") != ha.canonical_audit_rule(
        "-w /etc/group -p r -k identity")
    # HARD-AUDIT-011 as written, and as auditctl 3.0.9 -l listed it once loaded (seen on the lab VM)
    assert ha.canonical_audit_rule(
        "-a always,exit -F arch=b64 -C euid!=uid -F auid!=unset -S execve -k user_emulation"
    ) == ha.canonical_audit_rule("-a always,exit -F arch=b64 -S execve -C uid!=euid -F auid!=-1 -F key=user_emulation")
    assert ha.canonical_audit_rule("-C uid!=euid") != ha.canonical_audit_rule("-C uid=euid")


def test_audit_rule_files_and_loaded(tmp_path):
    write(tmp_path, "/etc/audit/rules.d/60-fleetcare.rules",
          "## fleetcare\n-w /etc/sudoers -p wa -k scope\n"
          "-a always,exit -F arch=b64 -S mount -F auid>=1000 -F auid!=unset -k mounts\n-w /etc/hosts -p wa -k net\n")
    files = ha.Host(str(tmp_path)).audit_files()
    loaded = [line for line in AUDITCTL_L.splitlines() if line]
    mounts = {"rule": "-a always,exit -F arch=b64 -S mount -F auid>=1000 -F auid!=unset -k mounts"}
    assert ha.eval_audit_rule(mounts, files, loaded)[0] == "pass"
    assert ha.eval_audit_rule({"rule": "-w /etc/sudoers -p wa -k scope"}, files, None)[0] == "pass"
    status, evidence = ha.eval_audit_rule({"rule": "-w /etc/hosts -p wa -k net"}, files, loaded)
    assert status == "fail" and "not loaded" in evidence["reason"]
    status, evidence = ha.eval_audit_rule({"rule": "-w /etc/passwd -p wa -k identity"}, files, None)
    assert status == "fail" and evidence["actual"]["files"] is None
    assert ha.eval_audit_rule({"rule": "-e 2"}, [*files, ("/x.rules", "-e 2")], loaded)[0] == "pass"


def test_auditctl_only_asked_when_auditd_runs(tmp_path):
    show = "Id=auditd.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\n"
    runner = FakeRunner({("systemctl", "show"): (0, show, ""), ("auditctl", "-l"): (0, AUDITCTL_L, "")})
    write(tmp_path, "/etc/audit/rules.d/a.rules", "-w /etc/sudoers -p wa -k scope\n")
    findings, _ = ha.audit([control("audit_rule", {"rule": "-w /etc/sudoers -p wa -k scope"}, container=False)],
                           root=str(tmp_path), runner=runner)
    assert findings[0]["status"] == "pass" and findings[0]["evidence"]["actual"]["loaded"] is True
    assert ["auditctl", "-l"] in runner.calls


# ---------------------------------------------------------------- pam_module

COMMON_PASSWORD = """# here are the per-package modules (the "Primary" block)
password\trequisite\t\t\tpam_pwquality.so retry=3
password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt
password\trequisite\t\t\tpam_deny.so
"""
COMMON_AUTH = "auth\t[success=1 default=ignore]\tpam_unix.so nullok\n-auth optional pam_systemd_home.so\n"


def test_pam_module_args():
    base = {"service": "common-password", "type": "password"}
    assert ha.eval_pam_module(dict(base, module="pam_pwquality.so", args={"retry": "3"}), COMMON_PASSWORD)[0] == "pass"
    assert ha.eval_pam_module(dict(base, module="pam_pwquality.so", args={"retry": 3}), COMMON_PASSWORD)[0] == "pass"
    assert ha.eval_pam_module(dict(base, module="pam_unix.so", args={"yescrypt": True}), COMMON_PASSWORD)[0] == "pass"
    status, evidence = ha.eval_pam_module(dict(base, module="pam_pwhistory.so", args={"remember": "5"}),
                                          COMMON_PASSWORD)
    assert status == "fail" and "not in the password stack" in evidence["reason"]
    status, evidence = ha.eval_pam_module(dict(base, module="pam_pwquality.so", args={"retry": "1"}),
                                          COMMON_PASSWORD)
    assert status == "fail" and evidence["reason"] == "arguments differ"
    assert evidence["actual"] == ["password\trequisite\t\t\tpam_pwquality.so retry=3"]


def test_pam_module_flag_must_be_absent():
    params = {"service": "common-auth", "type": "auth", "module": "pam_unix.so", "args": {"nullok": False}}
    assert ha.eval_pam_module(params, COMMON_AUTH)[0] == "fail"
    assert ha.eval_pam_module(params, COMMON_AUTH.replace(" nullok", ""))[0] == "pass"
    home = dict(params, module="pam_systemd_home.so", args={})
    assert ha.eval_pam_module(home, COMMON_AUTH)[0] == "pass"


def test_pam_missing_service_file(tmp_path):
    rec = control("pam_module", {"service": "su", "type": "auth", "module": "pam_wheel.so", "args": {}})
    found = audit_at(tmp_path, rec)
    assert found["status"] == "fail" and "/etc/pam.d/su does not exist" in found["evidence"]["reason"]


# ---------------------------------------------------------------- account

PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
toor:x:0:0::/root:/bin/bash
www-data:x:33:33:www-data:/var/www:/bin/sh
alice:x:1000:1000::/home/alice:/bin/bash
bob:x:1000:1001::/home/bob:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
+::::::
"""
GROUP = """root:x:0:
daemon:x:1:
shadow:x:42:mallory
www-data:x:33:
alice:x:1000:
wheel:x:0:
nogroup:x:65534:
alice:x:1002:
"""
SHADOW = "root:$y$j9T$abc:19000::::::\nalice::19000::::::\ndaemon:*:19000::::::\n"


@pytest.fixture
def accounts():
    return {"passwd": ha.parse_passwd(PASSWD), "group": ha.parse_group(GROUP), "shadow": ha.parse_shadow(SHADOW),
            "uid_min": 1000}


@pytest.mark.parametrize("check,offenders", [
    ("empty_passwords", ["alice"]),
    ("uid0_only_root", ["toor"]),
    ("gid0_only_root", ["wheel"]),
    ("no_legacy_plus", ["/etc/passwd: +::::::"]),
    ("system_accounts_nologin", ["toor (/bin/bash)", "www-data (/bin/sh)"]),
    ("duplicate_uids", ["uid 0: root, toor", "uid 1000: alice, bob"]),
    ("duplicate_gids", ["gid 0: root, wheel"]),
    ("duplicate_names", ["group alice"]),
    ("passwd_groups_exist", ["+ (gid )", "bob (gid 1001)"]),
    ("shadow_group_empty", ["member mallory"]),
])
def test_account_checks(accounts, check, offenders):
    status, evidence = ha.eval_account({"check": check}, accounts)
    assert evidence["offenders"] == offenders
    assert status == ("fail" if offenders else "pass")


def test_account_home_permissions(accounts):
    accounts["homes"] = {"/home/alice": (stat.S_IFDIR | 0o755, 1000), "/home/bob": (stat.S_IFDIR | 0o700, 0)}
    status, evidence = ha.eval_account({"check": "home_permissions"}, accounts)
    assert status == "fail"
    assert evidence["offenders"] == ["alice: /home/alice mode 0755", "bob: /home/bob owned by uid 0"]


def test_account_root_path(accounts):
    accounts["root_paths"] = [("login.defs ENV_SUPATH", "/usr/sbin:/usr/bin::/opt/tools:."),
                              ("/etc/sudoers secure_path", "/usr/sbin:/missing")]
    accounts["dirs"] = {"/usr/sbin": (stat.S_IFDIR | 0o755, 0), "/usr/bin": (stat.S_IFDIR | 0o755, 0),
                        "/opt/tools": (stat.S_IFDIR | 0o777, 1000), "/missing": None}
    status, evidence = ha.eval_account({"check": "root_path"}, accounts)
    assert status == "fail"
    assert evidence["offenders"] == [
        "login.defs ENV_SUPATH: empty entry",
        "login.defs ENV_SUPATH: /opt/tools is writable by group or others (0777)",
        "login.defs ENV_SUPATH: /opt/tools is owned by uid 1000",
        "login.defs ENV_SUPATH: relative entry '.'",
    ]


def test_root_paths_read_from_login_defs_and_sudoers(tmp_path):
    write(tmp_path, "/etc/sudoers", 'Defaults\tsecure_path="/usr/local/sbin:/usr/sbin"\n')
    write(tmp_path, "/etc/sudoers.d/x", "Defaults secure_path = /sbin:/bin\n")
    paths = ha.Host(str(tmp_path)).root_paths(ha.parse_kv_lines(LOGIN_DEFS))
    assert paths == [("login.defs ENV_SUPATH", "/usr/local/sbin:/usr/sbin:/usr/bin"),
                     ("/etc/sudoers secure_path", "/usr/local/sbin:/usr/sbin"),
                     ("/etc/sudoers.d/x secure_path", "/sbin:/bin")]


def test_unknown_account_check_is_an_error(tmp_path):
    write(tmp_path, "/etc/passwd", PASSWD)
    write(tmp_path, "/etc/group", GROUP)
    found = audit_at(tmp_path, control("account", {"check": "nope"}))
    assert found["status"] == "error" and "unknown account check" in found["evidence"]["reason"]


# ---------------------------------------------------------------- containers, switches, errors


@pytest.mark.parametrize("rec,needle", [
    (control("sysctl", {"key": "kernel.kptr_restrict", "value": "2"}, "HARD-KERN-002", container=False),
     "kernel-wide sysctl: in a container it belongs to the host kernel"),
    (control("sysctl", {"key": "net.ipv4.tcp_syncookies", "value": "1"}, "HARD-NET-001", container=False),
     "network sysctl"),
    (control("module_blacklist", {"module": "dccp"}, "HARD-MOD-001", container=False), "kernel modules"),
    (control("mount_option", {"mount": "/tmp", "option": "nodev"}, "HARD-MNT-001", container=False), "mounts"),
    (control("service_enabled", {"service": "auditd"}, "HARD-AUDIT-003", container=False), "auditd"),
    (control("service_enabled", {"service": "apparmor"}, "HARD-AA-003", container=False), "AppArmor"),
    (control("service_enabled", {"service": "chrony"}, "HARD-TIME-002", container=False), "clock"),
])
def test_container_not_applicable_with_reason(tmp_path, rec, needle):
    runner = FakeRunner()
    findings, _ = ha.audit([rec], in_container=True, root=str(tmp_path), runner=runner)
    assert findings[0]["status"] == "not_applicable"
    assert needle in findings[0]["evidence"]["reason"]
    assert findings[0]["remediation"] == "fix it" and findings[0]["references"] == ["Lynis TEST-0001"]
    assert runner.calls == []  # nothing of the host was even read


def test_container_applicable_controls_still_run_in_containers(tmp_path):
    findings, _ = ha.audit([control("file_absent", {"path": "/etc/cron.deny"})], in_container=True, root=str(tmp_path))
    assert findings[0]["status"] == "pass"


def test_skipped_controls_are_listed_switched_off(tmp_path):
    findings, metrics = ha.audit([], skipped=[{"id": "HARD-SSH-001", "title": "Root login", "severity": "major"}],
                                 root=str(tmp_path))
    assert findings == [{"id": "HARD-SSH-001", "title": "Root login", "severity": "major",
                         "status": "not_applicable", "evidence": {"reason": "switched off"}, "remediation": "",
                         "references": []}]
    assert {m["name"] for m in metrics} == {"hardening_controls", "hardening_audit_seconds"}


def test_sshd_failure_is_one_error_per_control_and_sshd_runs_once(tmp_path):
    runner = FakeRunner({("sshd", "-T"): (1, "", "sshd: no hostkeys available -- exiting.\n")})
    controls = [control("sshd_option", {"option": "x11forwarding", "value": "no"}, "HARD-SSH-006"),
                control("sshd_option", {"option": "usepam", "value": "yes"}, "HARD-SSH-032")]
    findings, _ = ha.audit(controls, root=str(tmp_path), runner=runner)
    assert [f["status"] for f in findings] == ["error", "error"]
    assert "no hostkeys available" in findings[0]["evidence"]["reason"]
    assert runner.calls == [["sshd", "-T"]]


def test_sshd_from_fixture_through_the_host(tmp_path):
    runner = FakeRunner({("sshd", "-T"): (0, (FIXTURES / "sshd-T-debian13.txt").read_text(), "")})
    findings, _ = ha.audit([control("sshd_option", {"option": "maxauthtries", "value": "3"})],
                           root=str(tmp_path), runner=runner)
    assert findings[0]["status"] == "fail"
    assert findings[0]["evidence"] == {"option": "maxauthtries", "expected": "3", "actual": "6",
                                       "kind": "sshd_option"}


def test_missing_tool_is_an_error(tmp_path):
    findings, _ = ha.audit([control("service_enabled", {"service": "cron"})], root=str(tmp_path),
                           runner=FakeRunner())
    assert findings[0]["status"] == "error" and "systemctl is not installed" in findings[0]["evidence"]["reason"]


def test_bad_records_become_error_findings(tmp_path):
    findings, _ = ha.audit([control("nonsense", {}), control("sysctl", {"key": "x"}, "HARD-TEST-002"),
                            control("file_absent", {"path": "/x"}, "HARD-TEST-003", severity="huge")],
                           root=str(tmp_path))
    assert [f["status"] for f in findings] == ["error", "error", "error"]
    assert "unknown kind 'nonsense'" in findings[0]["evidence"]["reason"]
    assert "lack value" in findings[1]["evidence"]["reason"]
    assert "malformed control record" in findings[2]["evidence"]["reason"]


def test_a_crashing_evaluation_is_contained(tmp_path, monkeypatch):
    def boom(params, exists):
        raise RuntimeError("bug")

    monkeypatch.setattr(ha, "eval_file_absent", boom)
    findings, _ = ha.audit([control("file_absent", {"path": "/x"}), control("file_mode", {"path": "/y", "mode": "0644"},
                                                                            "HARD-TEST-002")], root=str(tmp_path))
    assert findings[0]["status"] == "error" and "RuntimeError: bug" in findings[0]["evidence"]["reason"]
    assert findings[1]["status"] == "pass"


def test_unreadable_file_is_an_error(tmp_path, monkeypatch):
    write(tmp_path, "/etc/login.defs", "UMASK 027\n", 0o000)
    real_open = open

    def refuse(path, *args, **kwargs):
        # root reads a mode-000 file anyway: refuse it here as the kernel would for a user
        if str(path).endswith("/etc/login.defs"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(host, "open", refuse, raising=False)
    found = audit_at(tmp_path, control("config_line", {"path": "/etc/login.defs", "key": "UMASK", "value": "027"}))
    assert found["status"] == "error" and "cannot read /etc/login.defs" in found["evidence"]["reason"]


# ---------------------------------------------------------------- container detection


def test_detect_container_markers(tmp_path):
    assert host.detect_container(str(tmp_path)) == ("", "no container marker")
    write(tmp_path, "/proc/1/environ", "PATH=/bin\0container=lxc\0")
    assert host.detect_container(str(tmp_path)) == ("lxc", "PID 1 environment: container=lxc")
    write(tmp_path, "/.dockerenv", "")
    assert host.detect_container(str(tmp_path)) == ("docker", "/.dockerenv")
    write(tmp_path, "/run/systemd/container", "podman\n")
    assert host.detect_container(str(tmp_path)) == ("podman", "/run/systemd/container: podman")


def test_detect_container_asks_systemd_last(tmp_path, monkeypatch):
    runner = FakeRunner({("systemd-detect-virt", "-c"): (0, "podman\n", "")})
    monkeypatch.setattr(host.os.path, "exists", lambda p: False)
    monkeypatch.setattr(host, "read_text", lambda p: (_ for _ in ()).throw(OSError(2, "absent")))
    assert host.detect_container("/", runner) == ("podman", "systemd-detect-virt -c: podman")
    none = FakeRunner({("systemd-detect-virt", "-c"): (1, "none\n", "")})
    assert host.detect_container("/", none) == ("", "systemd-detect-virt -c: none")


# ---------------------------------------------------------------- the whole catalog


def test_whole_catalog_on_an_empty_root_never_crashes(tmp_path):
    runner = FakeRunner({("sshd", "-T"): (0, (FIXTURES / "sshd-T-debian13.txt").read_text(), ""),
                         ("systemctl", "show"): (0, "", "")})
    for path, text in (("/etc/passwd", PASSWD), ("/etc/group", GROUP), ("/etc/shadow", SHADOW),
                       ("/var/lib/dpkg/status", DPKG_STATUS), ("/proc/mounts", PROC_MOUNTS),
                       ("/proc/modules", PROC_MODULES)):
        write(tmp_path, path, text)
    for in_container in (False, True):
        findings, _ = ha.audit(CATALOG, root=str(tmp_path), runner=runner, in_container=in_container)
        assert [f["id"] for f in findings] == [r["id"] for r in CATALOG]
        crashed = [f["id"] for f in findings if "crashed" in f["evidence"].get("reason", "")]
        assert crashed == []
        assert all(f["status"] in ("pass", "fail", "not_applicable") for f in findings), [
            (f["id"], f["evidence"].get("reason")) for f in findings if f["status"] == "error"]
        if in_container:
            assert all(f["status"] == "not_applicable" for f, r in zip(findings, CATALOG, strict=True)
                       if not r["applies_in_container"])


def test_records_trimmed_by_the_action_plugin_give_the_same_findings(tmp_path):
    """The action plugin sends only controls.AUDIT_KEYS / SKIPPED_KEYS: the module must read
    nothing else of a record, or trimming would change a finding."""
    from ansible_collections.fleetcare.ops.plugins.plugin_utils import controls

    runner = FakeRunner({("sshd", "-T"): (0, (FIXTURES / "sshd-T-debian13.txt").read_text(), ""),
                         ("systemctl", "show"): (0, "", "")})
    for path, text in (("/etc/passwd", PASSWD), ("/etc/group", GROUP), ("/var/lib/dpkg/status", DPKG_STATUS),
                       ("/proc/mounts", PROC_MOUNTS)):
        write(tmp_path, path, text)
    switches = {"skip": ["HARD-SSH-*"], "enable_disruptive": ["pam"], "overrides": {"HARD-PASS-001": {"value": "1"}}}
    full = controls.select_controls(CATALOG, **switches)
    trimmed = controls.audit_selection(CATALOG, **switches)
    for in_container in (False, True):
        want, _ = ha.audit(full["enabled"], full["skipped"], in_container, root=str(tmp_path), runner=runner)
        got, _ = ha.audit(trimmed["controls"], trimmed["skipped"], in_container, root=str(tmp_path), runner=runner)
        assert got == want


def test_documentation_is_valid_yaml_and_lists_the_options():
    doc = yaml.safe_load(ha.DOCUMENTATION)
    assert set(doc["options"]) == set(ha.ARGUMENT_SPEC)
    assert doc["attributes"]["check_mode"]["support"] == "full"
    yaml.safe_load(ha.EXAMPLES)
    yaml.safe_load(ha.RETURN)


def test_missing_sshd_and_missing_systemd_are_not_applicable(tmp_path):
    def runner(argv):
        if argv[0] == "sshd":
            raise ha.ToolMissing("sshd is not installed")
        if argv[0] == "systemctl":
            return 1, "", "System has not been booted with systemd as init system (PID 1). Can't operate."
        raise AssertionError(argv)

    controls = [control("sshd_option", {"option": "PermitEmptyPasswords", "value": "no"}),
                control("service_disabled", {"service": "debug-shell.service"}, "HARD-TEST-002")]
    findings, _ = ha.audit(controls, root=str(tmp_path), runner=runner)
    assert [f["status"] for f in findings] == ["not_applicable", "not_applicable"]
    assert "sshd is not installed" in findings[0]["evidence"]["reason"]
    assert "init system" in findings[1]["evidence"]["reason"]


def test_config_line_key_only_and_the_keys_it_replaces():
    # HARD-LOG-010: logrotate's frequency is a key without value; a weekly line left beside it fails
    params = {"path": "/etc/logrotate.conf", "key": "daily", "value": "", "replaces": ["weekly", "monthly", "yearly"]}
    assert ha.eval_config_line(params, "# rotate log files weekly\ndaily\nrotate 4\n")[0] == "pass"
    status, evidence = ha.eval_config_line(params, "weekly\ndaily\n")
    assert status == "fail" and evidence["reason"] == "weekly is set too"
    status, evidence = ha.eval_config_line(params, "#weekly\nrotate 4\n")
    assert status == "fail" and evidence["reason"] == "daily is not set"
