#!/usr/bin/env python3
"""Drift snapshots on this machine: beside `ansible -m setup`, beside `aide --check`, and at 50,000 files.

    .venv/bin/python benchmarks/drift.py [--repeat 3] [--files 50000]

Run on the machine itself (connection local), so it collides with nobody's lab. Three figures,
each beside a baseline measured in the same run (median of --repeat, measured alternately):

1. ``fleetcare drift`` (whole process: one drift_snapshot call over /etc plus packages, services,
   accounts, sysctl, sockets, cron, modules, mounts, sudo; judged against a baseline; reports and
   history written) beside ``ansible localhost -m setup``. Target: ratio at most 1.5.
2. The snapshot on the host (the module's code as one process over the same file set, /etc,
   and the packages) beside ``aide --check`` over /etc with SHA-256, mode, owner, group, size and
   link target (a database initialised first in a temporary directory). Target: faster than AIDE
   (ratio below 1.0). Needs ``aide`` (Debian package); skipped with a note when it is missing.
   The pair that answers the target is a drift run against AIDE's check: the module is handed the
   known digests of a baseline snapshot taken first, as ``fleetcare drift`` hands them, so it
   reads every file, hashes it and redacts only the texts the controller does not hold; AIDE
   reads its database and every file. A baseline snapshot (every small text redacted and sent)
   stands beside ``aide --init``, which also builds a baseline.
   What differs, so the ratio is read fairly: AIDE also records each directory's mode, owner
   and group, compares with its database on the host and prints a report; the snapshot records
   files and symlinks only (a directory's attributes are not judged), resolves owner and group
   to names, also reads the packages (one parse of /var/lib/dpkg/status, no dpkg-query), and
   leaves the comparison to the controller (not in this time). Both are whole processes,
   started cold: Python with ansible.module_utils.basic for the snapshot (printed apart as the
   fixed start), AIDE's C binary for AIDE.
3. A path of --files small files: the time of a snapshot and the size of what travels (the
   module's JSON result), first with every text (a baseline) and then with the texts the
   controller already holds left home (a drift run). With aide installed, the drift run over
   that tree (files only, the baseline's digests known) beside ``aide --check`` of the same tree
   (its database initialised first): the comparison of 2. where the file set, not the fixed start
   of a Python module, decides it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TARGET_SETUP = 1.5
TARGET_AIDE = 1.0
EXCLUDES = ["/etc/ld.so.cache", "/etc/adjtime", "/etc/mtab"]

# the module as one process: what the host spends on a snapshot, and the JSON that travels
SNAPSHOT = """
import importlib, json, sys
sys.path.insert(0, sys.argv[2])  # the checkout's .collections, as Ansible finds the collection
m = importlib.import_module("ansible_collections.fleetcare.ops.plugins.modules.drift_snapshot")
params = {k: v.get("default") for k, v in m.ARGUMENT_SPEC.items()}
with open(sys.argv[1]) as fh:  # a file: the known digests of 50,000 files do not fit in argv
    params.update(json.load(fh))
