"""fleetcare.ops.backup_audit and the role's job wrapper: status records written and read on a
temporary tree, systemd and restic answers given by a recording runner (no host is changed)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _load(name, path):
    loader = importlib.machinery.SourceFileLoader(name, str(path))
    spec = importlib.util.spec_from_loader(name, loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


ba = _load("fleetcare_backup_audit", ROOT / "plugins" / "modules" / "backup_audit.py")
wrapper = _load("fleetcare_backup_wrapper", ROOT / "roles" / "backup" / "files" / "fleetcare-backup")

from ansible_collections.fleetcare.ops.plugins.module_utils import backup_status  # noqa: E402
from ansible_collections.fleetcare.ops.plugins.module_utils import health_inspection as hi  # noqa: E402
from ansible_collections.fleetcare.ops.plugins.module_utils.health_checks import BY_ID as HEALTH  # noqa: E402

PARAMS = {name: opt.get("default") for name, opt in ba.ARGUMENT_SPEC.items()}
NOW = 1_800_000_000.0
UNIT_OK = "ActiveState=active\nUnitFileState=enabled\nResult=success\nNextElapseUSecRealtime=Wed 2026-12-02\n"


class Runner:
    """Answers systemctl show with one block per unit and restic with a given (rc, stderr)."""

    def __init__(self, restic=(0, ""), units=None):
        self.restic, self.units, self.calls = restic, units or {}, []

    def __call__(self, argv, timeout=20, env=None):
        self.calls.append((argv, env))
        if argv[0] == "systemctl":
            names = argv[argv.index("--") + 1:]
            return 0, "\n".join(self.units.get(n, UNIT_OK) for n in names), ""
        return self.restic[0], "", self.restic[1]


@pytest.fixture
def status_dir(tmp_path, monkeypatch):
    path = tmp_path / backup_status.STATUS_DIR.lstrip("/")
    path.mkdir(parents=True)
    monkeypatch.setattr(wrapper, "STATUS_DIR", str(path))
    return path


def _findings(tmp_path, runner=None, **params):
    body = ba.audit(dict(PARAMS, **params), root=str(tmp_path), runner=runner or Runner(), now=NOW)["fleetcare"]
    return body, {f["id"]: f for f in body["findings"]}


def _record(name, code, end, hook=None):
    record = {"set": name, "action": "backup", "start": end - 5, "end": end, "duration": 5.0,
              "exit_code": code, "meaning": wrapper.meaning(code, "0.14.0"), "ok": code == 0,
              "snapshot_id": "abc" if code == 0 else None, "hook": hook, "stderr_tail": ""}
    wrapper.write_record(name, record)


def test_last_success_moves_only_on_success(status_dir):
    _record("data", 0, NOW - 3600)
    _record("data", 3, NOW - 60)  # incomplete snapshot: not a success
    record = json.loads((status_dir / "data.json").read_text())
    assert record["exit_code"] == 3 and record["ok"] is False
    assert record["last_success"] == NOW - 3600 and record["last_snapshot_id"] == "abc"
    assert record["meaning"].startswith("incomplete snapshot")
    assert not [p for p in status_dir.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_exit_codes_10_to_12_only_from_restic_017():
    assert wrapper.meaning(12, "0.18.0") == "wrong password"
    assert wrapper.meaning(12, "0.14.0") == "failure (exit code 12)"
    assert wrapper.meaning(10, "0.17.3") == "repository does not exist"


def test_all_pass_when_every_set_is_fresh(tmp_path, status_dir):
    _record("data", 0, NOW - 3600)
    for job in ("_forget", "_check"):
        _record(job, 0, NOW - 600)
    _drill({"data": _drilled()}, NOW - 86400)
    wrapper.write_json("_locks", {"job": "data", "live": [], "young": [], "removed": [], "kept": [],
                                  "removed_recently": [], "error": None})
    body, found = _findings(tmp_path, sets=["data"])
    assert body["expected"] == len(found) == 9
    assert {f["status"] for f in found.values()} == {"pass"}, found
    assert found["BKUP-AGE-001"]["evidence"]["age_hours"] == {"data": 1.0}
    assert {"backup_last_success_age_hours", "backup_last_exit_code"} <= {m["name"] for m in body["metrics"]}


def test_stale_failed_and_partial_sets(tmp_path, status_dir):
    _record("old", 0, NOW - 30 * 3600)
    _record("partial", 0, NOW - 3600)
    _record("partial", 3, NOW - 60)
    _record("hooked", 1, NOW - 60, hook={"exit_code": 7, "output_tail": "dump failed"})
    _, found = _findings(tmp_path, sets=["old", "partial", "hooked"])
    age = found["BKUP-AGE-001"]
    assert age["status"] == "fail" and age["evidence"]["never_succeeded"] == ["hooked"]
    run = found["BKUP-RUN-001"]
    assert run["status"] == "fail" and run["severity"] == "major"
    assert run["evidence"]["failed"] == ["hooked"] and run["evidence"]["partial"] == ["partial"]
    assert run["evidence"]["runs"]["hooked"]["pre_hook_exit_code"] == 7
    _, only_partial = _findings(tmp_path, sets=["partial"])
    assert only_partial["BKUP-RUN-001"]["status"] == "fail" and only_partial["BKUP-RUN-001"]["severity"] == "minor"
    _, only_old = _findings(tmp_path, sets=["old"])
    assert only_old["BKUP-AGE-001"]["evidence"]["over_threshold"] == ["old"]


def test_timers_units_and_repository(tmp_path, status_dir):
    runner = Runner(restic=(1, "Fatal: wrong password or no key found"),
                    units={"fleetcare-backup-data.timer": "ActiveState=inactive\nUnitFileState=disabled\n",
                           "fleetcare-backup-data.service": "ActiveState=failed\nResult=exit-code\nExecMainStatus=1\n"})
    _, found = _findings(tmp_path, runner, sets=["data"])
    assert found["BKUP-TIMER-001"]["evidence"]["inactive"] == ["fleetcare-backup-data.timer"]
    assert found["BKUP-UNIT-001"]["evidence"]["failed"] == ["fleetcare-backup-data.service"]
    repo = found["BKUP-REPO-001"]
    assert repo["status"] == "fail" and repo["evidence"]["problem"] == "wrong password"
    restic_call = next(c for c in runner.calls if c[0][0] == "restic")
    assert restic_call[0] == ["restic", "--no-lock", "cat", "config"]
    assert restic_call[1]["RESTIC_PASSWORD_FILE"] == PARAMS["password_file"]
    assert sum(1 for c in runner.calls if c[0][0] == "systemctl") == 1  # one call for every unit
    assert found["BKUP-PRUNE-001"]["status"] == "not_applicable"


def test_no_sets_is_not_applicable(tmp_path):
    _, found = _findings(tmp_path)
    assert {f["status"] for f in found.values()} == {"not_applicable"}


def test_health_reads_the_same_record(tmp_path, status_dir):
    params = {"backup_max_age_hours": 26}
    ctx = hi.Context(params, root=str(tmp_path))
    finding, _ = hi.run_check(ctx, HEALTH["HLTH-BKUP-001"], hi.check_backup)
    assert finding["status"] == "not_applicable"
    _record("data", 0, 0)  # succeeded long ago
    finding, metrics = hi.run_check(ctx, HEALTH["HLTH-BKUP-001"], hi.check_backup)
    assert finding["status"] == "fail" and finding["evidence"]["set"] == "data"
    _record("data", 0, __import__("time").time())
    finding, metrics = hi.run_check(ctx, HEALTH["HLTH-BKUP-001"], hi.check_backup)
    assert finding["status"] == "pass" and metrics[0]["labels"] == {"set": "data"}


def _drilled(**kw):
    return dict({"snapshot_id": "abc", "files": ["/srv/a", "/srv/b"], "mismatched": [], "unreadable": [],
                 "live_compared": 2, "ok": True}, **kw)


def _drill(sets, end):
    ok = all(r["ok"] for r in sets.values())
    wrapper.write_record("_drill", {"set": "_drill", "action": "drill", "start": end - 3, "end": end,
                                    "exit_code": 0 if ok else 1, "ok": ok, "sets": sets,
                                    "meaning": "success" if ok else "restore drill failed",
                                    "scratch_removed": True})


def test_drill_fails_naming_files_and_when_old(tmp_path, status_dir):
    _record("data", 0, NOW - 3600)
    _, found = _findings(tmp_path, sets=["data"])
    assert found["BKUP-DRILL-001"]["status"] == "not_applicable"
    _drill({"data": _drilled(ok=False, unreadable=["/srv/b"],
                             mismatched=[{"path": "/srv/a", "restored": "1", "snapshot": "2"}])}, NOW - 60)
    _, found = _findings(tmp_path, sets=["data"])
    drill = found["BKUP-DRILL-001"]
    assert drill["status"] == "fail" and drill["severity"] == "major"
    assert drill["evidence"]["failed"]["data"] == {"mismatched": ["/srv/a"], "unreadable": ["/srv/b"], "error": ""}
    _drill({"data": _drilled()}, NOW - 40 * 86400)
    _, found = _findings(tmp_path, sets=["data"])
    assert found["BKUP-DRILL-001"]["status"] == "fail" and found["BKUP-DRILL-001"]["severity"] == "minor"
    body, found = _findings(tmp_path, sets=["data"], drill_max_age_days=60)
    assert found["BKUP-DRILL-001"]["status"] == "pass"
    assert {"backup_drill_age_days", "backup_drill_ok"} <= {m["name"] for m in body["metrics"]}


LOCK = {"id": "1a2b3c4d", "hostname": "h1", "pid": 4242, "time": "2026-12-01T10:00:00Z", "age": 7200}


def test_locks_removed_recently_fail_minor_and_wedged_prune_major(tmp_path, status_dir):
    _record("data", 0, NOW - 3600)
    _, found = _findings(tmp_path, sets=["data"])
    assert found["BKUP-LOCK-001"]["status"] == "not_applicable"
    # a repository restic cannot open is BKUP-REPO-001's failure, not a lock finding
    wrapper.write_json("_locks", {"job": "data", "live": [], "young": [], "removed": [], "kept": [],
                                  "removed_recently": [], "error": "Fatal: wrong password"})
    _, found = _findings(tmp_path, sets=["data"])
    assert found["BKUP-LOCK-001"]["status"] == "pass"
    assert found["BKUP-LOCK-001"]["evidence"]["error"] == "Fatal: wrong password"
    wrapper.write_json("_locks", {"job": "data", "live": [], "young": [], "removed": [],
                                  "kept": [], "removed_recently": [dict(LOCK, removed_at=NOW - 100)]})
    _, found = _findings(tmp_path, sets=["data"])
    lock = found["BKUP-LOCK-001"]
    assert lock["status"] == "fail" and lock["severity"] == "minor"
    assert lock["evidence"]["removed_recently"] == ["1a2b3c4d (host h1, pid 4242, 2026-12-01T10:00:00Z)"]
    # forget/prune could not lock: a failing finding, not a silent exit 0
    wrapper.write_record("_forget", {"set": "_forget", "action": "forget", "start": NOW - 9, "end": NOW - 5,
                                     "exit_code": 1, "ok": False,
                                     "meaning": wrapper.meaning(1, "0.14.0", "Fatal: unable to create lock in "
                                                                "backend: repository is already locked by PID 7"),
                                     "stderr_tail": "repository is already locked by PID 7 on h2"})
    _, found = _findings(tmp_path, sets=["data"])
    lock = found["BKUP-LOCK-001"]
    assert lock["status"] == "fail" and lock["severity"] == "major"
    assert "already locked by PID 7" in lock["evidence"]["wedged_jobs"]["forget"]
    assert found["BKUP-PRUNE-001"]["status"] == "fail"
    assert found["BKUP-PRUNE-001"]["evidence"]["meaning"] == "failed to lock the repository"


def test_lock_states(monkeypatch):
    monkeypatch.setattr(wrapper, "process_alive", lambda pid: pid == 1)
    young, old = dict(LOCK, age=60), dict(LOCK, age=7200)
    assert wrapper.judge_lock(dict(old, pid=1), "h1", 3600) == "live"  # never removed, however old
    assert wrapper.judge_lock(old, "h1", 3600) == "stale"
    assert wrapper.judge_lock(young, "h1", 3600) == "young"
    # another host's lock: its process cannot be seen; stale only when restic stopped refreshing it
    assert wrapper.judge_lock(dict(LOCK, age=1500), "h2", 0) == "live"
    assert wrapper.judge_lock(dict(LOCK, age=1900), "h2", 0) == "stale"
    assert wrapper.lock_time("2026-12-01T10:00:00.123456789+01:00") == wrapper.lock_time("2026-12-01T09:00:00Z")


def test_partial_names_unreadable_paths_and_post_hook_fails_minor(tmp_path, status_dir):
    _record("data", 0, NOW - 3600)
    record = json.loads((status_dir / "data.json").read_text())
    record.update(post_hook={"exit_code": 2, "output_tail": "rm: cannot remove"})
    wrapper.write_json("data", record)
    _, found = _findings(tmp_path, sets=["data"])
    assert found["BKUP-RUN-001"]["status"] == "fail" and found["BKUP-RUN-001"]["severity"] == "minor"
    assert found["BKUP-RUN-001"]["evidence"]["post_hook_failed"] == ["data"]
    assert found["BKUP-AGE-001"]["status"] == "pass"  # the snapshot stands
    record.update(post_hook=None, exit_code=3, ok=False, unreadable=["/srv/locked"])
    wrapper.write_json("data", record)
    _, found = _findings(tmp_path, sets=["data"])
    assert found["BKUP-RUN-001"]["evidence"]["unreadable"] == {"data": ["/srv/locked"]}


def test_unreadable_paths_from_either_restic():
    json_err = '{"message_type":"error","error":{"Op":"open"},"during":"archival","item":"/srv/x"}'
    warning = "\nWarning: at least one source file could not be read"
    assert wrapper.unreadable_paths("", json_err + warning) == ["/srv/x"]
    assert wrapper.unreadable_paths("", "error: open /srv/y: permission denied\n") == ["/srv/y"]


SFTP_COMMAND = ("ssh -i /etc/fleetcare/backup/ssh/id_ed25519 -o StrictHostKeyChecking=yes "
                "-o UserKnownHostsFile=/etc/fleetcare/backup/ssh/known_hosts fcbackup@10.0.0.9 -s sftp")


@pytest.mark.parametrize(("stderr", "problem"), [
    ("Host key verification failed.\nFatal: unable to open repository: ssh command exited: exit status 255",
     "the SFTP server's host key is not the known one"),
    ("fcbackup@10.0.0.9: Permission denied (publickey).\nFatal: ssh command exited: exit status 255",
     "cannot reach the SFTP server"),
    ("Fatal: unable to open config file: Lstat: file does not exist", "repository does not exist"),
])
def test_an_sftp_repository_is_opened_through_the_roles_ssh_command(tmp_path, stderr, problem):
    runner = Runner(restic=(1, stderr))
    _, found = _findings(tmp_path, runner, sets=["data"], repository="sftp:fcbackup@10.0.0.9:/srv/r/web1",
                         sftp_command=SFTP_COMMAND)
    (argv, env), = [c for c in runner.calls if c[0][0] == "restic"]
    assert argv == ["restic", "-o", "sftp.command=" + SFTP_COMMAND, "--no-lock", "cat", "config"]
    assert env["RESTIC_REPOSITORY"] == "sftp:fcbackup@10.0.0.9:/srv/r/web1"
    assert found["BKUP-REPO-001"]["evidence"]["problem"] == problem


def test_the_wrapper_passes_the_ssh_command_only_for_sftp():
    repo = {"repository": "sftp:fcbackup@10.0.0.9:/srv/r/web1", "password_file": "/p", "sftp_command": SFTP_COMMAND}
    assert wrapper.restic_argv(repo, ["snapshots"]) == ["restic", "-o", "sftp.command=" + SFTP_COMMAND, "snapshots"]
    assert wrapper.restic_argv(dict(repo, sftp_command=""), ["snapshots"]) == ["restic", "snapshots"]
    assert "RESTIC_PASSWORD" not in wrapper.restic_env(repo)


STATUS = '{"message_type":"status","percent_done":0.5,"total_files":3}'
SUMMARY = '{"message_type":"summary","files_new":2,"snapshot_id":"1a2b3c4d"}'


@pytest.mark.parametrize("stdout", [
    STATUS + "\n" + SUMMARY + "\n",
    SUMMARY + "\n" + STATUS + "\n",  # restic issue 2389: a status line after the summary
    STATUS + SUMMARY + "\n",  # two messages sharing one line
    STATUS[:20] + SUMMARY + STATUS + "\n",  # a torn status line around it
])
def test_the_backup_summary_is_found_wherever_restic_printed_it(stdout):
    assert wrapper.summary(stdout)["snapshot_id"] == "1a2b3c4d"


def test_no_summary_gives_an_empty_one():
    assert wrapper.summary(STATUS + "\n" + '{"message_type":"summary", torn') == {}


def test_a_lost_summary_is_answered_by_the_newest_snapshot_of_the_run(monkeypatch):
    listed = [{"time": "2026-12-04T10:00:00.5+00:00", "short_id": "old00000", "id": "old"},
              {"time": "2026-12-04T11:00:02.25Z", "short_id": "new11111", "id": "new"}]
    calls = []

    class Proc:
        returncode, stdout, stderr = 0, json.dumps(listed), ""

    def fake(repo, argv):
        calls.append(argv)
        return Proc

    monkeypatch.setattr(wrapper, "restic", fake)
    start = wrapper.node_mtime("2026-12-04T11:00:00Z")
    assert wrapper.snapshot_since({}, "data", start) == "new11111"
    assert calls == [["snapshots", "--json", "--tag", "fleetcare-set=data"]]
    assert wrapper.snapshot_since({}, "data", start + 3600) is None  # none taken by this run


def test_the_sets_snapshots_are_ordered_by_their_time_not_by_its_text(monkeypatch):
    # 12:30 at +02:00 is 10:30 UTC: older than 11:00 UTC although its text sorts later
    listed = [{"time": "2026-12-04T12:30:00+02:00", "short_id": "east0000", "id": "east"},
              {"time": "2026-12-04T11:00:00Z", "short_id": "utc11111", "id": "utc"}]

    class Proc:
        returncode, stdout, stderr = 0, json.dumps(listed), ""

    monkeypatch.setattr(wrapper, "restic", lambda repo, argv: Proc)
    snapshots, _ = wrapper.set_snapshots({}, "data")
    assert [wrapper.short_id(s) for s in snapshots] == ["utc11111", "east0000"]
    Proc.stdout = "not json"
    assert wrapper.set_snapshots({}, "data")[0] is None
    Proc.returncode, Proc.stdout = 1, "[]"
    assert wrapper.set_snapshots({}, "data")[0] is None
