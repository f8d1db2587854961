"""fleetcare_lab lists its containers even when another lab's container vanishes between
`podman ps` and `podman container inspect` (labs of parallel runs live side by side)."""

from __future__ import annotations

import json
import subprocess

import fleetcare_lab as lab


def test_a_container_removed_between_ps_and_inspect_is_left_out(monkeypatch):
    alive = {"aaa": {"Name": "fleetcare-lab-1-debian12-1"}}
    calls = []

    def podman(*args, check=True, input=None):
        calls.append(args)
        if args[0] == "ps":
            return subprocess.CompletedProcess(args, 0, "aaa\nbbb\n", "")
        ids = args[2:]
        if all(i in alive for i in ids):
            return subprocess.CompletedProcess(args, 0, json.dumps([alive[i] for i in ids]), "")
        return subprocess.CompletedProcess(args, 125, "[]", "Error: inspecting object: no such container bbb")

    monkeypatch.setattr(lab, "_podman", podman)
    assert lab._containers(None) == [alive["aaa"]]
    assert ("container", "inspect", "aaa", "bbb") in calls  # one call first, one by one only after it failed


def test_a_lab_the_inotify_limit_cannot_hold_is_refused_with_the_setting_named(tmp_path):
    limit = tmp_path / "max_user_instances"
    limit.write_text("128\n")
    # 20 in use and 19 hosts of about 6 each: 128 is too few, and the way out is named
    try:
        lab._check_inotify(19, limit, in_use=20)
    except lab.LabError as exc:
        text = str(exc)
    else:
        raise AssertionError("a lab past the inotify limit was let through")
    assert "\n" not in text
    assert "fs.inotify.max_user_instances is 128 with 20 in use" in text
    assert "sysctl -w fs.inotify.max_user_instances=1024" in text
    # what fits is let through, as is a lab that starts nothing, and a kernel without the file
    lab._check_inotify(18, limit, in_use=20)
    lab._check_inotify(0, limit, in_use=500)
    lab._check_inotify(50, tmp_path / "missing", in_use=0)


def test_inotify_instances_are_counted_from_the_fds_of_a_process_and_of_the_users_processes():
    import ctypes
    import os
    from pathlib import Path

    libc = ctypes.CDLL(None, use_errno=True)
    me = Path("/proc/self")
    before = lab._inotify_fds(me)
    fds = [libc.inotify_init() for _ in range(3)]
    try:
        assert all(fd >= 0 for fd in fds)
        assert lab._inotify_fds(me) - before == 3
        assert lab._inotify_in_use(os.getuid()) >= before + 3
    finally:
        for fd in fds:
            os.close(fd)
    assert lab._inotify_fds(me) == before


def test_a_start_refused_for_its_own_stale_address_releases_only_that_reservation(monkeypatch, tmp_path):
    """podman 4.3 with CNI, under load, can leave a stopped container's address reserved for it,
    and its next start fails ("duplicate allocation"). The lab releases that container's
    reservations and starts again; a reservation of any other container is never touched.
    (podman's refusal is played here; tests/integration/test_lab.py causes it for real.)"""
    own, other = "a" * 64, "b" * 64
    (tmp_path / "podman").mkdir()
    (tmp_path / "other-net").mkdir()
    mine = tmp_path / "podman" / "10.88.0.16"
    mine.write_text(f"{own}\r\neth0")
    theirs = tmp_path / "other-net" / "10.88.0.16"
    theirs.write_text(f"{other}\r\neth0")
    monkeypatch.setattr(lab, "CNI_RESERVATIONS", tmp_path)
    starts = []

    def podman(*args, check=True, input=None):
        starts.append(args)
        if mine.exists():
            return subprocess.CompletedProcess(args, 125, "", (
                f'Error: unable to start container "{own}": plugin type="bridge" failed (add): cni plugin bridge '
                f"failed: failed to allocate for range 0: 10.88.0.16 has been allocated to {own}, duplicate "
                "allocation is not allowed"))
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(lab, "_podman", podman)
    lab._start("fleetcare-lab-1-debian12-2")
    assert starts == [("start", "fleetcare-lab-1-debian12-2")] * 2
    assert not mine.exists() and theirs.read_text().startswith(other)


def test_a_duplicate_address_of_another_container_is_reported_not_released(monkeypatch, tmp_path):
    own, other = "a" * 64, "b" * 64
    (tmp_path / "podman").mkdir()
    theirs = tmp_path / "podman" / "10.88.0.16"
    theirs.write_text(f"{other}\r\neth0")
    monkeypatch.setattr(lab, "CNI_RESERVATIONS", tmp_path)
    message = (f'Error: unable to start container "{own}": failed to allocate for range 0: 10.88.0.16 has been '
               f"allocated to {other}, duplicate allocation is not allowed")
    monkeypatch.setattr(lab, "_podman", lambda *args, check=True, input=None:
                        subprocess.CompletedProcess(args, 125, "", message))
    try:
        lab._start("fleetcare-lab-1-debian12-2")
    except lab.LabError as exc:
        assert "duplicate allocation" in str(exc)
    else:
        raise AssertionError("a start podman refused passed")
    assert theirs.read_text().startswith(other)


def test_a_start_refused_for_its_own_address_is_tried_again_when_podman_released_it(monkeypatch, tmp_path):
    """What podman 4.3 does here: the failed start's own cleanup releases the stale reservation,
    so nothing is left to remove, and the second start succeeds."""
    own = "c" * 64
    monkeypatch.setattr(lab, "CNI_RESERVATIONS", tmp_path)
    answers = [subprocess.CompletedProcess((), 125, "", (
        f'Error: unable to start container "{own}": plugin type="bridge" failed (add): failed to allocate for '
        f"range 0: 10.88.0.9 has been allocated to {own}, duplicate allocation is not allowed")),
        subprocess.CompletedProcess((), 0, "", "")]
    starts = []

    def podman(*args, check=True, input=None):
        starts.append(args)
        return answers.pop(0)

    monkeypatch.setattr(lab, "_podman", podman)
    lab._start("fleetcare-lab-1-debian12-1")
    assert starts == [("start", "fleetcare-lab-1-debian12-1")] * 2


def test_any_other_failed_start_is_not_tried_again(monkeypatch, tmp_path):
    starts = []

    def podman(*args, check=True, input=None):
        starts.append(args)
        return subprocess.CompletedProcess(args, 125, "", "Error: crun: executable file not found")

    monkeypatch.setattr(lab, "_podman", podman)
    try:
        lab._start("fleetcare-lab-1-debian12-1")
    except lab.LabError as exc:
        assert str(exc) == "cannot start fleetcare-lab-1-debian12-1: Error: crun: executable file not found"
    else:
        raise AssertionError("a failed start passed")
    assert len(starts) == 1
