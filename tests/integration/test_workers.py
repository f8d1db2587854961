"""--workers against a lab fleet: shards sent to real ``ansible-runner worker`` processes (local
ones through cmd:, and one on a lab host over SSH after `fleetcare worker setup`), merged into
one run; a worker killed mid-run; Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

import fleetcare_lab as lab
from fleetcare.history import History
from fleetcare.results import validate

pytestmark = pytest.mark.lab
ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# a worker on this machine: the runner of this environment, reading stdin, writing stdout
LOCAL_WORKER = f"cmd:env PATH={BIN}:/usr/bin:/bin {BIN / 'ansible-runner'} worker"
# checks that judge a sampling window or the moment (load, CPU, journal in the window): two runs
# a few seconds apart may differ there whatever ran them; every other check must agree
# (a failing one also names the top processes, so its evidence keys differ too)
SAMPLED = {"HLTH-LOAD-001", "HLTH-CPU-001", "HLTH-CPU-002", "HLTH-DISK-003", "HLTH-LOG-001",
           "HLTH-MEM-001", "HLTH-SWAP-001", "HLTH-NET-001", "HLTH-PROC-001", "HLTH-FD-001",
           "HLTH-CONN-001", "HLTH-SSH-001", "HLTH-KERN-001"}

# A worker that passes the stream through; right after it has forwarded the first host result
# that carries findings it marks a file, then (CUT_MODE=die) dies with its runner, as a node that
# crashes mid-run, or (CUT_MODE=hold) forwards nothing more, as a slow node, until it is stopped.
CUT_WORKER = textwrap.dedent("""
    import os, signal, subprocess, sys, threading, time
    child = subprocess.Popen(sys.argv[2:], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    def pump():
        for chunk in iter(lambda: sys.stdin.buffer.read1(65536), b""):
            child.stdin.write(chunk)
            child.stdin.flush()
        child.stdin.close()
    threading.Thread(target=pump, daemon=True).start()
    for line in child.stdout:
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
        if b'"runner_on_ok"' in line and b'"fleetcare"' in line:
            open(sys.argv[1], "w").close()
            if os.environ.get("CUT_MODE") == "die":
                child.kill()
                os._exit(1)
            while os.environ.get("CUT_MODE") == "hold":
                time.sleep(1)
    sys.exit(child.wait())
""")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """Four Debian 12 hosts; removed when the module's tests end, whatever happens."""
    state = tmp_path_factory.mktemp("lab")
    try:
        inventory = lab.up(4, "12", state_dir=state)
        hosts = [h["host"] for h in lab.status(state)]
        yield state, inventory, sorted(hosts)
    finally:
        lab.down(state)
        assert not lab.status(state)


def env_for(data: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "XDG_DATA_HOME": str(data), **extra}


def fleetcare(data: Path, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "runner.py"), *argv], capture_output=True, text=True,
                          env=env_for(data), timeout=timeout)


def only_run(data: Path) -> tuple[Path, dict]:
    (run_dir,) = (data / "fleetcare" / "runs").iterdir()
    return run_dir, json.loads((run_dir / "report.json").read_text())


def verdicts(report: dict) -> dict[tuple[str, str], str]:
    return {(f["host"], f["id"]): f["status"] for f in report["findings"]}


def assert_same_findings(local: dict, merged: dict) -> None:
    assert sorted(h["name"] for h in merged["hosts"]) == sorted(h["name"] for h in local["hosts"])
    assert {h["name"]: h["status"] for h in merged["hosts"]} == {h["name"]: h["status"] for h in local["hosts"]}
    mine, theirs = verdicts(merged), verdicts(local)
    assert set(mine) == set(theirs)
    assert len(merged["findings"]) == len(local["findings"])
    steady = {k: v for k, v in theirs.items() if k[1] not in SAMPLED}
    assert {k: mine[k] for k in steady} == steady
    # the same evidence keys: the same module ran on the same hosts
    keys = {(f["host"], f["id"]): sorted(f["evidence"]) for f in local["findings"] if f["id"] not in SAMPLED}
    assert {(f["host"], f["id"]): sorted(f["evidence"]) for f in merged["findings"]
            if f["id"] not in SAMPLED} == keys


