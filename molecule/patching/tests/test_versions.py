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


def test_the_run_left_its_record(host):
    """The converge run wrote last-run.json; idempotence appended a second line to runs.jsonl."""
    import json

    record = json.loads(host.file("/var/lib/fleetcare/patching/last-run.json").content_string)
    assert record["result"] == "nothing_to_do" and record["kind"] == "security"  # idempotence's run
    runs = [json.loads(line) for line in
            host.file("/var/lib/fleetcare/patching/runs.jsonl").content_string.splitlines()]
    converge = [r for r in runs if r["result"] == "success"]
    assert converge
    assert converge[-1]["packages"] == [{"package": "fc-sec", "from": "1.0", "to": "1.1", "planned": "1.1"}]
    assert converge[-1]["end"] >= converge[-1]["start"]
    # the earlier side_effect runs: refused by the blackout, blocked by the interrupted dpkg
    assert [r["result"] for r in runs[:2]] == ["refused", "blocked"]
    # a container is never rebooted (policy never here, so nothing was asked)
    assert converge[-1]["reboot"]["action"] == "none"


def test_no_apt_cache_folder_left(host):
    """Each module call keeps APT's caches in a temporary folder of its own and removes it."""
    left = host.run("find /tmp /var/tmp -maxdepth 3 -name 'fleetcare-apt-*'")
    assert left.rc == 0 and left.stdout.strip() == ""
