#!/usr/bin/env python3
"""Patching on 8 lab hosts: what the audit and the gated patch run cost beside bare Ansible.

Brings up 8 Debian 12 lab hosts (podman, SSH on 127.0.0.1), serves them the test APT
repository (fleetcare_lab/aptrepo.py, copied in as a file path, nothing beyond this machine)
with the 1.0 versions installed and fc-held held, and prints, each as a ratio to a baseline
timed in the same run (median of --repeat, the two sides alternating):

- the audit (``fleetcare patch``, one module call per host) beside ``ansible all -m setup``
  (target ratio <= 1.3);
- the full patch run (``fleetcare patch --update all``: health gate before and after each
  host, the plan, apt, the run record, the audit after) beside a bare
  ``ansible all -m ansible.builtin.apt -a upgrade=dist`` of the same updates (target <= 1.5).
  Before every timed patch run each host is put back on the 1.0 versions (not timed), and
  after it the versions are checked on every host, so both sides install the same updates.

fleetcare's caches (``XDG_CACHE_HOME``) start empty in a folder of this run: the first audit is
timed apart as the cold figure (the compiled template and validator, and the verdict of the input
checks, made then); the timed runs after it find them, as every later run on the same inventory
does.

The lab hosts share this machine's kernel: its load average and its clock's sync state
(HLTH-TIME-001, major) are not theirs, so the gate judges critical findings with the load
thresholds raised; it runs the health module before and after each host all the same.

    FLEETCARE_LAB_DIR=/tmp/lab-bench .venv/bin/python benchmarks/patching.py [--repeat 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
HOSTS = 8
AUDIT_TARGET = 1.3
PATCH_TARGET = 1.5
REPO = "/srv/fc-repo"

import fleetcare_lab as lab  # noqa: E402
from fleetcare_lab import aptrepo  # noqa: E402

RESET = ("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --allow-downgrades --allow-change-held-packages "
         + " ".join(f"{name}={version}" for name, version in sorted(aptrepo.INITIAL.items())))


CPU: dict[str, list[float]] = {}


def run(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0, 1), name: str = "") -> float:
    """Seconds the command took; its CPU time on this side (wrapper, Ansible, ssh) kept under ``name``."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if name:
        CPU.setdefault(name, []).append(after.ru_utime + after.ru_stime - used.ru_utime - used.ru_stime)
    if proc.returncode not in ok:
        tail = f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        raise SystemExit(f"{' '.join(argv[:4])} exited {proc.returncode}:\n{tail}")
    return elapsed


def on_every_host(hosts: list[dict], script: str, state: Path) -> None:
    for host in hosts:
        proc = lab.exec_in(host["name"], ["sh", "-ec", script], state_dir=state)
        if proc.returncode != 0:
            raise SystemExit(f"{host['host']}: {script[:60]}... exited {proc.returncode}: {proc.stderr[-800:]}")


def versions(hosts: list[dict], state: Path) -> set[tuple[str, str, str]]:
    out = set()
    for host in hosts:
        proc = lab.exec_in(host["name"], ["dpkg-query", "-W", "fc-sec", "fc-other", "fc-held"], state_dir=state)
        for line in proc.stdout.splitlines():
            name, version = line.split("\t")
            out.add((host["host"], name, version))
    return out


