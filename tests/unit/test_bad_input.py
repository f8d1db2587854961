"""The bad-input corpus: every case ends in exit 2 (4 when interrupted), exactly one line on
stderr, no traceback, before any host is contacted and with nothing left behind.

The fleet's hosts point at 127.0.0.1 port 1 (closed), and ``app.execute`` is replaced by a trap
that records any call: a case that got as far as Ansible fails on the trap, and on the run
directory and history row a run would leave. The files are written by each case into its own
temporary directory (bad YAML cannot live in the repository: yamllint reads every file)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fleetcare import app, cli, inputs

ROOT = Path(__file__).resolve().parents[2]

FLEET = """\
all:
  vars:
    ansible_host: 127.0.0.1
    ansible_port: 1
    fleetcare_marker: bad-input-corpus
  children:
    web:
      hosts:
        web-1:
        web-2:
    db:
      hosts:
        db-1:
"""

BOMB = "".join(["a: &a [x, x, x, x, x, x, x, x, x]\n"]
               + [f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)])
BOMB_FLOW = ("[&a [x,x,x,x,x,x,x,x,x], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a], &c [*b,*b,*b,*b,*b,*b,*b,*b,*b], "
             "&d [*c,*c,*c,*c,*c,*c,*c,*c,*c], &e [*d,*d,*d,*d,*d,*d,*d,*d,*d], "
             "&f [*e,*e,*e,*e,*e,*e,*e,*e,*e], &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]]")


class Trap:
    """Stands in for fleetcare.execute.execute: any call means Ansible would have started."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args, **kwargs) -> str:
        self.calls += 1
        raise AssertionError("Ansible was started for bad input")


@pytest.fixture
def trap(monkeypatch) -> Trap:
    trap = Trap()
    monkeypatch.setattr(app, "execute", trap)
    return trap


@pytest.fixture
def fleet(tmp_path) -> Path:
    directory = tmp_path / "fleet"
    (directory / "group_vars").mkdir(parents=True)
    (directory / "host_vars").mkdir()
    (directory / "hosts.yml").write_text(FLEET)
    return directory


def files_outside(path: Path, data_home: Path) -> set[Path]:
    """Everything under ``path`` but fleetcare's own data directory (judged by nothing_ran)."""
    return {p for p in path.rglob("*") if p != data_home and data_home not in p.parents}


