"""`fleetcare drift` for real on this machine (connection local, ansible-runner): baseline,
drift, accept, log; snapshot paths under a temporary directory so it is fast."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def fleetcare(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    return subprocess.run([sys.executable, str(ROOT / "runner.py"), *argv], capture_output=True, text=True,
                          env=env, timeout=300)


def newest_report(tmp_path: Path) -> dict:
    run_dir = max((tmp_path / "data" / "fleetcare" / "runs").iterdir())
    return json.loads((run_dir / "report.json").read_text())


def drifted(report: dict) -> dict[str, dict]:
    return {f["evidence"]["item"]: f for f in report["findings"] if f["status"] == "fail" and "item" in f["evidence"]}


def test_baseline_drift_accept_log_on_this_machine(tmp_path):
    cfg = tmp_path / "cfg"
    (cfg / "sub").mkdir(parents=True)
    (cfg / "app.conf").write_text("a=1\n")
    (cfg / "sub" / "keep").write_text("same\n")
    paths = f"drift_paths=[{cfg}]"

    proc = fleetcare(tmp_path, "drift", "--fail-on", "critical", "-e", paths)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # DRFT-BASE-001 fails as major
    assert set(drifted(newest_report(tmp_path))) == set()
    assert any(f["id"] == "DRFT-BASE-001" and f["status"] == "fail" for f in newest_report(tmp_path)["findings"])

    proc = fleetcare(tmp_path, "drift", "baseline", "-e", paths)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    snap = next(f for f in newest_report(tmp_path)["findings"] if f["id"] == "DRFT-SNAP-001")
    assert snap["status"] == "pass" and snap["evidence"]["items"]["files"] == 2
    assert snap["evidence"]["items"]["packages"] > 0  # this machine's dpkg database, read for real

    (cfg / "app.conf").write_text("a=2\npassword = planted-s3cret\n")
    os.symlink("app.conf", cfg / "link")
    proc = fleetcare(tmp_path, "drift", "-e", paths)
    assert "Traceback" not in proc.stderr
    found = {k: v for k, v in drifted(newest_report(tmp_path)).items() if k.startswith("files:")}
    assert set(found) == {f"files:{cfg}/app.conf", f"files:{cfg}/link"}
    changed = found[f"files:{cfg}/app.conf"]
    assert changed["id"] == "DRFT-FILE-001" and changed["evidence"]["change"] == "changed"
    assert changed["evidence"]["before"]["sha256"] != changed["evidence"]["after"]["sha256"]
    assert found[f"files:{cfg}/link"]["evidence"]["after"]["target"] == "app.conf"
    # a unified diff, the planted secret redacted on the host: not in the run's files nor history
    assert "-a=1\n+a=2\n+password = <redacted>\n" in changed["evidence"]["diff"]
    snap = next(f for f in newest_report(tmp_path)["findings"] if f["id"] == "DRFT-SNAP-001")
    assert snap["evidence"]["texts"]["sent"] == 1  # sub/keep's text is in the baseline: it stayed home
    data = tmp_path / "data" / "fleetcare"
    leaks = [p for p in data.rglob("*") if p.is_file() and b"planted-s3cret" in p.read_bytes()]
    assert not leaks, leaks

    for argv, word in ((("accept", "localhost", f"files:{cfg}/app.conf"), "--reason"),
                       (("accept", "localhost", "files:/nope", "--reason", "x"), "not a drifted item"),
                       (("accept", "nohost", "--reason", "x"), "unknown host"),
                       (("log", "nohost"), "unknown host"), (("bogus",), "unknown action")):
        proc = fleetcare(tmp_path, "drift", *argv)
        assert proc.returncode == 2 and word in proc.stderr and len(proc.stderr.splitlines()) == 1, argv
    proc = fleetcare(tmp_path, "drift", "accept", "localhost", f"files:{cfg}/app.conf",
                     "--reason", "new setting", "--by", "ops")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    proc = fleetcare(tmp_path, "drift", "-e", paths, "-e", "drift_severity={files: minor}")
    found = {k: f for k, f in drifted(newest_report(tmp_path)).items() if k.startswith("files:")}
    assert set(found) == {f"files:{cfg}/link"}  # accepted drift is gone, the rest stays a finding
    assert found[f"files:{cfg}/link"]["severity"] == "minor"  # drift_severity, through the module

    proc = fleetcare(tmp_path, "drift", "log", "localhost")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert len(lines) == 2 and "by ops: new setting" in lines[1] and f"files:{cfg}/app.conf" in lines[1]


def etc_state() -> dict[str, tuple]:
    """Every entry under /etc: mode, owner, size, mtime and, where readable, the SHA-256."""
    import hashlib
    import stat

    out = {}
    for dirpath, dirs, files in os.walk("/etc"):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            digest = ""
            if stat.S_ISREG(st.st_mode):
                try:
                    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
                except OSError:
                    digest = "unreadable"
            out[path] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, digest)
    return out


def test_desired_state_drift_with_desired_only_and_nothing_changed(tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    (cfg / "app.conf").write_text("a=1\n")
    paths = f"drift_paths=[{cfg}]"
    proc = fleetcare(tmp_path, "drift", "baseline", "--desired", "-e", paths)
    assert proc.returncode == 2 and "--desired" in proc.stderr and len(proc.stderr.splitlines()) == 1
    proc = fleetcare(tmp_path, "drift", "baseline", "-e", paths)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # what the hardening audit of this machine says, for comparison
    proc = fleetcare(tmp_path, "audit", "--fail-on", "critical")
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    audit = {f["id"]: f for f in newest_report(tmp_path)["findings"]}
    failing_controls = {i for i, f in audit.items() if f["status"] == "fail"}
    assert failing_controls  # this machine is not hardened: there is desired-state drift to find

    before = etc_state()
    proc = fleetcare(tmp_path, "drift", "-e", paths)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    plain = newest_report(tmp_path)["findings"]
    assert not [f for f in plain if f["id"] == "DRFT-DESIRED-001"]  # not without --desired

    (cfg / "app.conf").write_text("a=2\n")
    proc = fleetcare(tmp_path, "drift", "--desired", "-e", paths)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stdout + proc.stderr
    after = etc_state()
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, changed[:10]  # the audit and the snapshot only read

    report = newest_report(tmp_path)
    found = drifted(report)
    assert f"files:{cfg}/app.conf" in found  # drift from the baseline, in the same report
    desired = {k.split(":", 1)[1]: f for k, f in found.items() if k.startswith("desired:")}
    assert set(desired) == failing_controls  # one finding per failing control, no more
    for control, f in desired.items():
        assert f["id"] == "DRFT-DESIRED-001" and f["evidence"]["title"] == audit[control]["title"]
        assert f["evidence"]["current"] == audit[control]["evidence"].get("actual")
        assert f["evidence"]["desired"] == audit[control]["evidence"].get("expected")
        assert f["severity"] == audit[control]["severity"]
    # the audit's own findings stay out of the drift report (only the verdict is judged)
    assert not [f for f in report["findings"] if f["id"].startswith("HARD-")]