def expect_upgraded(hosts: list[dict], state: Path, what: str) -> None:
    want = {(h["host"], n, "1.0" if n in aptrepo.HELD else "1.1") for h in hosts for n in aptrepo.INITIAL}
    got = versions(hosts, state)
    if got != want:
        raise SystemExit(f"{what} did not install the same updates: {sorted(got - want)[:6]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each side (median)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document as well")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fc-bench-patching-") as tmp:
        tmp_path = Path(tmp)
        state = Path(os.environ.get("FLEETCARE_LAB_DIR") or tmp_path / "lab")
        control = tmp_path / "cp"
        control.mkdir()
        env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
               "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
               "ANSIBLE_DEPRECATION_WARNINGS": "false"}
        varsfile = tmp_path / "vars.json"
        varsfile.write_text(json.dumps({"patching_gate_options": {"load_warn_per_core": 10000,
                                                                  "load_critical_per_core": 10000},
                                        "patching_gate_severities": ["critical"], "patching_lock_timeout": 30}))
        try:
            try:
                inventory = lab.up(HOSTS, "12", state_dir=state)
            except lab.LabError as exc:  # a host slow to answer SSH on a loaded machine: up again reuses the rest
                print(f"lab up, again: {exc}", flush=True)
                inventory = lab.up(HOSTS, "12", state_dir=state)
            hosts = [h for h in lab.status(state) if h["state"] == "running"][:HOSTS]
            repo = aptrepo.build(tmp_path / "fc-repo")
            for host in hosts:
                subprocess.run(["podman", "cp", str(repo), f"{host['name']}:/srv/"], check=True,
                               env={**os.environ, "CONTAINERS_CONF": str(lab.CONTAINERS_CONF)})
            listed = "/etc/apt/sources.list.d/fleetcare-test.list"
            on_every_host(hosts, f"printf '%s' '{aptrepo.sources(REPO)}' > {listed}; "
                                 f"apt-get update -q -o Dir::Etc::SourceList={listed} -o Dir::Etc::SourceParts=- "
                                 f">/dev/null; {RESET} >/dev/null; apt-mark hold fc-held", state)
            print(f"lab: {len(hosts)} Debian 12 hosts with the test repository, inventory {inventory}")

            fleetcare = [sys.executable, str(ROOT / "runner.py")]
            inv = ["-i", str(inventory)]
            setup = [str(BIN / "ansible"), *inv, "all", "-m", "ansible.builtin.setup"]
            audit = [*fleetcare, "patch", *inv, "-q", "--vars-file", str(varsfile)]
            patch = [*fleetcare, "patch", *inv, "-q", "--vars-file", str(varsfile), "--update", "all"]
            bare = [str(BIN / "ansible"), *inv, "all", "-m", "ansible.builtin.apt", "-a", "upgrade=dist"]
            # the role's playbook without the wrapper: what fleetcare itself adds is the difference
            playbook = [str(BIN / "ansible-playbook"), *inv, "-e", f"@{varsfile}", "-e", '{"patching_update": ["all"]}',
                        str(ROOT / "playbooks" / "patch.yml")]
            run(setup, env, ok=(0,))  # warm the SSH masters: every side reuses them
            cold_setup, cold = run(setup, env, ok=(0,)), run(audit, env)
            print(f"fleetcare audit, first run (cold caches): {cold:.2f} s vs setup {cold_setup:.2f} s "
                  f"-> ratio {cold / cold_setup:.2f}")
            times: dict[str, list[float]] = {"setup": [], "audit": [], "bare apt": [], "patch": [], "playbook": []}
            for _ in range(args.repeat):
                times["setup"].append(run(setup, env, ok=(0,), name="setup"))
                times["audit"].append(run(audit, env, name="audit"))
                for name, argv in (("bare apt", bare), ("patch", patch), ("playbook", playbook)):
                    on_every_host(hosts, f"{RESET} >/dev/null", state)
                    times[name].append(run(argv, env, ok=(0,) if name == "bare apt" else (0, 1), name=name))
                    expect_upgraded(hosts, state, name)
            medians = {name: statistics.median(values) for name, values in times.items()}
            figures = {}
            for name, base, target in (("audit", "setup", AUDIT_TARGET), ("patch", "bare apt", PATCH_TARGET)):
                ratio = medians[name] / medians[base]
                figures[name] = round(ratio, 2)
                mark = "ok" if ratio <= target else f"ABOVE target {target}"
                print(f"fleetcare {name} on {len(hosts)} hosts: {medians[name]:.2f} s vs {base} {medians[base]:.2f} s "
                      f"-> ratio {ratio:.2f} ({mark})")
            cpu = {name: statistics.median(values) for name, values in CPU.items()}
            print(f"      the patch playbook run by ansible-playbook alone: {medians['playbook']:.2f} s; what the "
                  f"wrapper adds (input checks, history, reports): {medians['patch'] - medians['playbook']:.2f} s")
            print("      CPU on this side (wrapper, Ansible, ssh; the hosts' own CPU not counted): "
                  + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in cpu.items()))
            if args.json:
                print(json.dumps({"median_s": {k: round(v, 3) for k, v in medians.items()}, "ratio": figures,
                                  "cold_audit_ratio": round(cold / cold_setup, 2),
                                  "controller_cpu_s": {k: round(v, 3) for k, v in cpu.items()},
                                  "runs_s": {k: [round(x, 2) for x in v] for k, v in times.items()}}, indent=2))
        finally:
            for socket in control.iterdir():
                subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "lab"], capture_output=True,
                               check=False)
            lab.down(state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
