"""The package-list refresh of fleetcare.ops.apt_lists and of the patching module (one function,
module_utils/debian.py) on a fake host root: apt-get is replaced by a function that writes the
lists as apt would (the real apt-get runs in tests/integration/test_image_host.py)."""

from __future__ import annotations

import os
from pathlib import Path

from ansible_collections.fleetcare.ops.plugins.module_utils import debian

NOW = 1_800_000_000.0


def fake_apt_get(root: Path, rc: int = 0, writes: bool = True):
    calls = []

    def runner(argv, timeout=0, env=None):
        calls.append(argv)
        if writes:
            lists = root / "var/lib/apt/lists"
            lists.mkdir(parents=True, exist_ok=True)
            (lists / "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages").write_text("Package: x\n")
            (lists / "deb.debian.org_debian_dists_bookworm_InRelease").write_text("Suite: bookworm\n")
        return rc, "", "E: failed to fetch" if rc else ""
    runner.calls = calls
    return runner


def emptied(tmp_path: Path) -> Path:
    """What an image leaves after rm -rf /var/lib/apt/lists/*: the directory, new and empty."""
    (tmp_path / "var/lib/apt/lists/partial").mkdir(parents=True)
    return tmp_path


def test_emptied_lists_are_refreshed_whatever_the_age(tmp_path):
    root = emptied(tmp_path)
    apt = fake_apt_get(root)
    changed, reason, error = debian.refresh_apt_lists(10**9, 60, False, str(root), apt, lambda: NOW)
    assert (changed, error) == (True, None) and "no package lists" in reason
    assert apt.calls == [["apt-get", "-q", "update"]]
    # now there: kept, even with max_age 0 ("only when missing")
    apt2 = fake_apt_get(root)
    assert debian.refresh_apt_lists(0, 60, False, str(root), apt2, lambda: NOW) == (False, "", None)
    assert apt2.calls == []


def test_old_lists_are_refreshed_only_past_max_age(tmp_path):
    root = emptied(tmp_path)
    fake_apt_get(root)(["apt-get"])
    release = root / "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease"
    age = os.stat(release).st_ctime
    apt = fake_apt_get(root)
    assert debian.refresh_apt_lists(86400, 60, False, str(root), apt, lambda: age + 100)[0] is False
    changed, reason, _ = debian.refresh_apt_lists(86400, 60, False, str(root), apt, lambda: age + 86401)
    assert changed and "older than 86400 s" in reason and len(apt.calls) == 1


def test_check_mode_runs_nothing_and_failures_are_named(tmp_path):
    root = emptied(tmp_path)
    apt = fake_apt_get(root)
    changed, reason, error = debian.refresh_apt_lists(0, 60, True, str(root), apt, lambda: NOW)
    assert changed and reason and error is None and apt.calls == []
    failing = fake_apt_get(root, rc=100, writes=False)
    _, _, error = debian.refresh_apt_lists(0, 60, False, str(root), failing, lambda: NOW)
    assert error == "apt-get update exited 100: E: failed to fetch"
    _, _, error = debian.refresh_apt_lists(0, 60, False, str(root), fake_apt_get(root, writes=False), lambda: NOW)
    assert error.startswith("apt-get update left no package lists")
