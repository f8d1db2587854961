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
