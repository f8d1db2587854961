"""After converge (patching_update: [security]) and idempotence: the security update is
installed, the other one is not, and the held package stays at its version and on hold."""

VERSIONS = {"fc-sec": "1.1", "fc-other": "1.0", "fc-held": "1.0"}


def test_security_update_only(host):
    for name, version in VERSIONS.items():
        pkg = host.package(name)
        assert pkg.is_installed, name
        assert pkg.version == version, f"{name}: {pkg.version}, expected {version}"
        assert host.file(f"/usr/share/doc/{name}/VERSION").content_string.strip() == version


def test_hold_kept(host):
    assert host.check_output("apt-mark showhold").split() == ["fc-held"]


def test_no_prompt_leftovers(host):
    # an interrupted or half-configured dpkg would show here
    assert host.run("dpkg --audit").stdout.strip() == ""
