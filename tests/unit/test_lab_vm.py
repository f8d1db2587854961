"""The VM lab's parts that need no VM (fleetcare_lab/vm.py): what the image bakes in, its boot
sector, the seed disk, the inventory shape, and the cache key."""

from __future__ import annotations

import itertools
import json
import subprocess
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


def test_the_disk_has_grub_code_a_bootable_root_and_the_benchmarks_partitions(tmp_path: Path):
    """The records written into a sparse file of the image's size, read back by partx."""
    boot = bytes(range(256)) * 2
    records = vm.partition_records(boot)
    mbr = records[0]
    assert len(mbr) == 512 and mbr[:440] == boot[:440] and mbr[510:] == b"\x55\xaa"
    assert all(len(r) == 512 and r[510:] == b"\x55\xaa" for r in records.values())
    disk = tmp_path / "disk.raw"
    with disk.open("wb") as out:
        out.truncate(vm.IMAGE_SIZE)
        for sector, record in records.items():
            out.seek(sector * vm.SECTOR)
            out.write(record)
    # partx (util-linux) reads the table as the kernel would
    proc = subprocess.run(["partx", "--show", "--noheadings", "-o", "NR,START,SECTORS,TYPE,FLAGS",
                           str(disk)], capture_output=True, text=True, check=True)
    parts = {}
    for line in proc.stdout.splitlines():
        nr, start, sectors, kind, flags = line.split()
        parts[int(nr)] = {"start": int(start), "size": int(sectors), "type": kind, "bootable": flags == "0x80"}
    assert sorted(parts) == [1, 2, 5, 6, 7, 8]
    assert parts[1]["bootable"] and parts[1]["type"] == "0x83" and parts[1]["start"] * 512 == vm.PART_OFFSET
    assert parts[2]["type"] == "0x5" and parts[2]["start"] + parts[2]["size"] == vm.IMAGE_SIZE // 512
    assert parts[1]["start"] + parts[1]["size"] == parts[2]["start"]
    layout = vm.layout()
    for number, (mount, label, first, count), (want_mount, want_label, size) in zip(
            (5, 6, 7, 8), layout[1:], vm.PARTITIONS, strict=True):
        assert (mount, label) == (want_mount, want_label)
        assert parts[number]["type"] == "0x83" and parts[number]["start"] == first
        assert parts[number]["size"] * 512 == count * 512 == size
        assert first % vm.ALIGN_SECTORS == 0  # every file system on a MiB
    # no two file systems overlap, and each lies inside the disk
    spans = sorted((first, first + count) for _, _, first, count in layout)
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans))
    assert spans[-1][1] <= vm.IMAGE_SIZE // 512


def test_the_guest_mounts_every_file_system_by_label_with_fresh_options():
    lines = [line.split() for line in vm.fstab().splitlines()]
    assert lines[0] == ["LABEL=root", "/", "ext4", "errors=remount-ro", "0", "1"]
    assert [(f[0], f[1], f[3]) for f in lines[1:]] == [
        ("LABEL=home", "/home", "defaults"), ("LABEL=var", "/var", "defaults"),
        ("LABEL=varlog", "/var/log", "defaults"), ("LABEL=varaudit", "/var/log/audit", "defaults")]


def test_the_tree_is_split_deepest_first_with_mount_points_left_behind(tmp_path: Path):
    rootfs, work = tmp_path / "rootfs", tmp_path / "work"
    for d in ("etc", "home/fleetcare", "var/lib/dpkg", "var/log/apt", "var/log/audit"):
        (rootfs / d).mkdir(parents=True)
    (rootfs / "var/log/audit").chmod(0o750)
    (rootfs / "var/log/audit/audit.log").write_text("a")
    (rootfs / "var/log/apt/history.log").write_text("h")
    (rootfs / "var/lib/dpkg/status").write_text("s")
    work.mkdir()
    trees = vm._split_tree(rootfs, work)
    assert trees["/"] == rootfs
    assert sorted(p.name for p in (rootfs / "var").iterdir()) == []
    assert sorted(p.name for p in (rootfs / "home").iterdir()) == []
    assert (trees["/var"] / "lib/dpkg/status").read_text() == "s"
    assert sorted(p.name for p in (trees["/var"] / "log").iterdir()) == []
    assert (trees["/var/log"] / "apt/history.log").read_text() == "h"
    assert sorted(p.name for p in (trees["/var/log"] / "audit").iterdir()) == []
    assert (trees["/var/log/audit"] / "audit.log").read_text() == "a"
    # the mount point keeps the mode of the directory it stands for
    assert (trees["/var/log"] / "audit").stat().st_mode & 0o7777 == 0o750
    assert trees["/var/log/audit"].stat().st_mode & 0o7777 == 0o750


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