def nothing_ran(data_home: Path) -> None:
    runs = data_home / "fleetcare" / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "a run directory was created"
    db = data_home / "fleetcare" / "history.db"
    if db.exists():
        import sqlite3

        with sqlite3.connect(db) as conn:
            assert conn.execute("select count(*) from runs").fetchone()[0] == 0


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- the corpus: (id, writer) where writer(tmp, fleet) -> (argv, needles) ----------------------------
def _w(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def _inv(fleet: Path) -> list[str]:
    return ["inspect", "-i", str(fleet / "hosts.yml")]


def _huge(path: Path) -> Path:
    path.write_text("all:\n  hosts:\n")
    os.truncate(path, inputs.MAX_BYTES + 1)  # sparse: no 8 MiB written
    return path


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


Argv = Callable[[Path, Path], list[str]]  # (temporary directory, fleet directory) -> arguments


def args(*argv: str) -> Argv:
    return lambda t, f: list(argv)


def vars_file(content: str | bytes, *more: str) -> Argv:
    return lambda t, f: ["inspect", "--vars-file", str(_w(t / "v.yml", content)), *more]


def inventory(name: str, content: str | bytes, command: str = "inspect") -> Argv:
    return lambda t, f: [command, "-i", str(_w(t / name, content))]


def script(body: str) -> Argv:
    return lambda t, f: ["inspect", "-i", str(_script(t / "inv.sh", body))]


def beside_fleet(files: dict[str, str | bytes]) -> Argv:
    """Files written into the fleet's directory ({"group_vars/web.yml": ...}), then the fleet inspected."""
    def argv(t: Path, f: Path) -> list[str]:
        for rel, content in files.items():
            _w(f / rel, content)
        return _inv(f)
    return argv


def with_fleet_var(anchor: str, lines: str) -> Argv:
    return inventory("i.yml", FLEET.replace(anchor, anchor + lines))


LATIN1 = "x: caf\xe9\n".encode("latin-1")
SCRIPT_VARS = "echo '{\"web\": {\"hosts\": [\"web-1\"], \"vars\": {\"health_mem_warn_pct\": 99}}}'\n"
INI_VARS = "[web]\nweb-1 ansible_host=127.0.0.1 ansible_port=1\n\n[web:vars]\nhealth_disk_warn_pct=96\n"

CASES: dict[str, tuple[Argv, tuple[str, ...]]] = {
    # role variables on the command line: the module's own checks, with defaults merged in
    "e-warn-above-default-critical": (args("inspect", "-e", "health_disk_warn_pct=96"),
                                      ("-e", "health_disk_warn_pct", "95", "role default")),
    "e-critical-below-default-warn": (args("inspect", "-e", "health_disk_critical_pct=80"),
                                      ("-e", "health_disk_critical_pct", "85")),
    "e-absurd-sample-time": (args("inspect", "-e", "health_sample_seconds=10"),
                             ("-e", "health_sample_seconds", "between 0 and 5")),
    "e-negative-sample-time": (args("inspect", "-e", "health_sample_seconds=-1"), ("health_sample_seconds",)),
    "e-nan": (args("inspect", "-e", "health_disk_warn_pct=.nan"), ("health_disk_warn_pct", "finite")),
    "e-inf": (args("inspect", "-e", "health_mem_critical_pct=.inf"), ("health_mem_critical_pct", "finite")),
    "e-minus-inf": (args("inspect", "-e", "health_load_warn_per_core=-.inf"), ("health_load_warn_per_core", "finite")),
    "e-nan-as-text": (args("inspect", "-e", "health_swap_warn_pct=nan"), ("health_swap_warn_pct", "finite")),
    "e-percent-over-100": (args("inspect", "-e", "health_disk_critical_pct=120"),
                           ("health_disk_critical_pct", "between 0 and 100")),
    "e-negative-count": (args("inspect", "-e", "health_oom_warn_count=-1"), ("health_oom_warn_count",)),
    "e-zero-log-window": (args("inspect", "-e", "health_log_window_minutes=0"),
                          ("health_log_window_minutes", "at least 1")),
    "e-cert-days-crossed": (args("inspect", "-e", "health_cert_critical_days=40"),
                            ("health_cert_critical_days", "health_cert_warn_days")),
    "e-unprefixed-typo": (args("inspect", "-e", "disk_warn_pct=80"),
                          ("-e", "disk_warn_pct", "did you mean health_disk_warn_pct?")),
    "e-unprefixed-misspelt": (args("inspect", "-e", "disk_wran_pct=80"),
                              ("disk_wran_pct", "did you mean health_disk_warn_pct?")),
    "e-unprefixed-hardening-variable": (args("audit", "-e", "in_container=true"),
                                        ("in_container", "did you mean hardening_in_container?")),
    "e-alias-bomb": (args("inspect", "-e", f"health_cert_paths={BOMB_FLOW}"), ("-e health_cert_paths", "alias")),
    "e-alias-loop": (args("inspect", "-e", "health_cert_paths=&a [*a]"), ("health_cert_paths", "itself")),
    "e-non-string-key": (args("inspect", "-e", "health_units_ignore={1: a}"), ("health_units_ignore", "not a string")),
    "e-hardening-type": (args("audit", "-e", "hardening_controls_skip={a: b}"), ("hardening_controls_skip",)),
    "e-patch-window-bad-time": (args("patch", "-e", 'patching_windows=[{start: "25:00", end: "04:00"}]'),
                                ("-e: patching_windows: item 0: start must be HH:MM", "25:00")),
    # the health gate's options are the health checks' own: each key, and their thresholds together
    "e-patch-gate-option-typo": (args("patch", "-e", "patching_gate_options={disk_warn_pctt: 80}"),
                                 ("-e: patching_gate_options: 'disk_warn_pctt' is not an option of the health checks",
                                  "did you mean disk_warn_pct?")),
    "e-patch-gate-option-order": (args("patch", "-e", "patching_gate_options={disk_warn_pct: 99}"),
                                  ("patching_gate_options: disk_critical_pct must not be below disk_warn_pct",
                                   "95 < 99")),
    "e-patch-gate-option-sampling": (args("patch", "-e", "patching_gate_options={sample_seconds: 5}"),
                                     ("patching_gate_options", "'sample_seconds' is not an option")),
    "e-patch-window-bad-day": (args("patch", "-e", 'patching_windows=[{days: [funday], start: "01:00", end: "02:00"}]'),
                               ("patching_windows", "days must be a list")),
    "patch-max-fail-word": (args("patch", "--batch", "2", "--max-fail", "half"), ("--max-fail", "half", "0 to 100")),
    "patch-max-fail-over": (args("patch", "--max-fail", "150"), ("--max-fail", "150", "0 to 100")),
    "e-patch-max-fail": (args("patch", "-e", "patching_max_fail=[-5]"), ("patching_max_fail", "-5", "0 to 100")),
    "e-patch-blackout-reversed": (args("patch", "-e", 'patching_blackouts=["2027-01-05..2027-01-01"]'),
                                  ("patching_blackouts", "FIRST..LAST")),
    # role variables in --vars-file, alone and across sources
    "vars-critical-below-default-warn": (vars_file("health_disk_critical_pct: 80\n"),
                                         ("v.yml", "health_disk_critical_pct")),
    "vars-and-e-crossed": (vars_file("health_mem_critical_pct: 91\n", "-e", "health_mem_warn_pct=93"),
                           ("health_mem_", "91 < 93")),
    "vars-nan": (vars_file("health_mem_warn_pct: .NaN\n"), ("v.yml", "health_mem_warn_pct", "finite")),
    "vars-unprefixed-typo": (vars_file("sample_seconds: 1\n"), ("v.yml", "did you mean health_sample_seconds?")),
    "vars-binary": (vars_file(b"health_units_ignore: [\x00\x01\x02]\n"), ("v.yml", "binary")),
    "vars-latin1": (vars_file(LATIN1), ("v.yml", "not UTF-8", "line 1")),
    "vars-utf16": (vars_file("health_units_ignore: []\n".encode("utf-16")), ("v.yml",)),
    "vars-huge": (lambda t, f: ["inspect", "--vars-file", str(_huge(t / "v.yml"))], ("v.yml", "8 MiB")),
    "vars-alias-bomb": (vars_file(BOMB), ("v.yml", "alias")),
    "vars-alias-loop": (vars_file("health_units_ignore: &a [*a]\n"), ("v.yml", "itself")),
    "vars-int-key": (vars_file("1: one\n"), ("v.yml", "'1'", "not a string")),
    "vars-bool-key": (vars_file("yes: 1\n"), ("v.yml", "'yes'")),
    "vars-null-key": (vars_file("~: 1\n"), ("v.yml", "not a string")),
    "vars-nested-key": (vars_file("extra:\n  ? [a, b]\n  : c\n"), ("v.yml", "not a string")),
    "vars-too-deep": (vars_file("x: " + "[" * 200 + "]" * 200 + "\n"), ("v.yml", "deeper")),
    "vars-a-list": (vars_file("- a\n"), ("v.yml", "mapping")),
    "vars-a-directory": (lambda t, f: ["inspect", "--vars-file", str(t)], ("directory",)),
    # inventories
    "inventory-binary": (inventory("i.yml", b"\x7fELF\x02\x01\x00\x00"), ("i.yml", "binary")),
    "inventory-binary-ini": (inventory("hosts", b"[web]\nweb-1\x00\n"), ("hosts", "binary")),
    "inventory-latin1": (inventory("i.yml", "all:\n  hosts:\n    caf\xe9:\n".encode("latin-1")),
                         ("i.yml", "not UTF-8")),
    "inventory-latin1-ini": (inventory("hosts", "[web]\ncaf\xe9\n".encode("latin-1")),
                             ("hosts", "not UTF-8", "line 2")),
    "inventory-huge": (lambda t, f: ["inspect", "-i", str(_huge(t / "i.yml"))], ("i.yml", "over the limit")),
    "inventory-alias-bomb": (with_fleet_var("  vars:\n", "".join(f"    {ln}\n" for ln in BOMB.splitlines())),
                             ("i.yml", "alias")),
    "inventory-int-host": (inventory("i.yml", "all:\n  hosts:\n    1:\n"), ("i.yml", "not a string")),
    "inventory-a-list": (inventory("i.yml", "- web-1\n"), ("i.yml", "mapping")),
    "inventory-dir-with-binary": (lambda t, f: ["inspect", "-i", str(_w(f / "extra", b"\x00\x01").parent)],
                                  ("extra", "binary")),
    "inventory-script-fails": (script("echo broken >&2\nexit 1\n"), ("inv.sh", "not a usable inventory")),
    "inventory-script-garbage": (script("echo '{{{'\n"), ("inv.sh", "not a usable inventory")),
    # the inventory's own variables, checked per host with the role's checks
    "group-vars-warn-above-critical": (beside_fleet({"group_vars/web.yml": "health_disk_warn_pct: 96\n"}),
                                       ("group_vars/web", "health_disk_warn_pct")),
    "host-vars-critical-below-group-warn": (
        beside_fleet({"group_vars/all.yml": "health_disk_warn_pct: 90\n",
                      "host_vars/db-1.yml": "health_disk_critical_pct: 88\n"}),
        ("host_vars/db-1", "health_disk_critical_pct", "88 < 90")),
    "group-vars-dir-nan": (beside_fleet({"group_vars/db/thresholds.yml": "health_inode_warn_pct: .nan\n"}),
                           ("group_vars/db", "health_inode_warn_pct", "finite")),
    "group-vars-unprefixed-typo": (beside_fleet({"group_vars/all.yml": "disk_warn_pct: 80\n"}),
                                   ("group_vars/all", "did you mean")),
    "group-vars-wrong-type": (beside_fleet({"group_vars/all.yml": "health_cert_warn_days: soon\n"}),
                              ("group_vars/all", "health_cert_warn_days")),
    "group-vars-broken-yaml": (beside_fleet({"group_vars/all.yml": "health_units_ignore: [a,\n"}),
                               ("all.yml", "YAML error")),
    "group-vars-a-list": (beside_fleet({"group_vars/web.yml": "- health_disk_warn_pct\n"}), ("web.yml", "mapping")),
    "group-vars-latin1": (beside_fleet({"group_vars/web.yml": LATIN1}), ("web.yml", "not UTF-8")),
    "group-vars-alias-bomb": (beside_fleet({"group_vars/all.yml": BOMB}), ("all.yml", "alias")),
    "host-vars-binary": (beside_fleet({"host_vars/web-1": b"\x00" * 64}), ("web-1", "binary")),
    "host-vars-int-key": (beside_fleet({"host_vars/web-1.yml": "22: ssh\n"}), ("web-1.yml", "'22'")),
    "inline-group-var-out-of-range": (
        with_fleet_var("    web:\n", "      vars:\n        health_swap_critical_pct: 101\n"),
        ("i.yml", "group web", "health_swap_critical_pct")),
    "inline-host-var-typo": (with_fleet_var("        web-2:\n", "          health_disk_wran_pct: 1\n"),
                             ("i.yml", "host web-2", "did you mean health_disk_warn_pct?")),
    "host-vars-patch-window": (
        lambda t, f: ["patch", *beside_fleet(
            {"host_vars/db-1.yml": "patching_windows: [{start: '2am', end: '04:00'}]\n"})(t, f)[1:]],
        ("host_vars/db-1", "patching_windows", "2am")),
    "ini-group-vars": (inventory("hosts", INI_VARS), ("hosts", "group web", "health_disk_warn_pct")),
    "script-inventory-vars": (script(SCRIPT_VARS), ("inv.sh", "group web", "health_mem_warn_pct")),
    # declared service checks (plugins/module_utils/health_services.py services_problems)
    "group-vars-health-services-bad-port": (
        beside_fleet({"group_vars/web.yml": "health_services: [{unit: nginx.service}, {tcp: 99999}]\n"}),
        ("group_vars/web", "health_services", "item 2: tcp: must be a port or host:port")),
    "e-health-services-unknown-kind": (args("inspect", "-e", "health_services=[{port: 80}]"),
                                       ("-e", "health_services", "item 1: must have exactly one of the keys")),
    # drift's per-category settings (plugins/module_utils/validation.py drift_problems)
    "e-drift-severity-unknown-category": (args("drift", "-e", "drift_severity={filez: major}"),
                                          ("-e", "drift_severity", "unknown category 'filez'", "files")),
    "e-drift-severity-bad-level": (args("drift", "-e", "drift_severity={files: urgent}"),
                                   ("-e", "drift_severity", "files", "'urgent' is not a severity")),
    "drift-baseline-from-unknown-category": (
        lambda t, f: ["drift", "-i", str(_w(f / "group_vars" / "web.yml", "drift_baseline_from: {pkgs: web-1}\n")
                                         .parent.parent / "hosts.yml")],
        ("group_vars/web", "drift_baseline_from", "unknown category 'pkgs'")),
    "e-drift-categories-unknown": (args("drift", "-e", "drift_categories=[files, crons]"),
                                   ("-e", "drift_categories", "unknown category 'crons'")),
    "e-drift-baseline-from-empty-host": (args("drift", "-e", "drift_baseline_from={packages: ''}"),
                                         ("drift_baseline_from", "packages", "not a host name")),
    "drift-as-not-a-group": (args("drift", "baseline", "--as", "web"), ("--as 'web'", "group:NAME")),
    "drift-as-many-hosts": (lambda t, f: ["drift", "baseline", "-i", str(f / "hosts.yml"), "--as", "group:web"],
                            ("--as group:web", "one host", "covers 3")),
    "drift-as-without-baseline": (args("drift", "--as", "group:web"), ("--as", "only with 'drift baseline'")),
    # the history database
    "history-db-is-a-directory": (lambda t, f: [*_inv(f), "--db", str(t)], ("history database",)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_one_line_and_exit_2(name, capsys, tmp_path, fleet, trap, data_home):
    make_argv, needles = CASES[name]
    argv = make_argv(tmp_path, fleet)
    before = files_outside(tmp_path, data_home)
    code = cli.main(argv)
    _, err = capsys.readouterr()
    line = one_line(err)
    assert code == 2, line
    assert line.startswith("fleetcare: ")
    for needle in needles:
        assert needle in line, line
    assert trap.calls == 0
    nothing_ran(data_home)
    assert files_outside(tmp_path, data_home) == before, "files were left behind"


def test_the_corpus_is_big_enough():
    assert len(CASES) >= 40


def test_good_input_reaches_ansible(capsys, fleet, trap, data_home):
    """The same fleet with valid values does get to the runner: the trap and the markers work."""
    _w(fleet / "group_vars" / "all.yml", "health_disk_warn_pct: 90\nhealth_disk_critical_pct: 99\n")
    _w(fleet / "host_vars" / "web-1.yml", "health_disk_warn_pct: '{{ 50 + 1 }}'\n")
    with pytest.raises(AssertionError, match="Ansible was started"):
        cli.main(["inspect", "-i", str(fleet / "hosts.yml"), "-e", "disk_usage_note=unrelated",
                  "-e", "health_mem_warn_pct=80"])
    assert trap.calls == 1


def test_a_vaulted_value_is_left_to_the_module_and_never_decrypted(capsys, fleet, trap, tmp_path):
    """The wrapper has no vault password before Ansible runs and never decrypts a secret to judge
    it (ansible-core 2.19 refuses to, outside its own vault context): the run goes on."""
    password = _w(tmp_path / "vault-pass", "s3cret-vault-pass\n")
    vaulted = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-vault"), "encrypt_string", "--vault-password-file",
         str(password), "--name", "health_disk_warn_pct", "70"],
        capture_output=True, text=True, check=True).stdout
    _w(fleet / "host_vars" / "web-1.yml", vaulted)
    with pytest.raises(AssertionError, match="Ansible was started"):
        cli.main(["inspect", "-i", str(fleet / "hosts.yml")])
    assert trap.calls == 1


def test_limit_leaves_out_the_hosts_with_bad_values(capsys, fleet, trap):
    _w(fleet / "host_vars" / "db-1.yml", "health_disk_critical_pct: 10\n")
    with pytest.raises(AssertionError, match="Ansible was started"):
        cli.main(["inspect", "-i", str(fleet / "hosts.yml"), "--limit", "web"])
    code = cli.main(["inspect", "-i", str(fleet / "hosts.yml"), "--limit", "db"])
    assert code == 2 and "host_vars/db-1" in one_line(capsys.readouterr().err)


# -- through a real process: the hanging inventory, Ctrl-C, SIGTERM, a C locale -----------------------
def _fleetcare(tmp_path: Path, *argv: str, **env: str) -> subprocess.Popen:
    environ = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), **env}
    return subprocess.Popen([sys.executable, str(ROOT / "runner.py"), *argv], env=environ, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _hanging_inventory(tmp_path: Path) -> Path:
    return _script(tmp_path / "slow.sh", f"echo $$ > {tmp_path}/script.pid\nsleep 300 &\n"
                                         f"echo $! > {tmp_path}/sleep.pid\nwait\n")


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # killed; a zombie waits only for its new parent to reap it


def _wait_for(path: Path, seconds: float = 20.0) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def test_a_hanging_inventory_script_is_bounded(tmp_path):
    proc = _fleetcare(tmp_path, "inspect", "-i", str(_hanging_inventory(tmp_path)),
                      FLEETCARE_INVENTORY_TIMEOUT="2")
    _, err = proc.communicate(timeout=60)
    line = one_line(err)
    assert proc.returncode == 2
    assert "slow.sh" in line and "2 seconds" in line and inputs.TIMEOUT_ENV in line
    # on a loaded machine the parser may not have reached the script in 2 s; whatever started is gone
    for name in ("script.pid", "sleep.pid"):
        if (tmp_path / name).exists():
            assert _gone(_wait_for(tmp_path / name)), f"{name} outlived fleetcare"
    nothing_ran(tmp_path / "data")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_while_loading_the_inventory_leaves_no_process(tmp_path, signum):
    proc = _fleetcare(tmp_path, "inspect", "-i", str(_hanging_inventory(tmp_path)))
    script, sleeper = _wait_for(tmp_path / "script.pid"), _wait_for(tmp_path / "sleep.pid")
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 4
    assert "interrupted before any host was contacted" in one_line(err)
    assert _gone(script) and _gone(sleeper)
    nothing_ran(tmp_path / "data")


def test_bad_input_in_a_c_locale_is_still_one_line(tmp_path):
    bad = _w(tmp_path / "v.yml", "health_units_ignore: [caf\xe9]\n".encode("latin-1"))
    proc = _fleetcare(tmp_path, "inspect", "--vars-file", str(bad), "-e", "health_disk_warn_pct=.nan",
                      LANG="C", LC_ALL="C")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "v.yml" in one_line(err)


def test_a_locale_without_utf8_is_replaced_for_ansible(monkeypatch):
    # ansible-core refuses to start in such a locale; the run gets C.UTF-8 instead
    monkeypatch.setenv("LC_ALL", "C")
    monkeypatch.setenv("LANG", "C")
    inputs.check_locale()
    assert os.environ["LC_ALL"].lower().replace("-", "") in ("c.utf8", "en_us.utf8")


def test_a_bad_timeout_setting_is_one_line(capsys, tmp_path, monkeypatch, trap):
    monkeypatch.setenv(inputs.TIMEOUT_ENV, "soon")
    code = cli.main(["inspect", "-i", str(_script(tmp_path / "inv.sh", "echo '{}'\n"))])
    assert code == 2 and inputs.TIMEOUT_ENV in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("error", [UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
                                   RecursionError("maximum recursion depth exceeded"), MemoryError()],
                         ids=lambda e: type(e).__name__)
def test_an_unforeseen_input_error_is_still_one_line(capsys, monkeypatch, trap, error):
    """The last net in cli.main: errors a bad file can cause where fleetcare.inputs did not look."""
    from fleetcare import jobs

    def build(*args, **kwargs):
        raise error

    monkeypatch.setattr(jobs, "build", build)
    assert cli.main(["inspect"]) == 2
    assert type(error).__name__ in one_line(capsys.readouterr().err)
