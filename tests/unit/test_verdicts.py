"""A passed check of a run's inputs is kept for the same inputs: the next run with them takes its
hosts from the verdict without parsing the inventory; any change of what the checks read, a
failed check or a dynamic inventory is judged again; the kept files hold no variable value."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from fleetcare import inputs, jobs
from fleetcare.inputs import InputError

INVENTORY = """all:
  children:
    web:
      hosts:
        web-1: {ansible_host: 10.0.0.1}
        web-2: {ansible_host: 10.0.0.2}
    db:
      hosts:
        db-1: {ansible_host: 10.0.0.3}
"""


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    inputs._load_inventory_cached.cache_clear()
    yield home / "fleetcare" / "verdicts"
    inputs._load_inventory_cached.cache_clear()


@pytest.fixture
def fleet(tmp_path) -> Path:
    directory = tmp_path / "fleet"
    (directory / "host_vars").mkdir(parents=True)
    (directory / "hosts.yml").write_text(INVENTORY)
    return directory / "hosts.yml"


@pytest.fixture
def parses(monkeypatch) -> list[str]:
    """Each parse of an inventory (the in-process cache cleared, so only the verdict can spare one)."""
    calls: list[str] = []
    real = inputs.load_inventory

    def counted(path, limit):
        calls.append(str(path))
        inputs._load_inventory_cached.cache_clear()
        return real(path, limit)

    monkeypatch.setattr(inputs, "load_inventory", counted)
    return calls


def build(inventory: Path, *pairs: str, limit: str | None = None) -> jobs.Job:
    return jobs.build("inspect", inventory=str(inventory), limit=limit, var_pairs=pairs)


def test_the_same_inputs_are_judged_once(cache_home, fleet, parses):
    first = build(fleet, "health_disk_warn_pct=80")
    judged = len(parses)
    second = build(fleet, "health_disk_warn_pct=80")
    assert first.hosts == second.hosts == ("web-1", "web-2", "db-1")
    assert judged > 0 and len(parses) == judged
    assert stat.S_IMODE(cache_home.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in cache_home.iterdir())


@pytest.mark.parametrize("change", ["inventory byte", "new host_vars file", "other value", "limit"])
def test_any_change_of_what_the_checks_read_is_judged_again(cache_home, fleet, parses, change):
    build(fleet, "health_disk_warn_pct=80")
    judged = len(parses)
    pairs, limit = ["health_disk_warn_pct=80"], None
    if change == "inventory byte":
        fleet.write_text(INVENTORY.replace("10.0.0.3", "10.0.0.4"))
    elif change == "new host_vars file":  # judged again (Ansible's plugin lists the folder once per process)
        (fleet.parent / "host_vars" / "db-1.yml").write_text("health_disk_warn_pct: 70\n")
    elif change == "other value":
        pairs = ["health_disk_warn_pct=81"]
    else:
        limit = "web"
    again = build(fleet, *pairs, limit=limit)
    assert len(parses) == 2 * judged
    assert again.hosts == (("web-1", "web-2") if change == "limit" else ("web-1", "web-2", "db-1"))


def test_a_failed_check_is_not_kept(cache_home, fleet, parses):
    (fleet.parent / "host_vars" / "db-1.yml").write_text("health_disk_critical_pct: 50\n")
    counts = []
    for _ in range(2):
        with pytest.raises(InputError, match="health_disk_critical_pct"):
            build(fleet)
        counts.append(len(parses))
    assert counts[0] > 0 and counts[1] == 2 * counts[0]
    assert not cache_home.exists() or not list(cache_home.glob("*.json"))


def test_a_bad_value_after_a_kept_verdict_is_still_refused(cache_home, fleet, parses):
    # the file is there from the start: Ansible's host_vars plugin lists a folder once per process
    (fleet.parent / "host_vars" / "db-1.yml").write_text("health_disk_critical_pct: 99\n")
    build(fleet)
    (fleet.parent / "host_vars" / "db-1.yml").write_text("health_disk_critical_pct: 50\n")
    with pytest.raises(InputError, match=r"host_vars/db-1: health_disk_critical_pct"):
        build(fleet)


def test_a_dynamic_inventory_is_judged_every_time(cache_home, tmp_path, parses):
    script = tmp_path / "inventory.sh"
    script.write_text('#!/bin/sh\necho \'{"all": {"hosts": ["app-1"]}, "_meta": {"hostvars": {}}}\'\n')
    script.chmod(0o755)
    assert build(script).hosts == ("app-1",)
    judged = len(parses)
    assert build(script).hosts == ("app-1",)
    assert judged > 0 and len(parses) == 2 * judged
    assert not cache_home.exists() or not list(cache_home.glob("*.json"))


def test_kept_verdicts_hold_no_value(cache_home, fleet, parses):
    secret = "Pl4nted-verdict-secret-7731"
    (fleet.parent / "host_vars" / "web-1.yml").write_text(f"backup_password: {secret}\nhealth_disk_warn_pct: 80\n")
    build(fleet, f"health_units_ignore=['{secret}']")
    kept = list(cache_home.iterdir())
    assert kept
    for path in kept:
        data = path.read_bytes()
        assert secret.encode() not in data and b"10.0.0" not in data and b"disk_warn" not in data


def test_a_damaged_verdict_is_judged_again(cache_home, fleet, parses):
    build(fleet)
    judged = len(parses)
    for path in cache_home.glob("*.json"):
        path.write_text('{"hosts": 3}')
    assert build(fleet).hosts == ("web-1", "web-2", "db-1")
    assert len(parses) == 2 * judged


def test_a_folder_others_can_write_is_not_used(cache_home, fleet, parses):
    cache_home.mkdir(parents=True)
    os.chmod(cache_home, 0o777)
    build(fleet)
    judged = len(parses)
    build(fleet)
    assert len(parses) == 2 * judged and not list(cache_home.iterdir())
