"""The hardening catalog on the controller: the switches (plugin_utils/controls.py, shared by the
select_controls filter and the hardening_audit action plugin), the records trimmed for the audit
module, the catalog load, and the action plugin's hand-off to the module."""

from __future__ import annotations

import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml
from ansible.errors import AnsibleActionFail

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT / ".collections") not in sys.path:
    sys.path.insert(0, str(ROOT / ".collections"))

from ansible_collections.fleetcare.ops.plugins.action import hardening_audit as action  # noqa: E402
from ansible_collections.fleetcare.ops.plugins.plugin_utils import controls  # noqa: E402

select = controls.select_controls
CATALOG_FILE = ROOT / "roles" / "hardening" / "vars" / "catalog.yml"

CATALOG = [
    {"id": "HARD-SSH-001", "kind": "sshd_option", "params": {"option": "PermitRootLogin", "value": "prohibit-password"},
     "tags": ["ssh"], "disruptive": False},
    {"id": "HARD-SSH-002", "kind": "sshd_option", "params": {"option": "PermitRootLogin", "value": "no"},
     "tags": ["ssh"], "disruptive": True},
    {"id": "HARD-PASS-001", "kind": "config_line", "params": {"path": "/etc/login.defs", "key": "PASS_MAX_DAYS",
                                                              "value": "365"}, "tags": ["pass"], "disruptive": False},
    {"id": "HARD-KERN-001", "kind": "sysctl", "params": {"key": "kernel.kptr_restrict", "value": "2"},
     "tags": ["kern"], "disruptive": False},
]


# Records of the real catalog, where a test writes a catalog file (the loader validates every record).
REAL = yaml.safe_load(CATALOG_FILE.read_text())[controls.CATALOG_KEY]
REAL_FOUR = [next(r for r in REAL if r["id"] == i) for i in ("HARD-SSH-001", "HARD-SSH-002", "HARD-PASS-001",
                                                            "HARD-KERN-001")]


def ids(records):
    return [r["id"] for r in records]


# ---------------------------------------------------------------- the switches


def test_defaults_leave_disruptive_controls_off():
    out = select(CATALOG)
    assert ids(out["enabled"]) == ["HARD-SSH-001", "HARD-PASS-001", "HARD-KERN-001"]
    assert ids(out["skipped"]) == ["HARD-SSH-002"]
    assert "disruptive" in out["skipped"][0]["reason"]


def test_skip_by_pattern_and_by_tag():
    out = select(CATALOG, skip=["HARD-SSH-*", "kern"])
    assert ids(out["enabled"]) == ["HARD-PASS-001"]
    assert {r["reason"] for r in out["skipped"]} >= {"switched off (hardening_controls_skip)"}


def test_only_and_enable_disruptive():
    out = select(CATALOG, only=["ssh"], enable_disruptive=["HARD-SSH-002"])
    assert ids(out["enabled"]) == ["HARD-SSH-001", "HARD-SSH-002"]
    assert ids(out["skipped"]) == ["HARD-PASS-001", "HARD-KERN-001"]


def test_overrides_merge_over_params_without_touching_the_catalog():
    out = select(CATALOG, overrides={"HARD-PASS-001": {"value": "180"}})
    (rec,) = [r for r in out["enabled"] if r["id"] == "HARD-PASS-001"]
    assert rec["params"] == {"path": "/etc/login.defs", "key": "PASS_MAX_DAYS", "value": "180"}
    assert CATALOG[2]["params"]["value"] == "365"


@pytest.mark.parametrize("kwargs", [
    {"skip": ["HARD-SHH-*"]},
    {"only": ["HARD-XYZ-001"]},
    {"enable_disruptive": ["nope"]},
    {"overrides": {"HARD-PASS-009": {"value": "1"}}},
])
def test_a_switch_matching_nothing_is_an_error(kwargs):
    with pytest.raises(controls.SelectionError, match="no control of the catalog matches"):
        select(CATALOG, **kwargs)


# ---------------------------------------------------------------- trimmed for the module


def test_audit_selection_keeps_only_what_the_module_reads():
    full = [dict(r, title="t", severity="minor", rationale="why " * 50, remediation="fix", references=["CIS 1"],
                 applies_in_container=True) for r in CATALOG]
    out = controls.audit_selection(full, skip=["kern"], overrides={"HARD-PASS-001": {"value": "180"}})
    assert ids(out["controls"]) == ["HARD-SSH-001", "HARD-PASS-001"]
    assert ids(out["skipped"]) == ["HARD-SSH-002", "HARD-KERN-001"]
    assert all(set(r) == set(controls.AUDIT_KEYS) for r in out["controls"])
    assert all(set(r) == set(controls.SKIPPED_KEYS) for r in out["skipped"])
    assert out["controls"][1]["params"]["value"] == "180"


