"""Maintenance windows, blackouts and the reboot policy of the patching role: the window judged
in the host's own time zone (TZ set for the module's process, as a host's /etc/localtime is),
the plan's refusal, and the reboot decision (never in a container)."""

from __future__ import annotations

import datetime
import os
import time
from pathlib import Path

import pytest
from ansible_collections.fleetcare.ops.plugins.module_utils import patching_window as pw
from test_patching_audit import run as audit
from test_patching_run import PARAMS as APPLY
from test_patching_run import fake_apt_get, make_host, patching_run

NIGHTS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "22:00", "end": "02:00"}]
SUNDAY = [{"days": ["sun"], "start": "03:00", "end": "05:00"}]


@pytest.fixture
def host(tmp_path: Path) -> Path:
    return make_host(tmp_path)


def at(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M")


@pytest.mark.parametrize(("when", "windows", "blackouts", "is_open"), [
    ("2027-01-10 03:30", SUNDAY, [], True),      # a Sunday inside
    ("2027-01-10 05:00", SUNDAY, [], False),     # the end is not inside
    ("2027-01-11 03:30", SUNDAY, [], False),     # Monday
    ("2027-01-11 23:00", NIGHTS, [], True),      # Monday evening
    ("2027-01-12 01:59", NIGHTS, [], True),      # Tuesday morning: Monday's night
    ("2027-01-16 01:00", NIGHTS, [], True),      # Saturday morning: Friday's night
    ("2027-01-16 23:00", NIGHTS, [], False),     # Saturday evening
    ("2027-01-11 03:00", NIGHTS, [], False),     # Monday morning: Sunday has no night
    ("2027-01-10 12:00", [], [], True),          # no windows: always open
    ("2027-01-10 03:30", SUNDAY, ["2027-01-10"], False),
    ("2027-01-10 03:30", [], ["2027-01-08..2027-01-12"], False),
    ("2027-01-13 03:30", [], ["2027-01-08..2027-01-12"], True),
])
def test_window_state(when, windows, blackouts, is_open):
    assert pw.state(windows, blackouts, at(when))[0] is is_open


def test_reasons_name_the_window_and_the_blackout():
    assert pw.state(SUNDAY, [], at("2027-01-11 03:30")) == (
        False, "outside the maintenance windows (sun 03:00-05:00)")
    assert pw.state(SUNDAY, ["2027-01-10"], at("2027-01-10 03:30")) == (False, "inside the blackout 2027-01-10")


def test_window_problems():
    assert pw.window_problems(SUNDAY + NIGHTS, ["2027-01-01", "2027-01-01..2027-01-02"]) == []
    assert pw.window_problems([{"start": "3:00", "end": "04:00"}], [])[0].startswith("item 0: start must be HH:MM")
    assert "unknown key day" in pw.window_problems([{"day": ["sun"], "start": "03:00", "end": "04:00"}], [])[0]
    assert "days must be" in pw.window_problems([{"days": [], "start": "03:00", "end": "04:00"}], [])[0]
    assert pw.window_problems([], ["2027-02-30"])[0].startswith("blackout 0")


@pytest.fixture
def berlin(monkeypatch):
    """The module's process in the host's zone (Europe/Berlin, UTC+1 in January)."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


def test_update_outside_the_window_is_refused_in_host_time(host: Path, berlin):
    # 2027-01-10 02:30 UTC is 03:30 in Berlin: inside Sunday 03:00-05:00 there, not in UTC
    now = datetime.datetime(2027, 1, 10, 2, 30, tzinfo=datetime.UTC).timestamp()
    findings, _, result = audit(host, now=now, update="all", windows=SUNDAY)
    assert result["refused"] == "" and result["window"]["open"] is True
    assert result["upgrade"] == ["fc-other=1.1", "fc-sec=1.1"]
    later = now + 2 * 3600  # 05:30 Berlin
    findings, _, result = audit(host, now=later, update="all", windows=SUNDAY)
    assert result["refused"].startswith("outside the maintenance windows (sun 03:00-05:00) (host time Sun 2027-01-10 "
                                        "05:30 CET)"), result["refused"]
    assert findings["PTCH-SEC-001"]["status"] == "fail"  # the audit itself still ran
    record = patching_run.apply(dict(APPLY, refused=result["refused"]), str(host), fake_apt_get(host))
    assert record["result"] == "refused" and record["changed"] == []
    # forced: patched anyway, and the plan says it was forced
    _, _, result = audit(host, now=later, update="all", windows=SUNDAY, force=True)
    assert result["refused"] == "" and result["window"]["forced"] is True
    # a blackout beats the window; an audit without an update refuses nothing
    _, _, result = audit(host, now=now, update="all", windows=SUNDAY, blackouts=["2027-01-10"])
    assert "inside the blackout 2027-01-10" in result["refused"]
    _, _, result = audit(host, now=later, windows=SUNDAY)
    assert result["refused"] == ""


def test_refused_run_waits_for_no_lock(host: Path):
    from test_patching_audit import _hold

    holder = _hold(host / "var/lib/dpkg/lock-frontend", 30)
    try:
        start = time.monotonic()
        _, _, result = audit(host, update="all", lock_wait=20, blackouts=[time.strftime("%Y-%m-%d")])
        assert time.monotonic() - start < 5 and result["refused"]
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()


@pytest.mark.parametrize(("policy", "changed", "required", "action"), [
    ("never", True, True, "none"),
    ("always", False, False, "reboot"),
    ("patched", True, False, "reboot"),
    ("patched", False, True, "none"),
    ("smart", True, False, "none"),
    ("smart", False, True, "reboot"),
])
def test_reboot_policy(host: Path, policy, changed, required, action):
    if required:
        (host / "var/run").mkdir(parents=True, exist_ok=True)
        (host / "var/run/reboot-required").write_text("")
    record = {"result": "success", "changed": ["fc-sec"] if changed else []}
    decided = patching_run.reboot_decision(policy, record, str(host), container="")
    assert decided["action"] == action, decided
    assert decided["policy"] == policy and decided["required"] is required
    in_container = patching_run.reboot_decision(policy, record, str(host), container="podman")
    assert in_container["action"] == ("not_applicable" if action == "reboot" else "none")
    if action == "reboot":
        assert "podman container" in in_container["reason"] and "never rebooted" in in_container["reason"]
        # the state the proof after the reboot compares with (PTCH-REBOOT-002), only when rebooting
        assert set(decided["before"]) == {"boot_id", "running_kernel", "newest_installed_kernel", "uptime_seconds"}
        assert "before" not in in_container
    else:
        assert "before" not in decided


def test_no_reboot_after_a_failed_run(host: Path):
    decided = patching_run.reboot_decision("always", {"result": "pre_hook_failed"}, str(host))
    assert decided["action"] == "none" and "did not succeed" in decided["reason"]


def test_a_run_with_nothing_to_install_still_reboots_into_a_waiting_kernel(host: Path):
    (host / "var/run").mkdir(parents=True, exist_ok=True)
    (host / "var/run/reboot-required").write_text("")
    decided = patching_run.reboot_decision("smart", {"result": "nothing_to_do"}, str(host))
    assert decided["action"] == "reboot" and decided["before"]["running_kernel"]


def test_reboot_decision_is_in_the_record(host: Path):
    os.makedirs(host / "var/run", exist_ok=True)
    (host / "var/run/reboot-required").write_text("")
    record = patching_run.apply(dict(APPLY, reboot="smart"), str(host), fake_apt_get(host), container="podman")
    assert record["result"] == "success"
    assert record["reboot"]["action"] == "not_applicable" and record["reboot"]["required"] is True