sys.stdout.write(json.dumps(m.run(params)))
"""

AIDE_CONF = """database_in=file:{db}/aide.db
database_out=file:{db}/aide.db.new
database_new=file:{db}/aide.db.new
gzip_dbout=no
report_url=stdout
FC = p+u+g+s+l+ftype+sha256
{top} FC
{excludes}
"""


def timed(argv: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> tuple[float, bytes]:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode not in ok:
        sys.exit(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()[-500:]}")
    return elapsed, proc.stdout


def median_pair(a: list[str], b: list[str], repeat: int, env: dict[str, str] | None,
                ok_a: tuple[int, ...] = (0,), ok_b: tuple[int, ...] = (0,)) -> tuple[float, float]:
    timed(a, env, ok_a), timed(b, env, ok_b)  # warm the page cache for both
    ta, tb = [], []
    for _ in range(repeat):
        ta.append(timed(a, env, ok_a)[0])
        tb.append(timed(b, env, ok_b)[0])
    return statistics.median(ta), statistics.median(tb)


def snapshot_argv(params: dict) -> list[str]:
    fd, path = tempfile.mkstemp(prefix="fleetcare-bench-params-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(params, fh)
    _PARAM_FILES.append(path)
    return [sys.executable, "-c", SNAPSHOT, path, str(ROOT / ".collections")]


_PARAM_FILES: list[str] = []


def row(label: str, figure: float, baseline: float, base_label: str, target: float) -> str:
    ratio = figure / baseline
    verdict = "meets" if ratio <= target else "MISSES"
    return (f"{label:<34} {figure:7.2f} s   {base_label:<22} {baseline:7.2f} s   ratio {ratio:5.2f}"
            f"  (target {'<=' if target != TARGET_AIDE else '<'} {target}: {verdict})")


def bench_setup(repeat: int, data: Path) -> str:
    env = {**os.environ, "XDG_DATA_HOME": str(data), "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
           "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    fleetcare = [str(BIN / "fleetcare"), "drift", "-q", "--fail-on", "critical"]
    timed([*fleetcare[:2], "baseline", *fleetcare[2:]], env)
    setup = [str(BIN / "ansible"), "localhost", "-i", str(ROOT / "inventories" / "localhost.yml"),
             "-m", "ansible.builtin.setup"]
    t_drift, t_setup = median_pair(fleetcare, setup, repeat, env, ok_a=(0, 1))
    return row("fleetcare drift (/etc + all)", t_drift, t_setup, "ansible -m setup", TARGET_SETUP)


def find_aide() -> str | None:
    return shutil.which("aide") or ("/usr/bin/aide" if Path("/usr/bin/aide").exists() else None)


def aide_commands(aide: str, db: Path, top: str, excludes: list[str]) -> tuple[list[str], list[str]]:
    """``aide --init`` and ``aide --check`` of ``top``, with their own configuration and a database
    initialised in ``db`` (made here), so the check has a baseline to read."""
    db.mkdir()
    conf = db / "aide.conf"
    conf.write_text(AIDE_CONF.format(db=db, top=top, excludes="\n".join(f"!{p}$" for p in excludes)))
    init, check = [aide, "--config", str(conf), "--init"], [aide, "--config", str(conf), "--check"]
    timed(init)
    (db / "aide.db.new").rename(db / "aide.db")
    return init, check


def bench_aide(repeat: int, work: Path) -> list[str]:
    aide = find_aide()
    if aide is None:
        return ["aide is not installed (apt-get install aide): the AIDE comparison is skipped"]
    init, check = aide_commands(aide, work / "aide", "/etc", EXCLUDES)
    bitmask = tuple(range(0, 64))  # aide's exit status is a bitmask of what changed
    # the same file set, hashed and recorded, plus the packages; first as a baseline (every text)
    files_pkgs = {"paths": ["/etc"], "excludes": EXCLUDES, "categories": ["files", "packages"]}
    first = snapshot_argv(files_pkgs)
    _, out = timed(first)
    base = json.loads(out)["fleetcare"]
    held = base["data"].get("texts", {})
    known = {p: (e["sha256"][:16] if p in held else "-") for p, e in base["data"]["files"].items()
             if "sha256" in e}
    n_files = len(base["data"]["files"])
    # then as a drift run: the controller's known digests keep unchanged texts home
    drift_run = snapshot_argv(dict(files_pkgs, known=known))
    t_snap, t_aide = median_pair(drift_run, check, repeat, None, ok_b=bitmask)
    t_first, t_init = median_pair(first, init, repeat, None)
    whole = snapshot_argv({"paths": ["/etc"], "excludes": EXCLUDES, "known": known})
    t_whole, t_aide2 = median_pair(whole, check, repeat, None, ok_b=bitmask)
    # digests only, as AIDE keeps them; and the fixed start of Python and Ansible's module runtime
    # (a snapshot of one tiny category through the same process), which AnsiballZ pays on every host
    bare = snapshot_argv(dict(files_pkgs, text_max_bytes=0))
    t_bare, t_aide3 = median_pair(bare, check, repeat, None, ok_b=bitmask)
    t_bare2, t_start = median_pair(bare, snapshot_argv({"categories": ["kmods"]}), repeat, None)  # same window
    version = subprocess.run([aide, "--version"], capture_output=True, text=True)
    head = (version.stdout or version.stderr).splitlines()[0] if (version.stdout or version.stderr) else "aide"
    return [row(f"drift run /etc + packages ({n_files})", t_snap, t_aide, "aide --check /etc", TARGET_AIDE),
            row("baseline /etc + packages, texts", t_first, t_init, "aide --init /etc", TARGET_AIDE),
            row("drift run, every category", t_whole, t_aide2, "aide --check /etc", TARGET_AIDE),
            row("  digests only, no texts at all", t_bare, t_aide3, "aide --check /etc", TARGET_AIDE),
            row("  the same, past the fixed start", max(t_bare2 - t_start, 0.0), t_aide3, "aide --check /etc",
                TARGET_AIDE),
            f"  (the fixed start, Python + ansible.module_utils.basic, is {t_start:.2f} s)",
            f"  ({head.strip()}; both whole processes; texts: {len(held)} small files redacted in a baseline)"]


def make_tree(top: Path, count: int) -> None:
    per_dir = 100
    for i in range(count):
        d = top / f"d{i // per_dir:04d}"
        if i % per_dir == 0:
            d.mkdir(parents=True)
        (d / f"f{i % per_dir:03d}.conf").write_text(f"key_{i} = value {i}\nline two of file {i}\n")


def bench_many(count: int, work: Path, repeat: int) -> list[str]:
    top = work / "many"
    start = time.perf_counter()
    make_tree(top, count)
    made = time.perf_counter() - start
    params = {"paths": [str(top)], "max_files": count + 10}
    t_first, out_first = timed(snapshot_argv(params))
    snap = json.loads(out_first)["fleetcare"]
    files = snap["data"]["files"]
    held = snap["data"].get("texts", {})  # what the baseline holds; a drift run is told so
    known = {p: (e["sha256"][:16] if p in held else "-") for p, e in files.items()}
    t_again, out_again = timed(snapshot_argv(dict(params, known=known)))
    t_bare, out_bare = timed(snapshot_argv(dict(params, text_max_bytes=0)))
    mb = 1024 * 1024

    def size(raw: bytes) -> str:
        return f"{len(raw) / mb:6.2f} MiB JSON ({len(gzip.compress(raw, 6)) / mb:5.2f} MiB gzipped)"

    texts = snap["findings"][0]["evidence"]["texts"]
    against_aide = []
    aide = find_aide()
    if aide is not None:
        # the same comparison as on /etc, where the file set is large enough for the fixed start
        # of an Ansible module in Python not to decide it: files only, the baseline's digests known
        _, check = aide_commands(aide, work / "aide-many", str(top), [])
        drift_run = snapshot_argv(dict(params, categories=["files"], known=known))
        t_snap, t_aide = median_pair(drift_run, check, repeat, None, ok_b=tuple(range(0, 64)))
        against_aide = [row(f"  drift run, files only ({count:,})", t_snap, t_aide, "aide --check, same tree",
                            TARGET_AIDE)]
    return [f"{count:,} files (made in {made:.1f} s), one snapshot each:",
            f"  baseline (texts up to the budget: {texts['sent']:,} files, {texts['bytes'] / mb:.2f} MiB) "
            f"{t_first:6.2f} s  {size(out_first)}",
            f"  drift run (known texts stay home)   {t_again:6.2f} s  {size(out_again)}",
            f"  digests only (drift_text_max_bytes=0) {t_bare:6.2f} s  {size(out_bare)}",
            f"  ({len(out_bare) / count:.0f} bytes per file travel)", *against_aide]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--files", type=int, default=50_000)
    parser.add_argument("--parts", default="setup,aide,many",
                        help="comma-separated figures to measure (setup, aide, many); all by default")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory(prefix="fleetcare-bench-drift-") as tmp:
        work = Path(tmp)
        lines = [*([bench_setup(args.repeat, work / "data")] if "setup" in parts else []),
                 *(bench_aide(args.repeat, work) if "aide" in parts else []),
                 *(bench_many(args.files, work, args.repeat) if "many" in parts else [])]
    for path in _PARAM_FILES:
        os.unlink(path)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
