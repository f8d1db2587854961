"""At least one control of every kind that applies in a container, checked
on the host itself (sshd's own effective configuration, file modes, dpkg,
systemd, PAM stacks, shadow), not through the role's report. prepare.yml
planted the faults some of these controls must have fixed."""

import stat

import pytest


@pytest.mark.parametrize(("option", "value"), [
    ("x11forwarding", "no"),          # HARD-SSH-006
    ("maxauthtries", "3"),            # HARD-SSH-007
    ("permitemptypasswords", "no"),   # HARD-SSH-003
    ("allowagentforwarding", "no"),   # HARD-SSH-013
    ("banner", "/etc/issue.net"),     # HARD-SSH-025
])
def test_sshd_option_is_effective(host, option, value):
    effective = dict(line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line)
    assert effective[option] == value


def test_sshd_configuration_is_valid_and_running(host):
    assert host.run("sshd -t").rc == 0
    assert host.service("ssh").is_running


@pytest.mark.parametrize(("path", "allowed", "owner"), [
    ("/etc/crontab", 0o600, "root"),   # HARD-CRON-002, planted 0644
    ("/etc/shadow", 0o640, "root"),
    ("/etc/cron.d", 0o700, "root"),
])
def test_file_mode(host, path, allowed, owner):
    f = host.file(path)
    assert f.exists
    assert f.mode & ~allowed == 0, f"{path} is {oct(f.mode)}"
    assert f.user == owner


@pytest.mark.parametrize(("path", "key", "value"), [
    ("/etc/login.defs", "PASS_MAX_DAYS", "365"),          # HARD-PASS-001
    ("/etc/login.defs", "UMASK", "027"),                  # HARD-UMASK-001
    ("/etc/security/pwquality.conf", "minlen", "14"),     # HARD-PAM-003
])
def test_config_line(host, path, key, value):
    lines = [line.replace("=", " ").split() for line in host.file(path).content_string.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    values = [words[1] for words in lines if len(words) >= 2 and words[0] == key]
    assert values and values[-1] == value


def test_ini_option_journald_storage(host):
    # HARD-LOG-001: journald's effective configuration, as systemd merges it.
    merged = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    settings = [line.strip() for line in merged.splitlines() if line.strip().startswith("Storage=")]
    assert settings[-1] == "Storage=persistent"


def test_file_content_banner_and_sudoers(host, catalog):
    assert host.file("/etc/issue.net").content_string == catalog["HARD-BANNER-002"]["params"]["content"]
    sudoers = host.file("/etc/sudoers.d/60-fleetcare-use-pty")   # HARD-SUDO-002
    assert sudoers.mode == 0o440
    assert host.run("visudo -c").rc == 0


def test_file_absent_cron_deny(host):
    assert not host.file("/etc/cron.deny").exists   # HARD-CRON-009, planted by prepare.yml


def test_package_absent(host):
    assert not host.package("tftpd-hpa").is_installed   # HARD-SVC-011, planted by prepare.yml


@pytest.mark.parametrize("name", ["libpam-pwquality", "rsyslog", "libpam-tmpdir"])
def test_package_present(host, name):
    assert host.package(name).is_installed


def test_service_disabled_debug_shell(host):
    assert not host.service("debug-shell").is_enabled   # HARD-SVC-021, planted by prepare.yml


@pytest.mark.parametrize("name", ["rsyslog", "cron"])
def test_service_enabled(host, name):
    service = host.service(name)
    assert service.is_enabled and service.is_running


def test_pam_module_lines(host):
    password = host.file("/etc/pam.d/common-password").content_string
    assert any("pam_pwhistory.so" in line and "remember=5" in line.split()
               for line in password.splitlines() if line.startswith("password"))   # HARD-PAM-010
    session = host.file("/etc/pam.d/common-session").content_string
    assert any("pam_umask.so" in line for line in session.splitlines() if line.startswith("session"))
    # pam-auth-update owns the stacks: a fresh regeneration changes nothing.
    assert host.run("pam-auth-update --package").rc == 0
    assert host.file("/etc/pam.d/common-password").content_string == password


def test_account_with_empty_password_locked(host):
    entry = host.check_output("getent shadow fc-empty").split(":")
    assert entry[1].startswith("!"), "HARD-ACCT-001: the empty password must be locked"


@pytest.mark.parametrize("path", [
    "/etc/sysctl.d/60-fleetcare.conf",
    "/etc/modprobe.d/60-fleetcare.conf",
    "/etc/audit/rules.d/60-fleetcare.rules",
])
def test_kernel_wide_controls_never_written_in_a_container(host, path):
    assert not host.file(path).exists


def test_umask_of_a_login_shell(host):
    # HARD-UMASK-002 + HARD-UMASK-001: what a user actually gets.
    out = host.check_output("su -s /bin/bash -l fleetcare -c umask")
    assert stat.S_IMODE(int(out, 8)) & 0o027 == 0o027
