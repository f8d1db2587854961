"""Check mode on the fresh instances changed nothing. prepare.yml recorded
each instance's state and laid a stamp; Molecule's check step then ran
converge.yml with --check; converge.yml's first play recorded the state again
before the role ran for real. Both records must be equal, and no file on the
root filesystem may be newer than the stamp in the second one."""

import difflib

CHECK_DIR = "/var/tmp/fleetcare-check"


def test_check_mode_left_the_host_as_it_was(host):
    before = host.file(f"{CHECK_DIR}/before.txt")
    after = host.file(f"{CHECK_DIR}/after-check.txt")
    assert before.exists, "no record from prepare.yml"
    assert after.exists, "no record from converge.yml's first play"
    old, new = before.content_string, after.content_string
    diff = "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), "before", "after-check"))
    assert new == old, diff
    newer = new.split("## newer than the stamp\n", 1)[1]
    assert newer == "", f"files changed after the stamp:\n{newer}"