def slow_inventory(tmp_path: Path, inventory: Path, slow: dict[str, float]) -> Path:
    doc = yaml.safe_load(inventory.read_text())
    hosts = doc["all"]["children"]["lab"]["hosts"]
    for name, seconds in slow.items():
        hosts[name] = {**hosts[name], "health_sample_seconds": seconds}
    out = tmp_path / "slow.yml"
    out.write_text(yaml.safe_dump(doc))
    return out


def test_two_local_workers_merge_into_the_local_run(fleet, tmp_path):
    _, inventory, hosts = fleet
    local_data, merged_data = tmp_path / "local", tmp_path / "merged"
    local = fleetcare(local_data, "inspect", "-i", str(inventory), "--fail-on", "critical")
    assert local.returncode in (0, 1), local.stdout + local.stderr
    merged = fleetcare(merged_data, "inspect", "-i", str(inventory), "--fail-on", "critical",
                       "--workers", LOCAL_WORKER, "--workers", LOCAL_WORKER)
    assert merged.returncode in (0, 1), merged.stdout + merged.stderr
    assert "2 workers" in merged.stdout
    (_, local_report), (run_dir, report) = only_run(local_data), only_run(merged_data)
    validate(report)
    assert_same_findings(local_report, report)
    # one run: one run id, one history entry, one set of reports
    with History(merged_data / "fleetcare" / "history.db") as history:
        runs = history.runs(10)
        assert [r["id"] for r in runs] == [report["run"]["id"]]
        assert history.load("latest").summary()["hosts_ok"] == len(hosts)
    assert sorted(p.name for p in run_dir.glob("report.*")) == ["report.html", "report.json", "report.md"]
    # each worker ran its own shard: two artifact folders, each with the findings channel
    shards = sorted(run_dir.glob("runner/artifacts/*"))
    assert [p.name.rsplit("-", 1)[1] for p in shards] == ["w1", "w2"]
    lines = [line for p in shards for line in (p / "fleetcare_findings.jsonl").read_text().splitlines()]
    channel = [json.loads(line)["host"] for line in lines]
    assert sorted(channel) == hosts
    # bounded artifacts: no file per event but the play's recap (no host failed), no payload left
    events = [json.loads(p.read_text())["event"] for p in run_dir.glob("runner/artifacts/*/job_events/*")]
    assert set(events) <= {"playbook_on_stats"}, events
    assert not (run_dir / "stage").exists()
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert len(files) < 10 + 8 * len(shards), files


def test_a_worker_lost_mid_run(fleet, tmp_path):
    _, inventory, hosts = fleet
    # w1 takes hosts 0-1, w2 hosts 2-3; host 3 samples for 5 s, so w2 dies after host 2 answered
    inv = slow_inventory(tmp_path, inventory, {hosts[3]: 5.0})
    script = tmp_path / "cut.py"
    script.write_text(CUT_WORKER)
    marker = tmp_path / "answered"
    cut = f"cmd:env CUT_MODE=die PATH={BIN}:/usr/bin:/bin {sys.executable} {script} {marker} " \
          f"{BIN / 'ansible-runner'} worker"
    data = tmp_path / "data"
    proc = fleetcare(data, "inspect", "-i", str(inv), "--fail-on", "critical",
                     "--workers", LOCAL_WORKER, "--workers", cut)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert marker.exists()
    _, report = only_run(data)
    status = {h["name"]: h for h in report["hosts"]}
    assert status[hosts[3]]["status"] == "unreachable"
    assert status[hosts[3]]["message"] == "worker w2 lost"
    assert not [f for f in report["findings"] if f["host"] == hosts[3]]
    for kept in hosts[:3]:  # w1's hosts, and the one w2 finished before it died
        assert status[kept]["status"] == "ok", status[kept]
        assert [f for f in report["findings"] if f["host"] == kept]
    assert "worker w2 lost" in status[hosts[2]]["message"]
    assert "worker w2 lost" in proc.stdout


