"""Check mode changes nothing. side_effect.yml recorded each instance's state
and laid a stamp; Molecule's check step then ran converge.yml with --check.
Nothing on the root filesystem may be newer than the stamp, and the recorded
state (units, unit files, packages, mounts, /etc) must be unchanged."""

import difflib

CHECK_DIR = "/var/tmp/fleetcare-check"
# Ansible's own temporary files over the podman connection, and the record itself.
EXCLUDED = ["/root/.ansible", CHECK_DIR]


def _require_record(host):
    assert host.file(f"{CHECK_DIR}/stamp").exists, (
        "no record: run `molecule side-effect -s health` before the check step"
    )


def test_check_mode_wrote_no_file(host):
    _require_record(host)
    stamp = f"{CHECK_DIR}/stamp"
    prune = " -o ".join(f"-path {path}" for path in EXCLUDED)
    # -xdev keeps find on the root filesystem, but it still lists the points where
    # tmpfs scratch space (/tmp, /run, ...) is mounted, with the tmpfs's own times.
    out = host.check_output(
        f"find / -xdev \\( {prune} \\) -prune -o \\( -newer {stamp} -o -cnewer {stamp} \\) "
        "! -fstype tmpfs -print"
    )
    assert out == "", f"changed since the check-mode run began:\n{out}"


def test_check_mode_left_the_recorded_state_unchanged(host):
    _require_record(host)
    before = host.file(f"{CHECK_DIR}/before.txt").content_string
    now = host.check_output(f"{CHECK_DIR}/state.sh") + "\n"
    diff = "".join(difflib.unified_diff(before.splitlines(True), now.splitlines(True), "before", "after"))
    assert now == before, diff
