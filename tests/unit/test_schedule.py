"""fleetcare schedule: the unit and timer text, the cron fallback written for real (into a
temporary root, and once into this machine's /etc/cron.d, where systemd is not PID 1), the
calendar spec checked by the real systemd-analyze, and the command's options checked as the
command checks them, all before anything is written. The run of a schedule inside a lab host
with systemd as PID 1 is tests/integration/test_schedule_lab.py."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fleetcare import cli, schedule
from fleetcare.schedule import Schedule

pytestmark = pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze")

ME = pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "fleet.yml"
    path.write_text("all:\n  hosts:\n    web-1:\n    web-2:\n")
    return path


def plan(**kw) -> Schedule:
    base = {"name": "nightly", "command": ("inspect", "-i", "/srv/fleet 1.yml", "-e", "health_disk_warn_pct=85"),
            "on_calendar": "Mon..Fri 02:30", "normalized": schedule.normalize_calendar("Mon..Fri 02:30"),
            "user": ME, "workdir": "/srv/fleetcare", "random_delay": "15min"}
    return Schedule(**{**base, **kw})


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code, err, *needles):
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (code, err)
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_calendar_normalized_by_systemd_analyze():
    assert schedule.normalize_calendar("daily") == "*-*-* 00:00:00"
    assert schedule.normalize_calendar("Mon..Fri 02:30") == "Mon..Fri *-*-* 02:30:00"


def test_service_and_timer_text():
    s = plan()
    service, timer = schedule.service_text(s), schedule.timer_text(s)
    assert service.startswith("# Written by 'fleetcare schedule add'")
    lines = service.splitlines()
    assert "Type=oneshot" in lines and f"User={ME}" in lines and "SyslogIdentifier=fleetcare-nightly" in lines
    assert "StandardOutput=journal" in lines and "WorkingDirectory=/srv/fleetcare" in lines
    exec_start = next(ln for ln in lines if ln.startswith("ExecStart="))
    assert exec_start == (f"ExecStart={sys.executable} -m fleetcare.cli inspect -i \"/srv/fleet 1.yml\" "
                          "-e health_disk_warn_pct=85")
    assert not any(ln.startswith("Environment") for ln in lines)  # nothing of the caller's environment
    tl = timer.splitlines()
    assert "OnCalendar=Mon..Fri *-*-* 02:30:00" in tl and "Persistent=true" in tl
    assert "RandomizedDelaySec=15min" in tl and "Unit=fleetcare-nightly.service" in tl
    assert "WantedBy=timers.target" in tl
    no_delay = schedule.timer_text(plan(random_delay="")).splitlines()
    assert not any(ln.startswith("RandomizedDelaySec") for ln in no_delay)


def test_systemd_specifiers_and_variables_are_escaped():
    service = schedule.service_text(plan(command=("inspect", "-e", "health_note=50%$HOME")))
    assert 'health_note=50%%$$HOME' in service


def test_unit_files_parse_with_systemd_analyze_verify(tmp_path):
    # systemd's own parser reads the written files (it warns about what it cannot find, not syntax)
    kind, files = schedule.add(plan(), root=tmp_path, systemd=True)
    assert kind == "systemd" and [p.name for p in files] == ["fleetcare-nightly.service", "fleetcare-nightly.timer"]
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(files[1]), str(files[0])],
                          capture_output=True, text=True, check=False)
    assert "Unknown key" not in proc.stderr and "Invalid" not in proc.stderr, proc.stderr


def test_cron_fields_from_normalized_specs():
    cases = {"daily": "0 0 * * *", "hourly": "0 * * * *", "Mon..Fri 02:30": "30 2 * * 1-5",
             "Sat,Sun 08:15": "15 8 * * 6,0", "*-*-* *:00/15": "*/15 * * * *", "*-*-01 06:00": "0 6 1 * *",
             "*-*-* 10/2:05": "5 10-23/2 * * *", "weekly": "0 0 * * 1"}
    for spec, want in cases.items():
        assert schedule.cron_fields(schedule.normalize_calendar(spec)) == want, spec
    for spec in ("*-*-* 00:00:30", "2027-*-* 00:00"):
        with pytest.raises(schedule.InputError, match="cron cannot express"):
            schedule.cron_fields(schedule.normalize_calendar(spec))


def test_cron_fallback_written_listed_and_removed_in_a_root(tmp_path):
    kind, files = schedule.add(plan(), root=tmp_path, systemd=False)
    assert kind == "cron" and files == [tmp_path / "etc/cron.d/fleetcare-nightly"]
    text = files[0].read_text()
    entry = [ln for ln in text.splitlines() if ln and not ln.startswith("#") and "=" not in ln.split()[0]]
    assert len(entry) == 1
    fields = entry[0].split()
    assert fields[:6] == ["30", "2", "*", "*", "1-5", ME]
    assert "cd /srv/fleetcare &&" in entry[0] and "sleep $(shuf -i 0-900 -n 1)" in entry[0]
    assert "-m fleetcare.cli inspect -i '/srv/fleet 1.yml'" in entry[0]
    assert "logger -t fleetcare-nightly" in entry[0]
    assert oct(files[0].stat().st_mode & 0o777) == "0o644"
    rows = schedule.listing(root=tmp_path, systemd=False)
    assert [(r["name"], r["kind"], r["user"]) for r in rows] == [("nightly", "cron", ME)]
    assert rows[0]["calendar"] == "Mon..Fri 02:30"
    assert schedule.remove("nightly", root=tmp_path, systemd=False) == files
    assert not files[0].exists() and schedule.listing(root=tmp_path, systemd=False) == []


def test_cron_escapes_percent():
    text = schedule.cron_text(plan(command=("inspect", "-e", "health_note=50%")))
    assert "health_note=50\\%" in text


def test_files_fleetcare_did_not_write_are_left_alone(tmp_path):
    units = tmp_path / "etc/systemd/system"
    units.mkdir(parents=True)
    theirs = units / "fleetcare-nightly.timer"
    theirs.write_text("[Timer]\nOnCalendar=daily\n")
    other = units / "fleetcare-other.service"
    other.write_text("[Service]\nExecStart=/bin/true\n")
    with pytest.raises(schedule.InputError, match="not written by fleetcare"):
        schedule.add(plan(), root=tmp_path, systemd=True)
    assert theirs.read_text() == "[Timer]\nOnCalendar=daily\n"
    assert not (units / "fleetcare-nightly.service").exists()  # nothing written before the refusal
    assert schedule.listing(root=tmp_path, systemd=True) == []
    with pytest.raises(schedule.InputError, match="no schedule 'other'"):
        schedule.remove("other", root=tmp_path, systemd=True)
    assert other.exists()


# -- the command line ----------------------------------------------------------------------
def test_bad_calendar_one_line_nothing_written(capsys, inventory, tmp_path, monkeypatch):
    monkeypatch.setattr(schedule, "add", lambda *a, **k: pytest.fail("written despite a bad spec"))
    code, _, err = run_cli(capsys, "schedule", "add", "inspect", "-i", str(inventory), "--on-calendar", "bogus")
    one_line(code, err, "--on-calendar 'bogus'", "systemd-analyze refuses it")


@pytest.mark.parametrize(("argv", "needles"), [
    (["inspect", "-i", "/nonexistent/fleet.yml"], ["fleet.yml", "inventory not found"]),
    (["inspect", "-e", "health_disk_wran_pct=85"], ["health_disk_wran_pct"]),
    (["audit", "--controls", "NOPE-*"], ["--controls"]),
    (["patch", "--update", "some"], ["--update", "'some'"]),
    (["inspect", "-e", "db_password=hunter2hunter2"], ["-e db_password", "--vars-file"]),
    (["explain", "HARD-SSH-001"], ["'explain' is not a run command"]),
    (["inspect", "--no-such-option"], ["unrecognized arguments: --no-such-option"]),
])
def test_command_options_checked_as_the_command_checks_them(capsys, monkeypatch, argv, needles):
    monkeypatch.setattr(schedule, "add", lambda *a, **k: pytest.fail("written despite bad options"))
    code, _, err = run_cli(capsys, "schedule", "add", *argv, "--on-calendar", "daily")
    one_line(code, err, *needles)


def test_schedule_options_checked(capsys):
    code, _, err = run_cli(capsys, "schedule", "add", "inspect", "--on-calendar", "daily", "--user", "no-such-user-x")
    one_line(code, err, "--user 'no-such-user-x'")
    code, _, err = run_cli(capsys, "schedule", "add", "inspect", "--on-calendar", "daily", "--name", "Bad Name")
    one_line(code, err, "--name 'Bad Name'")
    code, _, err = run_cli(capsys, "schedule", "add", "inspect", "--on-calendar", "daily", "--random-delay", "soon")
    one_line(code, err, "--random-delay 'soon'")
    code, _, err = run_cli(capsys, "schedule", "add", "inspect")
    one_line(code, err, "--on-calendar SPEC is required")


@pytest.mark.skipif(schedule.systemd_running() or os.geteuid() != 0 or not Path("/etc/cron.d").is_dir(),
                    reason="the real cron fallback needs root, /etc/cron.d and no systemd as PID 1")
def test_cli_cron_fallback_in_the_real_etc_cron_d(capsys, inventory, tmp_path, monkeypatch):
    name = f"test-{os.getpid()}"
    path = Path("/etc/cron.d") / f"fleetcare-{name}"
    monkeypatch.chdir(tmp_path)
    try:
        code, out, err = run_cli(capsys, "schedule", "add", "inspect", "-i", inventory.name, "--on-calendar",
                                 "Mon..Fri 06:00", "--name", name, "--random-delay", "5min", "-q")
        assert code == 0, err
        assert "systemd is not running here, so a cron entry instead" in out and str(path) in out
        text = path.read_text()
        assert f"0 6 * * 1-5 {ME} cd {tmp_path} &&" in text
        assert "-m fleetcare.cli inspect -i fleet.yml -q;" in text  # its options, passed on unchanged
        code, out, _ = run_cli(capsys, "schedule", "list")
        assert code == 0 and f"{name}  cron  Mon..Fri 06:00  as {ME}: inspect -i fleet.yml -q" in out
        code, out, _ = run_cli(capsys, "schedule", "remove", name)
        assert code == 0 and f"removed {path}" in out and not path.exists()
        code, _, err = run_cli(capsys, "schedule", "remove", name)
        one_line(code, err, f"no schedule {name!r}")
    finally:
        path.unlink(missing_ok=True)
