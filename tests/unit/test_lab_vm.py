"""The VM lab's parts that need no VM (fleetcare_lab/vm.py): what the image bakes in, its boot
sector, the seed disk, the inventory shape, and the cache key."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

import fleetcare_lab as lab
from fleetcare_lab import vm

ROOT = Path(__file__).resolve().parents[2]


def test_the_image_bakes_in_every_package_hardening_installs_by_default():
    catalog = yaml.safe_load((ROOT / "roles/hardening/vars/catalog.yml").read_text())["__hardening_catalog"]
    installed = {c["params"]["package"] for c in catalog if c["kind"] == "package_present" and not c["disruptive"]}
    assert installed == set(vm.HARDENING_PACKAGES)
    # and none that the role purges
    purged = {c["params"]["package"] for c in catalog if c["kind"] == "package_absent"}
    assert not purged & set(vm.HARDENING_PACKAGES + vm.BASE_PACKAGES + vm.SCANNER_PACKAGES)


def test_the_boot_sector_has_grub_code_and_one_bootable_linux_partition():
    boot = bytes(range(256)) * 2
    mbr = vm._mbr(boot)
    assert len(mbr) == 512 and mbr[:440] == boot[:440] and mbr[510:] == b"\x55\xaa"
    entry = mbr[446:462]
    assert entry[0] == 0x80 and entry[4] == 0x83
    first, count = int.from_bytes(entry[8:12], "little"), int.from_bytes(entry[12:16], "little")
    assert first * 512 == vm.PART_OFFSET and (first + count) * 512 == vm.IMAGE_SIZE
    assert mbr[462:510] == bytes(48)


def test_the_seed_disk_carries_the_host_name_and_the_key(tmp_path: Path):
    vm._seed(tmp_path, "vm12-1", "ssh-ed25519 AAAA lab")
    data = (tmp_path / "seed.raw").read_bytes()
    assert len(data) % 512 == 0
    assert data.rstrip(b"\0").decode().splitlines() == ["hostname vm12-1", "key ssh-ed25519 AAAA lab"]


def test_the_recipe_hash_follows_the_recipe(monkeypatch):
    before = vm.recipe_hash("12")
    assert before == vm.recipe_hash("12") and before != vm.recipe_hash("11")
    monkeypatch.setattr(vm, "HARDENING_PACKAGES", (*vm.HARDENING_PACKAGES, "extra"))
    assert vm.recipe_hash("12") != before


def test_vms_join_the_inventory_with_the_containers_groups_and_their_own(tmp_path: Path):
    key = tmp_path / "id_ed25519"
    hosts = [
        {"host": "debian12-1", "name": "fleetcare-lab-x-debian12-1", "distro": "12", "port": 2201},
        {"host": "vm12-1", "name": "vm12-1", "distro": "12", "port": 2202, "kind": "vm"},
    ]
    doc = yaml.safe_load(lab._write_inventory(tmp_path, key, hosts).read_text())
    lab_group = doc["all"]["children"]["lab"]
    assert set(lab_group["hosts"]) == {"debian12-1", "vm12-1"}
    assert lab_group["hosts"]["vm12-1"]["ansible_user"] == "root"
    assert lab_group["hosts"]["vm12-1"]["fleetcare_lab_vm"] == "vm12-1"
    assert set(lab_group["children"]["debian12"]["hosts"]) == {"debian12-1", "vm12-1"}
    assert set(lab_group["children"]["vm"]["hosts"]) == {"vm12-1"}


def test_a_vm_without_qemu_running_is_stopped(tmp_path: Path):
    vmdir = tmp_path / "vms" / "vm12-1"
    vmdir.mkdir(parents=True)
    (vmdir / "vm.json").write_text(json.dumps({"host": "vm12-1", "distro": "12", "index": 1, "port": 1}))
    (vmdir / "qemu.pid").write_text("1\n")  # PID 1 is not this VM's qemu
    assert [h["state"] for h in vm.vms(tmp_path)] == ["stopped"]
