"""The backup role's job wrapper (roles/backup/files/fleetcare-backup) run for real on this
machine with the Debian restic (apt-get install restic) against a scratch repository: stale and
live locks, the rotating check subset, post hooks, partial snapshots and the restore drill.

The wrapper reads its configuration and writes its records under the directories the
environment names (FLEETCARE_BACKUP_CONFIG_DIR, FLEETCARE_BACKUP_STATUS_DIR); everything else is
the real thing: restic, its repository, its locks, its processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
WRAPPER = ROOT / "roles" / "backup" / "files" / "fleetcare-backup"
PASSWORD = "wrapper-test-not-a-secret-61d2"

if not shutil.which("restic"):  # the CI machine installs it (setup.sh --test)
    pytest.fail("restic is not installed: apt-get install -y restic", pytrace=False)


class Box:
    """A configuration, a status directory, a repository and data, all under tmp_path."""

    def __init__(self, tmp: Path, **repo):
        self.tmp = tmp
        self.conf, self.status, self.repo, self.data = (tmp / n for n in ("conf", "status", "repo", "data"))
        (self.conf / "sets").mkdir(parents=True)
        self.data.mkdir()
        (tmp / "password").write_text(PASSWORD)
        os.chmod(tmp / "password", 0o600)
        self.config = {"repository": str(self.repo), "password_file": str(tmp / "password"),
                       "restic_version": self.version(), "keep_last": 3, "stale_lock_minutes": 60,
                       "check_subset_total": 3, "drill_files": 5, "drill_dir": str(tmp / "scratch"),
                       "cache_dir": str(tmp / "cache"), **repo}
        self.write_config()
        for i in range(8):
            (self.data / f"f{i}.txt").write_text(f"file {i}\n" * (i + 1) * 100)

    @staticmethod
    def version() -> str:
        return subprocess.run(["restic", "version"], capture_output=True, text=True).stdout.split()[1]

    def write_config(self) -> None:
        (self.conf / "repository.json").write_text(json.dumps(self.config))

    def add_set(self, name: str, **spec) -> None:
        (self.conf / "sets" / f"{name}.json").write_text(json.dumps({"paths": [str(self.data)], **spec}))

    def env(self) -> dict[str, str]:
        return {**os.environ, "FLEETCARE_BACKUP_CONFIG_DIR": str(self.conf),
                "FLEETCARE_BACKUP_STATUS_DIR": str(self.status), "RESTIC_REPOSITORY": str(self.repo),
                "RESTIC_PASSWORD_FILE": str(self.tmp / "password"), "RESTIC_CACHE_DIR": str(self.tmp / "cache")}

    def job(self, *argv: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, sys.executable, str(WRAPPER), *argv], capture_output=True, text=True,
                              env=self.env(), timeout=120)

    def restic(self, *argv: str, **kw) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["restic", *argv], capture_output=True, text=True, env=self.env(), timeout=120, **kw)

    def record(self, name: str) -> dict:
        return json.loads((self.status / f"{name}.json").read_text())

    def locks(self) -> list[str]:
        return self.restic("--no-lock", "list", "locks").stdout.split()

    def hold_lock(self) -> subprocess.Popen:
        """A real restic holding a real lock: backup --stdin reading from a pipe kept open."""
        proc = subprocess.Popen(["restic", "backup", "--stdin", "--stdin-filename", "held"],
                                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=self.env())
        for _ in range(100):
            if self.locks():
                return proc
            time.sleep(0.1)
        proc.kill()
        raise AssertionError("restic took no lock")


@pytest.fixture
def box(tmp_path) -> Box:
    b = Box(tmp_path)
    assert b.restic("init").returncode == 0
    b.add_set("data")
    return b


def test_a_backup_writes_its_record(box):
    done = box.job("backup", "data")
    assert done.returncode == 0, done.stderr
    record = box.record("data")
    assert record["ok"] and record["meaning"] == "success" and record["snapshot_id"]
    assert record["last_success"] == record["end"]
    assert record["locks"] == {"removed": [], "live": 0, "kept": []}


def test_a_killed_restic_leaves_a_stale_lock_that_is_removed_and_reported(box):
    held = box.hold_lock()
    held.send_signal(signal.SIGKILL)
    held.wait()
    held.stdin.close()
    (stale,) = box.locks()
    # younger than the bound (60 minutes): its process is gone, but it stays
    assert box.job("backup", "data").returncode == 0
    assert box.locks() == [stale]
    assert box.record("_locks")["young"][0]["id"] == stale[:8]
    box.config["stale_lock_minutes"] = 0
    box.write_config()
    done = box.job("backup", "data")
    assert done.returncode == 0
    assert box.locks() == []
    assert "removed stale lock " + stale[:8] in done.stderr
    locks = box.record("_locks")
    assert [lock["id"] for lock in locks["removed"]] == [stale[:8]]
    assert locks["removed"][0]["pid"] == held.pid and locks["removed"][0]["hostname"] == os.uname().nodename
    assert [lock["id"] for lock in locks["removed_recently"]] == [stale[:8]]
    assert box.record("data")["locks"]["removed"] == [stale[:8]]
    # the next sweep finds nothing, but the removal stays on record for the audit
    assert box.job("check").returncode == 0
    assert box.record("_locks")["removed"] == [] and len(box.record("_locks")["removed_recently"]) == 1


def test_a_live_lock_is_never_removed_and_a_wedged_prune_fails(box):
    assert box.job("backup", "data").returncode == 0
    box.config["stale_lock_minutes"] = 0
    box.write_config()
    held = box.hold_lock()
    try:
        (live,) = box.locks()
        done = box.job("forget")
        assert box.locks() == [live]
        locks = box.record("_locks")
        assert [lock["id"] for lock in locks["live"]] == [live[:8]] and locks["removed"] == []
        # forget --prune wants an exclusive lock: it fails, and says why, not exit 0
        assert done.returncode != 0
        record = box.record("_forget")
        assert record["ok"] is False and record["meaning"] == "failed to lock the repository"
        assert "locked" in record["stderr_tail"]
    finally:
        held.stdin.close()
        held.wait(timeout=60)


def test_the_check_subset_rotates_and_stays_on_a_failure(box):
    assert box.job("backup", "data").returncode == 0
    seen = []
    for _ in range(4):
        assert box.job("check").returncode == 0
        seen.append(box.record("_check")["subset"])
    assert seen == ["1/3", "2/3", "3/3", "1/3"]
    for pack in (box.repo / "data").rglob("*"):
        if pack.is_file():
            pack.chmod(0o644)
            body = bytearray(pack.read_bytes())
            body[len(body) // 2] ^= 0xFF
            pack.write_bytes(bytes(body))
    box.config["check_subset_total"] = 1  # read everything: the damage is found for sure
    box.write_config()
    assert box.job("check").returncode != 0
    assert box.record("_check")["ok"] is False and box.record("_check")["subset"] == "1/1"


def test_post_hook_runs_after_a_failure_and_is_told_the_result(box, tmp_path):
    marker = tmp_path / "post"
    box.add_set("hooks", pre_hook="exit 4", post_hook=f"echo $FLEETCARE_BACKUP_EXIT > {marker}")
    assert box.job("backup", "hooks").returncode == 1
    record = box.record("hooks")
    assert record["hook"]["exit_code"] == 4 and record["post_hook"]["exit_code"] == 0
    assert marker.read_text().strip() == "1"
    assert record["last_success"] is None


# root reads every file; without these two capabilities it reads only what the mode lets it
NO_DAC = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")


def test_an_unreadable_source_gives_a_partial_snapshot_naming_it(box):
    locked = box.data / "locked.txt"
    locked.write_text("no one reads this\n")
    locked.chmod(0)
    box.add_set("partial")
    done = box.job("backup", "partial", prefix=NO_DAC)
    assert done.returncode == 3, done.stderr
    record = box.record("partial")
    assert record["ok"] is False and record["meaning"].startswith("incomplete snapshot")
    assert record["unreadable"] == [str(locked)]
    assert record["snapshot_id"]  # the snapshot was written, without that file
    assert record["last_success"] is None


def test_the_drill_passes_on_a_good_repository_and_cleans_up(box):
    assert box.job("backup", "data").returncode == 0
    done = box.job("drill")
    assert done.returncode == 0, done.stderr
    record = box.record("_drill")
    result = record["sets"]["data"]
    assert record["ok"] and result["ok"] and len(result["files"]) == 5
    assert result["live_compared"] == 5 and result["mismatched"] == [] and result["unreadable"] == []
    assert record["scratch_removed"] and list((box.tmp / "scratch").iterdir()) == []


def test_the_drill_compares_with_the_live_file_and_names_a_mismatch(box):
    box.add_set("one", drill_paths=[str(box.data / "f3.txt")])
    assert box.job("backup", "one").returncode == 0
    target = box.data / "f3.txt"
    stat = target.stat()
    # same size and mtime as in the snapshot, other content: the live file no longer matches
    body = bytearray(target.read_bytes())
    body[0] ^= 0x01
    target.write_bytes(bytes(body))
    os.utime(target, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert box.job("drill").returncode == 1
    result = box.record("_drill")["sets"]["one"]
    assert result["files"] == [str(target)]
    assert [m["path"] for m in result["mismatched"]] == [str(target)]


def test_the_drill_fails_on_a_corrupted_repository_naming_files(box):
    assert box.job("backup", "data").returncode == 0
    for pack in (box.repo / "data").rglob("*"):
        if pack.is_file():
            pack.chmod(0o644)
            body = bytearray(pack.read_bytes())
            for at in range(64, len(body), 97):
                body[at] ^= 0xFF
            pack.write_bytes(bytes(body))
    assert box.job("drill").returncode == 1
    record = box.record("_drill")
    result = record["sets"]["data"]
    assert record["ok"] is False and result["ok"] is False
    assert result["unreadable"] or result.get("error") or result["mismatched"]
    assert record["scratch_removed"] and list((box.tmp / "scratch").iterdir()) == []
