"""At least one control of every kind that applies in a container, checked
on the host itself (sshd's own effective configuration, file modes, dpkg,
systemd, PAM stacks, shadow), not through the role's report. prepare.yml
planted the faults some of these controls must have fixed."""

import stat
import time

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


# Debian 11 is a plain application container (/proc/sys read-only, no NET_ADMIN);
# Debian 12 and 13 are system containers that own their network stack.
APPLICATION_CONTAINER = "hardening-debian11"


@pytest.mark.parametrize("path", [
    "/etc/modprobe.d/60-fleetcare.conf",
    "/etc/audit/rules.d/60-fleetcare.rules",
])
def test_kernel_wide_controls_never_written_in_a_container(host, path):
    assert not host.file(path).exists


def test_only_network_sysctls_are_written_and_only_where_the_container_owns_them(host, host_name):
    conf = host.file("/etc/sysctl.d/zz-fleetcare.conf")
    if host_name == APPLICATION_CONTAINER:
        assert not conf.exists, "a read-only /proc/sys: network sysctls are not_applicable, never written"
        return
    keys = [line.split("=")[0].strip() for line in conf.content_string.splitlines()
            if line.strip() and not line.startswith("#")]
    assert keys and all(k.startswith(("net.ipv4.", "net.ipv6.")) for k in keys), keys
    # ip_forward comes first: setting it resets conf.all.accept_redirects, at boot as now.
    assert keys.index("net.ipv4.ip_forward") < keys.index("net.ipv4.conf.all.accept_redirects")


@pytest.mark.parametrize(("key", "value"), [
    ("net.ipv4.ip_forward", "0"),                      # HARD-NET-001, nothing here routes
    ("net.ipv4.conf.all.accept_redirects", "0"),       # HARD-NET-005, after ip_forward reset it
    ("net.ipv4.conf.all.log_martians", "1"),           # HARD-NET-015
    ("net.ipv4.conf.all.rp_filter", "1"),              # HARD-NET-017
])
def test_network_sysctls_in_the_containers_own_namespace(host, host_name, key, value):
    if host_name == APPLICATION_CONTAINER:
        # The reason the role leaves them alone there: the engine refuses the write.
        assert host.run(f"sysctl -w {key}={value}").rc != 0
        return
    assert host.check_output(f"sysctl -n {key}") == value


def test_security_suite_is_fetched(host):
    # HARD-SVC-053: the suite is in the sources AND apt has its lists (the role ran apt-get update).
    codename = host.check_output(". /etc/os-release && echo $VERSION_CODENAME")
    policy = host.check_output("apt-cache policy")
    assert f"{codename}-security" in policy, policy


def test_no_compiler_unless_the_release_requires_one(host, host_name):
    # chkrootkit instead of rkhunter, needrestart opt-in: both of those pull in binutils (Lynis HRDN-7220).
    assert host.package("chkrootkit").is_installed
    assert not host.package("rkhunter").is_installed
    assert not host.package("needrestart").is_installed
    if host_name == "hardening-debian12":
        # bookworm's chkrootkit only recommends binutils; bullseye's and trixie's depend on it.
        assert not host.package("binutils").is_installed


def test_fail2ban_watches_sshd_and_bans_through_nft(host, host_name):
    # HARD-SVC-039, 055-062: the jail runs on the journal; a ban is a real nft rule.
    assert host.service("fail2ban").is_running
    assert "sshd" in host.check_output("fail2ban-client status")
    if host_name == APPLICATION_CONTAINER:
        return  # no NET_ADMIN: the jail runs, a ban could not be enforced here
    host.check_output("fail2ban-client set sshd banip 192.0.2.7")
    try:
        # The ban action runs in fail2ban's own thread, just after the client returns.
        ruleset = ""
        for _ in range(20):
            ruleset = host.check_output("nft list ruleset")
            if "192.0.2.7" in ruleset:
                break
            time.sleep(0.5)
        assert "192.0.2.7" in ruleset, ruleset
    finally:
        host.run("fail2ban-client set sshd unbanip 192.0.2.7")


def test_ssh_forwarding_and_sessions_limited(host):
    effective = dict(line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line)
    assert effective["allowtcpforwarding"] == "no"   # HARD-SSH-014
    assert effective["maxsessions"] == "2"           # HARD-SSH-008


def test_umask_of_a_login_shell(host):
    # HARD-UMASK-002 + HARD-UMASK-001: what a user actually gets.
    out = host.check_output("su -s /bin/bash -l fleetcare -c umask")
    assert stat.S_IMODE(int(out, 8)) & 0o027 == 0o027


def test_scanners_read_the_hardened_state_where_they_look(host):
    # sshd's main file carries the drop-in's values first, before Debian's Include (SSG reads it only)
    main = host.file("/etc/ssh/sshd_config").content_string.splitlines()
    assert main[0].startswith("# BEGIN fleetcare.ops.hardening")
    block = main[1:main.index("# END fleetcare.ops.hardening")]
    assert "x11forwarding no" in block and "clientaliveinterval 300" in block and "clientalivecountmax 2" in block
    include = next(i for i, line in enumerate(main) if line.startswith("Include "))
    assert include > len(block)
    assert not any(line.startswith("X11Forwarding") for line in main)  # Debian's own 'yes' commented out
    # HARD-SVC-053: the security suite where SSG's apt_sources_list_official and Lynis PKGS-7388 look
    codename = host.check_output(". /etc/os-release && echo $VERSION_CODENAME")
    assert (f"deb http://security.debian.org/debian-security {codename}-security main"
            in host.file("/etc/apt/sources.list").content_string.splitlines())
    # HARD-LOG-010: daily, no other frequency, before the include of logrotate.d
    conf = [line.strip() for line in host.file("/etc/logrotate.conf").content_string.splitlines()]
    assert "daily" in conf and not {"weekly", "monthly", "yearly"} & set(conf)
    assert conf.index("daily") < next(i for i, line in enumerate(conf) if line.startswith("include"))
