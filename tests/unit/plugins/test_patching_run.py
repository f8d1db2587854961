"""A patch run (module_utils/patching_run.py) on a fake host root: the hooks are real shell
commands, apt is replaced by a function that rewrites the fake dpkg status as apt would (the real
apt runs in molecule/patching); the record is written and read back by the audit (PTCH-RUN-001)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "unit" / "fixtures" / "patching"


from ansible_collections.fleetcare.ops.plugins.module_utils import patching_run  # noqa: E402
from test_patching_audit import fake_apt  # noqa: E402  (same folder, on sys.path)
from test_patching_audit import run as audit  # noqa: E402

PARAMS = {"upgrade": ["fc-other=1.1", "fc-sec=1.1"], "kind": "all", "blocked": [], "refused": "", "stopped": "",
          "unhealthy": [], "pre_hooks": [], "post_hooks": [], "hook_timeout": 10, "lock_timeout": 5, "start": 0,
          "reboot": "never"}


def make_host(tmp_path: Path) -> Path:
    """A fake container root: the fixture dpkg status and one Release file."""
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    shutil.copy(FIXTURES / "dpkg_status", tmp_path / "var/lib/dpkg/status")
    (tmp_path / "var/lib/apt/lists").mkdir(parents=True)
    shutil.copy(FIXTURES / "Release", tmp_path / "var/lib/apt/lists/x_Release")
    (tmp_path / "run").mkdir()
    (tmp_path / "run/.containerenv").write_text("")
    return tmp_path


@pytest.fixture
def host(tmp_path: Path) -> Path:
    return make_host(tmp_path)


def fake_apt_get(root: Path, rc: int = 0):
    """Installs name=version items by rewriting the fake status, as apt-get install would."""
    calls = []

    def apt(argv, timeout, env=None):
        calls.append((argv, env))
        if rc:
            return rc, "E: Sub-process /usr/bin/dpkg returned an error code (1)\n"
        status = root / "var/lib/dpkg/status"
        text = status.read_text()
        for item in argv:
            if "=" in item and not item.startswith(("-", "Dpkg", "DPkg")):
                name, version = item.split("=")
                text = text.replace(f"Package: {name}\nStatus: install ok installed\nVersion: 1.0",
                                    f"Package: {name}\nStatus: install ok installed\nVersion: {version}")
        status.write_text(text)
        return 0, "Setting up fc-sec (1.1) ...\n"

    apt.calls = calls
    return apt


def clock(*times):
    it = iter(times)
    return lambda: next(it)


def test_success_runs_hooks_around_apt_and_records_from_to(host: Path, tmp_path_factory):
    marks = tmp_path_factory.mktemp("marks")
    apt = fake_apt_get(host)
    params = dict(PARAMS, pre_hooks=[f"echo pre > {marks}/pre", "true"],
                  post_hooks=[f"test -f {marks}/pre && echo post > {marks}/post"])
    record = patching_run.apply(params, str(host), apt, now=clock(1000.0, 1042.5))
    assert record["result"] == "success" and record["ok"] is True and record["attempt_failed"] is False
    assert (marks / "pre").exists() and (marks / "post").exists()
    argv, env = apt.calls[0]
    assert argv[-2:] == ["fc-other=1.1", "fc-sec=1.1"] and "DPkg::Lock::Timeout=5" in argv
    assert env["DEBIAN_FRONTEND"] == "noninteractive" and env["NEEDRESTART_SUSPEND"] == "1"
    assert record["packages"] == [{"package": "fc-other", "from": "1.0", "to": "1.1", "planned": "1.1"},
                                  {"package": "fc-sec", "from": "1.0", "to": "1.1", "planned": "1.1"}]
    assert record["changed"] == ["fc-other", "fc-sec"]
    assert (record["start"], record["end"]) == (1000.0, 1042.5)
    assert [h["phase"] for h in record["hooks"]] == ["pre", "pre", "post"]
    path = patching_run.write_record(record, str(host))
    assert Path(path) == host / "var/lib/fleetcare/patching/last-run.json"
    assert json.loads(Path(path).read_text())["result"] == "success"
    found = audit(host, fake_apt(), now=1042.5 + 86400)[0]["PTCH-RUN-001"]
    assert found["status"] == "pass" and found["evidence"]["days_since_run"] == 1.0
    assert found["evidence"]["changed"] == ["fc-other", "fc-sec"]


def test_failing_pre_hook_stops_the_patch(host: Path):
    apt = fake_apt_get(host)
    params = dict(PARAMS, pre_hooks=["true", "echo draining failed >&2; exit 3", "echo never"],
                  post_hooks=["echo never"])
    record = patching_run.apply(params, str(host), apt)
    assert record["result"] == "pre_hook_failed" and record["ok"] is False and record["attempt_failed"] is True
    assert record["reason"] == "pre hook 'echo draining failed >&2; exit 3' exited 3"
    assert "draining failed" in record["hooks"][-1]["output"]
    assert len(record["hooks"]) == 2 and apt.calls == []  # apt and the rest never ran
    assert record["changed"] == [] and record["packages"][1] == {
        "package": "fc-sec", "from": "1.0", "to": "1.0", "planned": "1.1"}
    patching_run.write_record(record, str(host))
    found = audit(host)[0]["PTCH-RUN-001"]
    assert found["status"] == "fail" and "exited 3" in found["evidence"]["reason"]
    assert found["evidence"]["failed_hooks"][0]["rc"] == 3


def test_blocked_refused_and_apt_failure(host: Path):
    apt = fake_apt_get(host)
    record = patching_run.apply(dict(PARAMS, blocked=["PTCH-LOCK-001: held by pid 42 (apt-get)"],
                                       pre_hooks=["exit 9"]), str(host), apt)
    assert record["result"] == "blocked" and "pid 42" in record["reason"] and record["hooks"] == []
    record = patching_run.apply(dict(PARAMS, refused="outside the window"), str(host), apt)
    assert record["result"] == "refused" and apt.calls == []
    record = patching_run.apply(dict(PARAMS, stopped="health gate failed on web-2: HLTH-UNIT-001",
                                       pre_hooks=["exit 9"]), str(host), apt)
    assert record["result"] == "stopped" and record["ok"] is False and record["attempt_failed"] is False
    assert record["hooks"] == [] and apt.calls == []
    record = patching_run.apply(dict(PARAMS, unhealthy=["HLTH-CERT-001"], pre_hooks=["exit 9"]), str(host), apt)
    assert record["result"] == "unhealthy" and record["ok"] is False and record["attempt_failed"] is False
    assert record["hooks"] == [] and apt.calls == []
    assert record["reason"] == "not patched: unhealthy before patching (HLTH-CERT-001)"
    record = patching_run.apply(PARAMS, str(host), fake_apt_get(host, rc=100))
    assert record["result"] == "failed" and record["reason"].startswith("apt-get exited 100: E: Sub-process")
    record = patching_run.apply(dict(PARAMS, upgrade=[]), str(host), apt)
    assert record["result"] == "nothing_to_do" and record["ok"] is True and apt.calls == []


def test_hook_timeout_counts_as_failure(host: Path):
    record = patching_run.apply(dict(PARAMS, pre_hooks=["sleep 5"], hook_timeout=1), str(host), fake_apt_get(host))
    assert record["result"] == "pre_hook_failed" and record["hooks"][0]["rc"] == 124


def test_record_is_atomic_and_history_grows_one_line_per_run(host: Path):
    for n in range(3):
        patching_run.write_record({"result": "success", "start": n}, str(host))
    folder = host / "var/lib/fleetcare/patching"
    assert sorted(p.name for p in folder.iterdir()) == ["last-run.json", "runs.jsonl"]  # no temporary left
    lines = (folder / "runs.jsonl").read_text().splitlines()
    assert [json.loads(line)["start"] for line in lines] == [0, 1, 2]
    assert patching_run.read_record(str(host))["start"] == 2
    (folder / "last-run.json").write_text("[]")
    with pytest.raises(ValueError):
        patching_run.read_record(str(host))


def test_no_record_is_not_applicable(host: Path):
    found = audit(host)[0]["PTCH-RUN-001"]
    assert found["status"] == "not_applicable" and "no patch run recorded" in found["evidence"]["reason"]
