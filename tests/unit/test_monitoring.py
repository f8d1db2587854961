"""The shipped alert rules (monitoring/fleetcare.rules.yml): promtool checks them and runs their
unit tests on synthetic series (monitoring/tests/*.test.yml); every alert has a test."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from . import promstack

MONITORING = Path(__file__).resolve().parents[2] / "monitoring"
RULES = MONITORING / "fleetcare.rules.yml"
TESTS = sorted((MONITORING / "tests").glob("*.test.yml"))


def _promtool(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([promstack.program("promtool"), *argv], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_rules_pass_promtool_check():
    checked = _promtool("check", "rules", str(RULES), cwd=MONITORING)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_rule_unit_tests_pass():
    assert TESTS
    tested = _promtool("test", "rules", *(str(t) for t in TESTS), cwd=MONITORING / "tests")
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_is_tested():
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r}
    tested = {case["alertname"] for t in TESTS for group in yaml.safe_load(t.read_text())["tests"]
              for case in group.get("alert_rule_test", [])}
    assert alerts == tested
    firing = {case["alertname"] for t in TESTS for group in yaml.safe_load(t.read_text())["tests"]
              for case in group.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert firing == alerts  # each alert is seen firing, not only staying quiet
