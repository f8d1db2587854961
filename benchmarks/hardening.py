#!/usr/bin/env python3
"""Hardening judged by the scanners auditors use: Lynis and OpenSCAP, fresh beside hardened.

Brings up lab hosts in pairs of the same release - one left fresh, one hardened with
``fleetcare harden`` - and judges both in the same run:

- Lynis (``lynis audit system --quick``, Debian's package installed in the host) on a Debian 12
  pair: the hardening index fresh and hardened (target hardened: >= 85 on a container host, 90
  on a VM);
- OpenSCAP with the SCAP Security Guide's Debian 12 content, profile ANSSI DAT-NT28 average, on
  the same Debian 12 pair: the XCCDF score fresh and hardened, and the rules that still fail on
  the hardened host. bookworm's own ssg-debian (0.1.65) holds content for Debian 10 and 11 only,
  and bullseye ships no OpenSCAP at all; trixie's ssg-debian (0.1.76, architecture all) holds the
  Debian 12 content, so the benchmark fetches that package through apt (its signature checked
  against this machine's Debian archive keyring) into /var/cache/fleetcare/ssg unless a
  ``ssg-debian12-ds.xml`` is installed already. bookworm's openscap-scanner evaluates it: inside a
  VM (baked into the lab's VM image), and for a container from this machine over the
  container's file system (``OSCAP_PROBE_ROOT`` on ``podman mount``);
- both scanners' results go through ``fleetcare import`` (the Lynis report, the ARF report): the
  figures are read back from history, where the findings ``LYNIS-*`` / ``SSG-*`` now are;
- the wall time of ``fleetcare harden`` and of the audit (``fleetcare audit`` and the bare
  ``ansible-playbook playbooks/audit.yml``) beside ``ansible -m setup`` on the same host, median
  of --repeat, as a ratio (target <= 1.5).

The scores rise only by what the catalog's controls really change on the host; nothing is hidden
from the scanners (no Lynis profile, no skipped test, no tailored SSG profile). Container hosts
are unprivileged system containers (fleetcare_lab/): their kernel, modules, mounts and auditd are
this machine's, so the controls for those are not applicable there and the scanners count them
as failed (the points left). ``--vm`` uses VM lab hosts (``fleetcare lab up --vm N``) instead.
The lab is removed at the end.

    .venv/bin/python benchmarks/hardening.py [--repeat 5] [--json] [--vm] [--no-openscap] [--no-lynis]
        [--no-root-login] [--enable-disruptive IDS]

With --no-root-login the hardened host is hardened as an operator who logs in as the lab's sudo
user: HARD-SSH-001 switched on, every run and scan made as that user with sudo.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
INDEX_TARGET = {"container": 85, "vm": 90}
SCORE_TARGET = {"container": None, "vm": 70}
RATIO_TARGET = 1.5
SSG_NAME = "ssg-debian12-ds.xml"
SSG_INSTALLED = Path("/usr/share/xml/scap/ssg/content") / SSG_NAME
SSG_CACHE = Path("/var/cache/fleetcare/ssg")
SSG_SUITE = "trixie"
ANSSI_AVERAGE = "xccdf_org.ssgproject.content_profile_anssi_np_nt28_average"
SUDO_USER = "fleetcare"  # the lab's operator account (root with the lab key, and this user with sudo)

import fleetcare_lab as lab  # noqa: E402
from fleetcare_lab.vm import host_name as vm_host_name  # noqa: E402


def ssg_content() -> Path:
    """The SSG data stream for Debian 12: the installed one, else trixie's ssg-debian fetched by
    apt into SSG_CACHE (apt checks the suite's signature and the package's hash; nothing of this
    machine's apt state is used or changed: its own lists, cache and sources stay as they are)."""
    if SSG_INSTALLED.is_file():
        return SSG_INSTALLED
    cached = SSG_CACHE / SSG_NAME
    if cached.is_file():
        return cached
    print(f"fetching the SCAP Security Guide's Debian 12 content ({SSG_SUITE}'s ssg-debian) into {SSG_CACHE}")
    with tempfile.TemporaryDirectory(prefix="fc-ssg-") as tmp:
        work = Path(tmp)
        (work / "lists/partial").mkdir(parents=True)
        (work / "cache/archives/partial").mkdir(parents=True)
        sources = work / "sources.list"
        sources.write_text(f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {lab.MIRROR} "
                           f"{SSG_SUITE} main\n")
        opts = [f"-oDir::Etc::SourceList={sources}", "-oDir::Etc::SourceParts=/nonexistent",
                f"-oDir::State::Lists={work / 'lists'}", f"-oDir::Cache={work / 'cache'}",
                "-oAPT::Architectures=amd64", "-qq"]
        for argv in (["apt-get", *opts, "update"], ["apt-get", *opts, "download", "ssg-debian"]):
            proc = subprocess.run(argv, cwd=work, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(argv[:1] + argv[-2:])} failed: {proc.stderr.strip()[-600:]}")
        (deb,) = work.glob("ssg-debian_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(deb), str(work / "x")], check=True)
        SSG_CACHE.mkdir(parents=True, exist_ok=True)
        (work / "x/usr/share/xml/scap/ssg/content" / SSG_NAME).replace(cached)
    return cached


class Hosts:
    """The lab hosts of one kind (containers, or VMs with --vm), reached the same way: a command
    runs over SSH as root, or (``sudo_user``) as the lab's sudo user through ``sudo -n``."""

    def __init__(self, state: Path, vm: bool, env: dict[str, str], sudo_user: str | None = None):
        self.state, self.vm, self.env, self.sudo_user = state, vm, env, sudo_user
        self.kind = "vm" if vm else "container"

    def login(self, host: str, command: str) -> list[str]:
        """The ssh argv that runs ``command`` (a shell command line) as root on ``host``."""
        ssh = lab.ssh_command(self.state / lab.KEY_NAME, self.ports()[host], self.sudo_user or "root")
        return [*ssh, "sudo", "-n", "sh", "-c", shlex.quote(command)] if self.sudo_user else [*ssh, command]

    def name(self, distro: str, index: int) -> str:
        """The inventory name of the lab's host ``index`` of Debian ``distro``."""
        return (vm_host_name if self.vm else lab.host_name)(distro, index)

    def up(self, count: int, distro: str) -> Path:
        if not self.vm:
            return lab.up(count, distro, state_dir=self.state)
        proc = subprocess.run([str(BIN / "fleetcare"), "lab", "up", "--vm", str(count), "--distro", distro],
                              env={**self.env, "FLEETCARE_LAB_DIR": str(self.state)}, capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"fleetcare lab up --vm {count} --distro {distro} failed: {proc.stderr[-800:]}")
        return self.state / lab.INVENTORY_NAME

    def ports(self) -> dict[str, int]:
        return {h["host"]: h["port"] for h in lab.status(self.state)}

    def sh(self, host: str, script: str, timeout: float = 3600) -> subprocess.CompletedProcess:
        return subprocess.run(self.login(host, script), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, check=False)

    def down(self) -> None:
        if self.vm:
            subprocess.run([str(BIN / "fleetcare"), "lab", "down"], env={**self.env, "FLEETCARE_LAB_DIR":
                           str(self.state)}, capture_output=True, check=False)
        else:
            lab.down(self.state)


def fleetcare_import(path: Path, host: str, env: dict[str, str]) -> dict:
    """``fleetcare import`` of a scanner's file; its findings and metrics as history keeps them."""
    run([str(BIN / "fleetcare"), "import", str(path), "--host", host, "-q", "--fail-on", "critical"], env)
    code = ("import json, sys; from fleetcare.history import History\n"
            "with History() as h:\n    r = h.load('latest')\n"
            "print(json.dumps({'metrics': {m.name: m.value for m in r.metrics()},"
            " 'findings': [f.to_dict() for f in r.findings()]}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout)


def lynis(hosts: Hosts, host: str, out: Path, env: dict[str, str]) -> dict:
    proc = hosts.sh(host, "lynis audit system --quick --no-colors >/dev/null 2>&1; cat /var/log/lynis-report.dat")
    if "hardening_index=" not in proc.stdout:
        raise SystemExit(f"lynis on {host} wrote no report (exit {proc.returncode}): {proc.stderr[-800:]}")
    report = out / f"lynis-{host}.dat"
    report.write_text(proc.stdout)
    return fleetcare_import(report, host, env)


def openscap(hosts: Hosts, host: str, content: Path, out: Path, env: dict[str, str]) -> dict:
    """The ANSSI average profile over the host; oscap exits 2 when a rule fails (a result all
    the same), 1 on an error of its own."""
    arf = out / f"arf-{host}.xml"
    if hosts.vm:
        subprocess.run(hosts.login(host, f"cat > /root/{content.name}"), stdin=content.open("rb"), check=True,
                       capture_output=True)
        proc = hosts.sh(host, f"oscap xccdf eval --profile {ANSSI_AVERAGE} --results-arf /root/arf.xml "
                              f"/root/{content.name} >/dev/null; echo $?; cat /root/arf.xml; "
                              f"rm -f /root/arf.xml /root/{content.name}")
        rc, _, text = proc.stdout.partition("\n")
        arf.write_text(text)
    else:
        name = next(h["name"] for h in lab.status(hosts.state) if h["host"] == host)
        rootfs = subprocess.run(["podman", "mount", name], capture_output=True, text=True, check=True).stdout.strip()
        try:
            proc = subprocess.run(["oscap", "xccdf", "eval", "--profile", ANSSI_AVERAGE, "--results-arf", str(arf),
                                   str(content)], env={**os.environ, "OSCAP_PROBE_ROOT": rootfs},
                                  capture_output=True, text=True, check=False)
            rc = str(proc.returncode)
        finally:
            subprocess.run(["podman", "umount", name], capture_output=True, check=False)
    if rc.strip() not in ("0", "2"):
        raise SystemExit(f"oscap on {host} exited {rc.strip()} (1 is its own error)")
    return fleetcare_import(arf, host, env)


def run(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0, 1)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        tail = f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        raise SystemExit(f"{' '.join(argv[:3])} exited {proc.returncode}:\n{tail}")
    return elapsed


def failing(scan: dict, prefix: str) -> list[dict]:
    return sorted((f for f in scan["findings"] if f["id"].startswith(prefix) and f["status"] == "fail"),
                  key=lambda f: f["id"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each audit/setup command (median)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON document as well")
    parser.add_argument("--vm", action="store_true",
                        help="VM lab hosts (fleetcare lab up --vm N) instead of containers")
    parser.add_argument("--no-openscap", action="store_true", help="leave out the OpenSCAP scans")
    parser.add_argument("--no-lynis", action="store_true",
                        help="leave out the Lynis scans (about 7.5 minutes each on a VM under TCG)")
    parser.add_argument("--enable-disruptive", default="", metavar="IDS",
                        help="comma-separated disruptive controls to switch on (default: none, the role's defaults)")
    parser.add_argument("--no-root-login", action="store_true",
                        help="harden as an operator who logs in as the lab's sudo user would: HARD-SSH-001 "
                             "(no root login over SSH, disruptive) switched on, every run and scan made as "
                             f"{SUDO_USER} with sudo (the lock-out guard checks that login first)")
    args = parser.parse_args()
    if args.no_root_login:
        args.enable_disruptive = ",".join(filter(None, [args.enable_disruptive, "HARD-SSH-001"]))
    if not args.no_openscap and not args.vm and not shutil.which("oscap"):
        raise SystemExit("oscap is missing: apt-get install openscap-scanner (or --no-openscap)")
    content = None if args.no_openscap else ssg_content()

    with tempfile.TemporaryDirectory(prefix="fc-bench-hardening-") as tmp:
        tmp_path = Path(tmp)
        control = tmp_path / "cp"
        control.mkdir()
        env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control),
               "XDG_DATA_HOME": str(tmp_path / "data"), "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer",
               "ANSIBLE_DEPRECATION_WARNINGS": "false"}
        hosts = Hosts(tmp_path / "lab", args.vm, env, SUDO_USER if args.no_root_login else None)
        # the connection of every run: root, or the sudo user becoming root
        login = ["-e", f"ansible_user={SUDO_USER}", "-e", "ansible_become=true"] if args.no_root_login else []
        figures: dict = {"kind": hosts.kind}
        try:
            inventory = hosts.up(2, "12")
            fresh, hardened = hosts.name("12", 1), hosts.name("12", 2)
            print(f"lab: {hosts.kind} hosts, fresh {fresh} beside hardened {hardened}")
            if not args.no_lynis:
                for host in (fresh, hardened):
                    install = hosts.sh(host, "DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                                             "--no-install-recommends lynis")
                    if install.returncode != 0:
                        raise SystemExit(f"apt-get install lynis failed on {host}: {install.stderr[-800:]}")

            fleetcare = [sys.executable, str(ROOT / "runner.py")]
            switches = []
            if args.enable_disruptive:
                ids = [i.strip() for i in args.enable_disruptive.split(",") if i.strip()]
                varsfile = tmp_path / "switches.json"
                varsfile.write_text(json.dumps({"hardening_controls_enable_disruptive": ids}))
                switches = ["--vars-file", str(varsfile)]
                print(f"disruptive controls switched on: {', '.join(ids)}")
            limit = ["--limit", hardened, *login]
            harden_s = run([*fleetcare, "harden", "-i", str(inventory), "-q", *limit, *switches], env)
            print(f"fleetcare harden ({hardened}): {harden_s:.1f} s (enforce, then audit)")
            again_s = run([*fleetcare, "harden", "-i", str(inventory), "-q", *limit, *switches], env)
            print(f"fleetcare harden, second run (nothing to change): {again_s:.1f} s")
            figures.update(harden_s=round(harden_s, 2), harden_again_s=round(again_s, 2))

            scans = tmp_path / "scans"
            scans.mkdir()
            if not args.no_lynis:
                before, after = lynis(hosts, fresh, scans, env), lynis(hosts, hardened, scans, env)
                index = tuple(int(scan["metrics"]["lynis_hardening_index"]) for scan in (before, after))
                target = INDEX_TARGET[hosts.kind]
                verdict = "ok" if index[1] >= target else f"BELOW target {target}"
                print(f"lynis hardening index, Debian 12: fresh {index[0]}, hardened {index[1]} "
                      f"({index[1] - index[0]:+d}; {verdict})")
                left = failing(after, "LYNIS-")
                print(f"lynis tests failing after hardening ({len(left)}, through fleetcare import):")
                for f in left:
                    lines = f["evidence"].get("warnings", []) + f["evidence"].get("suggestions", [])
                    print(f"  {f['id']:18} {f['severity']:6} {'; '.join(lines)[:150]}")
                figures.update(lynis_fresh=index[0], lynis_hardened=index[1], lynis_failing=[f["id"] for f in left])

            if content is not None:
                before = openscap(hosts, fresh, content, scans, env)
                after = openscap(hosts, hardened, content, scans, env)
                score = (before["metrics"]["openscap_score"], after["metrics"]["openscap_score"])
                target = SCORE_TARGET[hosts.kind]
                mark = "" if target is None else ("; ok" if score[1] >= target else f"; BELOW target {target}")
                passed = [sum(1 for f in s["findings"] if f["status"] == "pass") for s in (before, after)]
                total = len(after["findings"])
                print(f"openscap ANSSI average, Debian 12: fresh {score[0]:.1f} ({passed[0]}/{total} rules pass), "
                      f"hardened {score[1]:.1f} ({passed[1]}/{total}){mark}")
                left = failing(after, "SSG-")
                print(f"openscap rules failing after hardening ({len(left)}):")
                for f in left:
                    print(f"  {f['id']:44} {f['severity']:6} {f['title'][:70]}")
                figures.update(openscap_fresh=round(score[0], 1), openscap_hardened=round(score[1], 1),
                               openscap_failing=[f["id"] for f in left])

            commands = {
                "setup": [str(BIN / "ansible"), "-i", str(inventory), hardened, "-m", "ansible.builtin.setup", *login],
                "audit playbook": [str(BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/audit.yml",
                                   "--limit", hardened, *(["-e", f"@{switches[1]}"] if switches else []), *login],
                "fleetcare audit": [*fleetcare, "audit", "-i", str(inventory), "-q", "--limit", hardened,
                                    *switches, *login],
            }
            times: dict[str, list[float]] = {name: [] for name in commands}
            run(commands["setup"], env)  # warm the SSH master, as both sides then reuse it
            for _ in range(args.repeat):
                for name, argv in commands.items():
                    times[name].append(run(argv, env))
            medians = {name: statistics.median(values) for name, values in times.items()}
            for name in ("audit playbook", "fleetcare audit"):
                ratio = medians[name] / medians["setup"]
                mark = "ok" if ratio <= RATIO_TARGET else f"ABOVE target {RATIO_TARGET}"
                print(f"{name}: {medians[name]:.2f} s vs ansible -m setup {medians['setup']:.2f} s "
                      f"-> ratio {ratio:.2f} ({mark})")
            figures["median_s"] = {k: round(v, 3) for k, v in medians.items()}
            if args.json:
                print(json.dumps(figures, indent=2))
        finally:
            for socket in control.iterdir():
                subprocess.run(["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "lab"], capture_output=True,
                               check=False)
            hosts.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