def test_real_catalog_shrinks_and_keeps_every_control():
    records = controls.load_catalog(str(CATALOG_FILE))
    out = controls.audit_selection(records)
    assert len(out["controls"]) + len(out["skipped"]) == len(records)
    assert not any("rationale" in r or "tags" in r for r in out["controls"] + out["skipped"])


# ---------------------------------------------------------------- the catalog file


def test_catalog_is_parsed_once_per_file_version(tmp_path, monkeypatch):
    path = tmp_path / "catalog.yml"
    path.write_text(yaml.safe_dump({controls.CATALOG_KEY: REAL_FOUR[:1]}))
    loads = []
    real = yaml.load
    monkeypatch.setattr(yaml, "load", lambda *a, **kw: loads.append(1) or real(*a, **kw))
    first = controls.load_catalog(str(path))
    assert controls.load_catalog(str(path)) is first
    assert len(loads) == 1
    path.write_text(yaml.safe_dump({controls.CATALOG_KEY: REAL_FOUR[:2]}))
    assert ids(controls.load_catalog(str(path))) == ["HARD-SSH-001", "HARD-SSH-002"]


@pytest.mark.parametrize("text, match", [
    (None, "cannot read the catalog"),
    ("other: []\n", "has no list __hardening_catalog"),
    ("a: [\n", "cannot load the catalog"),
])
def test_a_bad_catalog_file_is_a_selection_error(tmp_path, text, match):
    path = tmp_path / "catalog.yml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(controls.SelectionError, match=match):
        controls.load_catalog(str(path))


# ---------------------------------------------------------------- the action plugin


def run_action(args, check_mode=False):
    task = mock.MagicMock(args=args, async_val=0, check_mode=check_mode, action="fleetcare.ops.hardening_audit")
    connection = mock.MagicMock(has_native_async=False)
    connection._shell.tmpdir = None
    plugin = action.ActionModule(task, connection, mock.MagicMock(), mock.MagicMock(), mock.MagicMock(),
                                 mock.MagicMock())
    calls = []

    def execute(module_name=None, module_args=None, task_vars=None, wrap_async=False):
        calls.append({"module_name": module_name, "module_args": module_args})
        return {"changed": False, "fleetcare": {"findings": []}, "invocation": {"module_args": module_args}}

    plugin._execute_module = execute
    return plugin.run(task_vars={}), calls


def test_the_action_selects_on_the_controller_in_one_module_call():
    switches = {"skip": ["HARD-SSH-*"], "only": [], "enable_disruptive": [],
                "overrides": {"HARD-PASS-001": {"value": "180"}}}
    result, calls = run_action(dict(switches, in_container="no"))
    (call,) = calls
    assert call["module_name"] == "fleetcare.ops.hardening_audit"
    want = controls.audit_selection(controls.load_catalog(action.DEFAULT_CATALOG), **switches)
    assert call["module_args"] == dict(want, in_container="no")
    # the result echoes the switches, not the hundreds of records they expanded to
    assert result["invocation"]["module_args"]["skip"] == ["HARD-SSH-*"]
    assert "controls" not in result["invocation"]["module_args"]


def test_the_default_catalog_is_the_collections_own():
    assert Path(action.DEFAULT_CATALOG).resolve() == CATALOG_FILE.resolve()


def test_the_action_takes_a_catalog_file(tmp_path):
    path = tmp_path / "catalog.yml"
    path.write_text(yaml.safe_dump({controls.CATALOG_KEY: REAL_FOUR}))
    with mock.patch.object(action.ActionModule, "_find_needle", lambda self, d, n: n):
        _, calls = run_action({"catalog": str(path), "only": ["pass"], "enable_disruptive": ["HARD-SSH-002"]})
    assert ids(calls[0]["module_args"]["controls"]) == ["HARD-PASS-001"]
    assert ids(calls[0]["module_args"]["skipped"]) == ["HARD-SSH-001", "HARD-SSH-002", "HARD-KERN-001"]


def test_a_controls_list_is_handed_over_as_given():
    given = {"controls": [dict(CATALOG[0], rationale="kept")], "skipped": [], "in_container": "yes"}
    _, calls = run_action(given)
    assert calls[0]["module_args"] == given


@pytest.mark.parametrize("args, match", [
    ({"skip": ["HARD-SHH-*"]}, "hardening_audit: no control of the catalog matches hardening_controls_skip"),
    ({"controls": [], "skip": ["ssh"]}, "mutually exclusive"),
    ({"skipped": []}, "skipped"),
])
def test_the_action_refuses_bad_arguments_before_the_module_runs(args, match):
    with pytest.raises(AnsibleActionFail, match=match):
        run_action(args)