def test_ctrl_c_stops_every_worker_and_keeps_what_arrived(fleet, tmp_path):
    _, inventory, hosts = fleet
    # w1 holds its stream after host 0's result (host 1 samples for 5 s, so it comes later)
    inv = slow_inventory(tmp_path, inventory, {h: 5.0 for h in hosts[1:]})
    script = tmp_path / "hold.py"
    script.write_text(CUT_WORKER)
    marker = tmp_path / "answered"
    watched = (f"cmd:env CUT_MODE=hold PATH={BIN}:/usr/bin:/bin {sys.executable} {script} {marker} "
               f"{BIN / 'ansible-runner'} worker")
    data = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, str(ROOT / "runner.py"), "inspect", "-i", str(inv),
                             "--workers", watched, "--workers", LOCAL_WORKER],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(data))
    try:
        deadline = time.monotonic() + 180
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert marker.exists(), "host 0 never answered"
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 4, out + err
    assert time.monotonic() - started < 60  # the held worker was stopped, not waited for
    _, report = only_run(data)
    assert report["run"]["status"] == "interrupted"
    status = {h["name"]: h["status"] for h in report["hosts"]}
    # as in a local run that is interrupted: what the module sent is kept, the play never ended
    assert len([f for f in report["findings"] if f["host"] == hosts[0]]) >= 16
    assert status[hosts[1]] != "ok"  # its result never came through the held stream
    # no worker left behind: no ansible-runner worker or playbook of this run still running
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", str(inv)], capture_output=True, text=True).stdout.split()
    assert not left, left


@pytest.mark.workers
def test_ssh_worker_on_a_lab_host(fleet, tmp_path):
    """`fleetcare worker setup` installs a worker on host 0 from the wheelhouse (no index), then
    inspects hosts 1-3 through it; they are reached at their own addresses from the worker,
    and from here for the local run it is compared with."""
    state, inventory, hosts = fleet
    doc = yaml.safe_load(inventory.read_text())
    lab_hosts = doc["all"]["children"]["lab"]["hosts"]
    workers_inv = tmp_path / "workers.yml"
    workers_inv.write_text(yaml.safe_dump({"all": {"hosts": {hosts[0]: lab_hosts[hosts[0]]}}}))
    key = lab_hosts[hosts[0]]["ansible_ssh_private_key_file"]
    targets = {}
    for name in hosts[1:]:
        container = lab_hosts[name]["fleetcare_lab_container"]
        address = subprocess.run(["podman", "inspect", container, "--format", "{{.NetworkSettings.IPAddress}}"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        targets[name] = {**lab_hosts[name], "ansible_host": address, "ansible_port": 22}
    bridge = tmp_path / "bridge.yml"
    bridge.write_text(yaml.safe_dump({"all": {"hosts": targets}}))
    # the worker reaches the targets with the same key, at the same path
    lab.exec_in(hosts[0], ["sh", "-c", f"mkdir -p {Path(key).parent} && cat > {key} && chmod 600 {key}"],
                  state_dir=state, input=Path(key).read_text())
    data = tmp_path / "data"
    # the least a worker needs (the full install adds the `ansible` bundle: minutes on a busy machine)
    setup = fleetcare(data, "worker", "setup", f"inventory:{workers_inv}", "--wheelhouse", str(tmp_path / "wh"),
                      "--runner-only", timeout=900)
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "ready (ansible-runner" in setup.stdout
    local_data = tmp_path / "local"
    local = fleetcare(local_data, "inspect", "-i", str(bridge), "--fail-on", "critical")
    assert local.returncode in (0, 1), local.stdout + local.stderr
    merged = fleetcare(data, "inspect", "-i", str(bridge), "--fail-on", "critical",
                       "--workers", f"inventory:{workers_inv}")
    assert merged.returncode in (0, 1), merged.stdout + merged.stderr
    assert_same_findings(only_run(local_data)[1], only_run(data)[1])
