#!/usr/bin/env python3
"""The backup role's job and audit on a lab host, each beside its baseline in the same run.

Brings up one Debian 12 lab host, generates a tree there (--files files, about --mb MB in all,
sizes spread from a few hundred bytes to a few MB; each file half random bytes, half hex text, so
restic's compression has work to do and nothing deduplicates across files), enforces the backup
role (``fleetcare backup``: restic from Debian, a set over the tree, a local repository), then:

1. the role's systemd unit (``systemctl start fleetcare-backup-bench.service``: the wrapper's
   stale-lock sweep, ``restic backup --json``, the status record) beside a bare ``restic backup``
   of the same tree, each into a freshly initialised repository (the first, full backup),
   alternately, median of --repeat. The bare restic runs at the unit's priority (``nice -n 10
   ionice -c 3``, the unit's Nice= and IOSchedulingClass=) so the ratio is the role's own cost.
   Target: ratio <= 1.15.
2. the audit (``ansible -m fleetcare.ops.backup_audit``, one module call: status records, one
   systemctl show, the repository opened read-only) beside ``ansible -m setup`` on the same host,
   whole processes, median of --audit-repeat. Target: ratio <= 1.3.

The lab is removed at the end.

    .venv/bin/python benchmarks/backup.py
    .venv/bin/python benchmarks/backup.py --files 2000 --mb 50 --repeat 1   # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
BACKUP_TARGET = 1.15
AUDIT_TARGET = 1.3
TREE = "/srv/bench"
ROLE_REPO = "/var/backups/restic-bench"
BARE_REPO = "/var/backups/restic-bare"
PASSWORD_FILE = "/etc/fleetcare/backup/password"

# run with python3 on the lab host: a reproducible tree of FILES files, about MB megabytes
GENERATE = r"""
import os, random, sys
files, total = int(sys.argv[1]), int(sys.argv[2]) * 1024 * 1024
rng = random.Random(11)
weights = [rng.lognormvariate(0, 1.5) for _ in range(files)]
scale = total / sum(weights)
for i, w in enumerate(weights):
    d = os.path.join(sys.argv[3], "d%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    size = max(64, int(w * scale))
    half = size // 2
    with open(os.path.join(d, "f%05d.bin" % i), "wb") as out:
        out.write(os.urandom(half))
        out.write(os.urandom((size - half + 1) // 2).hex().encode()[: size - half])
"""


def host_sh(name: str, script: str, state: Path) -> str:
    import fleetcare_lab as lab

    return lab.exec_in(name, ["sh", "-c", script], check=True, state_dir=state).stdout


def timed_sh(name: str, script: str, state: Path) -> float:
    start = time.perf_counter()
    host_sh(name, script, state)
    return time.perf_counter() - start


def timed(argv: list[str], env: dict[str, str], ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        sys.exit(f"{' '.join(argv[:4])} failed ({proc.returncode}): {(proc.stdout + proc.stderr).strip()[-800:]}")
    return elapsed


def fresh_repo(repo: str) -> str:
    return (f"rm -rf {repo} && RESTIC_PASSWORD_FILE={PASSWORD_FILE} restic init -q -r {repo} >/dev/null"
            " && rm -rf /var/cache/restic && sync && cat /dev/null")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--mb", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="backups of each kind (default 3)")
    parser.add_argument("--audit-repeat", type=int, default=5)
    args = parser.parse_args()

    import fleetcare_lab as lab

    state = Path(tempfile.mkdtemp(prefix="fleetcare-bench-backup-"))
    data = Path(tempfile.mkdtemp(prefix="fleetcare-bench-data-"))
    env = {**os.environ, "XDG_DATA_HOME": str(data), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    try:
        t0 = time.perf_counter()
        inventory = lab.up(1, "12", state_dir=state)
        (host,) = [h["host"] for h in lab.status(state)]
        print(f"lab up: 1 host in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        lab.exec_in(host, ["python3", "-c", GENERATE, str(args.files), str(args.mb), TREE], check=True,
                    state_dir=state)
        count, size = host_sh(host, f"find {TREE} -type f | wc -l; du -sm {TREE} | cut -f1", state).split()
        print(f"tree: {count} files, {size} MB, generated in {time.perf_counter() - t0:.1f} s")

        bench_vars = data / "vars.json"
        bench_vars.write_text(json.dumps({
            "backup_password": "bench-not-a-secret", "backup_repository": ROLE_REPO, "backup_init": True,
            "backup_sets": [{"name": "bench", "paths": [TREE], "on_calendar": "yearly"}]}))
        t0 = time.perf_counter()
        timed([str(BIN / "fleetcare"), "backup", "-q", "-i", str(inventory), "--vars-file", str(bench_vars)], env,
              ok=(0, 1))  # 1: findings (no backup has run yet)
        version = host_sh(host, "restic version", state).split()[1]
        print(f"fleetcare backup (enforce, restic {version}): {time.perf_counter() - t0:.1f} s")

        host_sh(host, f"tar -cf - {TREE} 2>/dev/null | cat > /dev/null", state)  # page cache, for both
        role_cmd = "systemctl start fleetcare-backup-bench.service"
        bare_cmd = (f"RESTIC_PASSWORD_FILE={PASSWORD_FILE} RESTIC_CACHE_DIR=/var/cache/restic "
                    f"nice -n 10 ionice -c 3 restic backup -q -r {BARE_REPO} {TREE} > /dev/null")
        role_times, bare_times = [], []
        for i in range(args.repeat):
            pair = [("role", ROLE_REPO, role_cmd, role_times), ("bare", BARE_REPO, bare_cmd, bare_times)]
            for _label, repo, command, times in pair if i % 2 == 0 else reversed(pair):
                host_sh(host, fresh_repo(repo), state)
                times.append(timed_sh(host, command, state))
        record = json.loads(host_sh(host, "cat /var/lib/fleetcare/backup/bench.json", state))
        if not record.get("ok"):
            sys.exit(f"the role's backup failed: {record.get('meaning')}")
        role, bare = statistics.median(role_times), statistics.median(bare_times)
        print(f"backup: role unit {role:.2f} s, bare restic {bare:.2f} s (median of {args.repeat}; "
              f"runs {', '.join(f'{t:.1f}' for t in role_times)} / {', '.join(f'{t:.1f}' for t in bare_times)}), "
              f"ratio {role / bare:.3f} (target <= {BACKUP_TARGET}); the role's snapshot: "
              f"{record.get('total_files_processed')} files, {record.get('total_bytes_processed', 0) / 1e6:.0f} MB")

        audit_args = json.dumps({"sets": ["bench"], "repository": ROLE_REPO, "password_file": PASSWORD_FILE})
        audit = [str(BIN / "ansible"), "all", "-i", str(inventory), "-m", "fleetcare.ops.backup_audit",
                 "-a", audit_args]
        setup = [str(BIN / "ansible"), "all", "-i", str(inventory), "-m", "ansible.builtin.setup"]
        timed(audit, env), timed(setup, env)  # warm: SSH control master, page cache
        ta, ts = [], []
        for _ in range(args.audit_repeat):
            ta.append(timed(audit, env))
            ts.append(timed(setup, env))
        a, s = statistics.median(ta), statistics.median(ts)
        print(f"audit: backup_audit {a:.2f} s, ansible -m setup {s:.2f} s (median of {args.audit_repeat}), "
              f"ratio {a / s:.3f} (target <= {AUDIT_TARGET})")
    finally:
        lab.down(state)
        subprocess.run(["rm", "-rf", str(data), str(state)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
