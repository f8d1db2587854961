"""The hardening control catalog (roles/hardening/vars/catalog.yml), health's checks and fleetcare.catalog.

The catalog is data both engines trust, so its shape is checked here record by record: the
collection's schema (plugins/plugin_utils/catalog.schema.json, one branch per kind) through its
one loader, then what the schema cannot say (stable IDs numbered without gaps, no contradiction).
The kinds of the schema, the audit module's registry and the role's task files are one set.
"""

from __future__ import annotations

import importlib.util
import re
from collections import Counter
from pathlib import Path

import pytest
import yaml

from fleetcare import catalog
from fleetcare.collection import controls, health_checks, role_checks
from fleetcare.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "roles" / "hardening" / "vars" / "catalog.yml"
RECORDS = yaml.safe_load(CATALOG.read_text())["__hardening_catalog"]

ID_RE = re.compile(r"^HARD-[A-Z]+-[0-9]{3}$")
AREAS = {"SSH", "KERN", "NET", "PAM", "PASS", "PERM", "MOD", "CORE", "AUDIT", "SVC", "UMASK", "BANNER",
         "CRON", "ACCT", "LOG", "AA", "MNT", "TIME", "SUDO"}
SEVERITIES = {"critical", "major", "minor", "info"}
KEYS = {"id": str, "title": str, "severity": str, "rationale": str, "remediation": str, "references": list,
        "kind": str, "params": dict, "applies_in_container": bool, "disruptive": bool, "tags": list}
ACCOUNT_CHECKS = {"empty_passwords", "uid0_only_root", "root_path", "no_legacy_plus", "system_accounts_nologin",
                  "home_permissions", "gid0_only_root", "duplicate_uids", "duplicate_gids", "duplicate_names",
                  "passwd_groups_exist", "shadow_group_empty"}
HOST_ONLY_AREAS = {"AUDIT", "AA", "MOD", "MNT", "KERN"}
TASKS = ROOT / "roles" / "hardening" / "tasks"


def _module(name):
    spec = importlib.util.spec_from_file_location("fleetcare_" + name, ROOT / "plugins" / "modules" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


AUDIT = _module("hardening_audit")
SCHEMA_KINDS = controls.kinds()
# Kinds that touch the host kernel (or the audit subsystem, or mounts) say so in the registry: they are
# never applied in a container. Network sysctls are the container's own network namespace's, so they do.
HOST_ONLY_KINDS = {k for k, kind in AUDIT.KINDS.items() if isinstance(kind.container, str)}
ids = [r["id"] for r in RECORDS]


@pytest.fixture
def tmp_catalog(tmp_path):
    path = tmp_path / "catalog.yml"
    path.write_text(yaml.safe_dump({"__hardening_catalog": RECORDS[:3]}))
    return path


# ---------------------------------------------------------------- the catalog itself


def test_catalog_loads_and_is_big_enough():
    assert len(RECORDS) >= 150
    assert catalog.load() == RECORDS


def test_ids_unique_and_well_formed():
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    assert [i for i in ids if not ID_RE.match(i)] == []
    assert {i.split("-")[1] for i in ids} <= AREAS


def test_ids_numbered_without_gaps_per_area():
    # Stable IDs are only ever appended: each area counts 001, 002, ... in catalog order.
    seen: dict[str, int] = {}
    for i in ids:
        area, number = i.split("-")[1], int(i.split("-")[2])
        seen[area] = seen.get(area, 0) + 1
        assert number == seen[area], f"{i}: expected number {seen[area]:03d} in area {area}"


@pytest.mark.parametrize("record", RECORDS, ids=ids)
def test_record_shape(record):
    assert set(record) == set(KEYS), f"keys differ: {set(record) ^ set(KEYS)}"
    for key, kind in KEYS.items():
        assert isinstance(record[key], kind), f"{key} is {type(record[key]).__name__}, not {kind.__name__}"
    assert record["severity"] in SEVERITIES
    assert record["title"].strip() and record["rationale"].strip() and record["remediation"].strip()
    assert all(isinstance(r, str) and r.strip() for r in record["references"])
    assert all(isinstance(t, str) and t == t.lower() for t in record["tags"])
    assert record["id"].split("-")[1].lower() in record["tags"], "the area in lower case is always a tag"


@pytest.mark.parametrize("record", RECORDS, ids=ids)
def test_params_fit_the_kind(record):
    controls.validate_record(record)  # the schema's branch for the kind: required and known params
    params = record["params"]
    for key in ("mode",):
        if key in params:
            assert isinstance(params[key], str) and re.fullmatch(r"0?[0-7]{3,4}", params[key])
    scalars = {k: v for k, v in params.items() if k not in ("args", "create", "optional", "unless_present", "replaces")}
    if "replaces" in params:  # a key-only directive (logrotate's daily) that replaces its rivals
        assert record["kind"] == "config_line" and params["replaces"] and params["key"] not in params["replaces"]
        scalars = {k: v for k, v in scalars.items() if k != "value"}
        assert params["value"] == ""
    assert all(isinstance(v, str) and v != "" for v in scalars.values()), "params values are non-empty strings"
    if "unless_present" in params:
        assert params["unless_present"] and all(str(p).startswith("/") for p in params["unless_present"])
    if record["kind"] == "account":
        assert params["check"] in ACCOUNT_CHECKS
    if record["kind"] == "pam_module":
        assert isinstance(params["args"], dict)
        assert params["type"] in ("auth", "account", "password", "session")
        assert params["module"].startswith("pam_") and params["module"].endswith(".so")
    if record["kind"] == "sshd_option":
        assert params["option"] == params["option"].lower(), "sshd -T prints options in lower case"
    if record["kind"] in ("file_mode", "config_line", "ini_option", "file_content", "file_absent"):
        assert params["path"].startswith("/")


@pytest.mark.parametrize("record", RECORDS, ids=ids)
def test_host_only_controls_never_apply_in_containers(record):
    if record["kind"] in HOST_ONLY_KINDS or record["id"].split("-")[1] in HOST_ONLY_AREAS:
        assert record["applies_in_container"] is False
    if record["kind"] == "sysctl":
        # Only per-network-namespace keys may apply in a container; kernel-wide ones are the host's.
        per_netns = record["params"]["key"].startswith(("net.ipv4.", "net.ipv6."))
        assert record["applies_in_container"] is per_netns, record["params"]["key"]


def test_schema_kinds_task_files_and_the_audit_registry_are_one_set():
    task_files = {p.stem[len("kind_"):] for p in TASKS.glob("kind_*.yml")}
    assert set(SCHEMA_KINDS) == task_files, "a kind without its tasks/kind_<kind>.yml, or a task file without a kind"
    assert set(SCHEMA_KINDS) == set(AUDIT.KINDS), "a kind without its registry entry in hardening_audit, or too many"
    assert sorted(SCHEMA_KINDS) == controls.schema()["properties"]["kind"]["enum"]
    for name, kind in AUDIT.KINDS.items():
        # The schema may ask more of a catalog record than the evaluation needs, never less.
        assert set(kind.required) <= set(SCHEMA_KINDS[name]["required"]), name


def test_every_kind_and_area_is_used():
    assert {r["kind"] for r in RECORDS} == set(SCHEMA_KINDS)
    assert {i.split("-")[1] for i in ids} == AREAS


def test_most_controls_have_references():
    with_refs = sum(1 for r in RECORDS if r["references"])
    assert with_refs / len(RECORDS) >= 0.75
    assert all(ref.startswith(("CIS Debian 12 ", "Lynis ", "STIG ", "ANSSI ", "SSG ")) for r in RECORDS
               for ref in r["references"])


def test_lock_out_prone_controls_are_disruptive():
    for option in ("permitrootlogin", "passwordauthentication", "allowgroups"):
        hits = [r for r in RECORDS if r["kind"] == "sshd_option" and r["params"]["option"] == option]
        assert hits and all(r["disruptive"] for r in hits), option
    # noexec where programs are unpacked and run (installers, JITs) needs a remount and may break them.
    noexec = [r for r in RECORDS if r["kind"] == "mount_option" and r["params"]["option"] == "noexec"
              and r["params"]["mount"] in ("/tmp", "/var/tmp", "/dev/shm")]
    assert len(noexec) == 3 and all(r["disruptive"] for r in noexec)
    faillock = [r for r in RECORDS if r["kind"] == "pam_module" and r["params"]["module"] == "pam_faillock.so"]
    assert faillock and all(r["disruptive"] for r in faillock)


def test_no_two_enabled_controls_contradict_each_other():
    # Two records setting one option to different values would fight (enforcement) and one would
    # always fail (audit).
    fields = {"sshd_option": ("option",), "sysctl": ("key",), "config_line": ("path", "key"),
              "ini_option": ("path", "section", "option"), "file_content": ("path",)}
    targets: dict[tuple, str] = {}
    for r in RECORDS:
        if r["kind"] not in fields:
            continue
        k = (r["kind"], *(r["params"][f] for f in fields[r["kind"]]))
        assert k not in targets, f"{r['id']} and {targets[k]} both set {k}"
        targets[k] = r["id"]


def test_package_lists_do_not_conflict():
    present = {r["params"]["package"] for r in RECORDS if r["kind"] == "package_present"}
    absent = {r["params"]["package"] for r in RECORDS if r["kind"] == "package_absent"}
    assert present.isdisjoint(absent)


def test_enabled_defaults_are_sizeable_and_container_friendly():
    enabled = [r for r in RECORDS if not r["disruptive"]]
    in_container = [r for r in enabled if r["applies_in_container"]]
    assert len(enabled) >= 150
    assert len(in_container) >= 100


# ---------------------------------------------------------------- fleetcare.catalog


def test_load_is_cached_and_reads_another_path(tmp_catalog):
    assert catalog.load() is not catalog.load()  # callers get their own list ...
    assert catalog.load()[0] is catalog.load()[0]  # ... of the same cached records
    assert [r["id"] for r in catalog.load(tmp_catalog)] == ids[:3]


def test_load_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match=r"missing\.yml"):
        catalog.load(tmp_path / "missing.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("other: 1\n")
    with pytest.raises(InputError, match="__hardening_catalog"):
        catalog.load(bad)


def test_get_is_case_insensitive():
    assert catalog.get("hard-ssh-001")["id"] == "HARD-SSH-001"


def test_get_unknown_suggests_a_close_match():
    with pytest.raises(InputError) as err:
        catalog.get("HARD-SSH-0001")
    message = str(err.value)
    assert "\n" not in message
    assert "unknown control 'HARD-SSH-0001'" in message and "did you mean HARD-SSH-001?" in message


def test_explain_prints_the_whole_record():
    text = catalog.explain("HARD-SSH-001")
    record = catalog.get("HARD-SSH-001")
    assert text.startswith("HARD-SSH-001  " + record["title"])
    for needle in ("severity      major", "kind          sshd_option", "expected      permitrootlogin no",
                   "disruptive    yes", "Why", "How to fix", "References", "- Lynis SSH-7408"):
        assert needle in text
    assert "not applicable" in catalog.explain("HARD-KERN-001")


@pytest.mark.parametrize("control_id", ids)
def test_explain_works_for_every_control(control_id):
    assert catalog.explain(control_id).startswith(control_id)


def test_match_ids_tags_and_order():
    assert catalog.match(["HARD-SSH-00[12]"]) == ["HARD-SSH-001", "HARD-SSH-002"]
    core = catalog.match(["core"])
    assert core and all(i.startswith("HARD-CORE-") for i in core)
    both = catalog.match(["HARD-CORE-*", "HARD-SSH-001"])
    assert both == sorted(both, key=ids.index)


def test_match_unknown_pattern_is_an_input_error_with_a_hint():
    with pytest.raises(InputError, match=r"no control matches 'HARD-SHH-\*'; did you mean HARD-SSH-\*\?"):
        catalog.match(["HARD-SSH-*", "HARD-SHH-*"])
    with pytest.raises(InputError, match="did you mean pam"):
        catalog.match(["pamm"])


def test_expected_summaries():
    assert catalog.expected(catalog.get("HARD-KERN-001")) == "kernel.randomize_va_space = 2"
    ciphers = next(r for r in RECORDS if r["kind"] == "sshd_option" and r["params"]["option"] == "ciphers")
    assert catalog.expected(ciphers).startswith("ciphers without ")


def test_match_ignores_case_with_the_roles_own_matcher():
    assert catalog.match(["hard-ssh-00[12]"]) == ["HARD-SSH-001", "HARD-SSH-002"]
    assert catalog.match(["SSH"]) == catalog.match(["ssh"])
    # The wrapper's --controls and the role's switches are one function: same patterns, same controls.
    for pattern in ("hard-pam-*", "CORE", "sysctl", "HARD-SSH-00?"):
        selected = controls.select_controls(RECORDS, only=[pattern], enable_disruptive=["*"])["enabled"]
        assert [r["id"] for r in selected] == catalog.match([pattern]), pattern


def test_a_record_off_the_schema_is_an_input_error_naming_file_id_and_key(tmp_path):
    record = dict(RECORDS[0], params={"option": "permitrootlogin", "valeu": "no"})
    path = tmp_path / "catalog.yml"
    path.write_text(yaml.safe_dump({"__hardening_catalog": [record]}))
    with pytest.raises(InputError) as err:
        catalog.load(path)
    message = str(err.value)
    assert str(path) in message and "HARD-SSH-001" in message and "params" in message and "\n" not in message
    path.write_text(yaml.safe_dump({"__hardening_catalog": [dict(RECORDS[0], kind="sshd_opiton")]}))
    with pytest.raises(InputError, match="kind"):
        catalog.load(path)
    path.write_text(yaml.safe_dump({"__hardening_catalog": [RECORDS[0], RECORDS[0]]}))
    with pytest.raises(InputError, match="used twice"):
        catalog.load(path)


# ---------------------------------------------------------------- health's checks, and every finding ID




def test_explain_knows_health_checks():
    text = catalog.explain("HLTH-DISK-001")
    assert text.startswith("HLTH-DISK-001  Filesystem space")
    for needle in ("role          health", "severity      major", "health_disk_warn_pct", "Why", "How to fix"):
        assert needle in text
    assert catalog.explain("hlth-disk-001") == text


@pytest.mark.parametrize("check_id", [c["id"] for c in health_checks.CHECKS])
def test_explain_works_for_every_health_check(check_id):
    assert catalog.explain(check_id).startswith(check_id)


def test_unknown_finding_id_suggests_from_every_role():
    with pytest.raises(InputError, match=r"unknown finding ID 'HLTH-DSK-001'; did you mean HLTH-DISK-001\?"):
        catalog.explain("HLTH-DSK-001")
    with pytest.raises(InputError, match="did you mean HARD-SSH-001"):
        catalog.explain("HARD-SSH-0001")


def test_finding_ids_are_every_role_s_ids_once():
    every = catalog.finding_ids()
    from fleetcare import commands

    roles = dict.fromkeys(r for c in commands.run_commands() for r in c.roles)
    checks = [c["id"] for role in roles for c in role_checks(role)]
    assert {"backup", "drift", "patching"} <= {role for role in roles if role_checks(role)}
    assert len(every) == len(set(every)) == len(RECORDS) + len(checks)
    assert every[:len(health_checks.CHECKS)] == [c["id"] for c in health_checks.CHECKS]
    assert every[:len(checks)] == checks
    assert set(every[len(checks):]) == set(ids)


def test_health_module_takes_its_texts_from_the_check_records():
    module = importlib.import_module("ansible_collections.fleetcare.ops.plugins.module_utils.health_inspection")
    assert list(module.CHECK_FUNCS) == [c["id"] for c in health_checks.CHECKS]
    for check in health_checks.CHECKS:
        assert check["title"] and check["rationale"] and check["remediation"]
        assert check["severity"] in SEVERITIES
        assert set(check["options"]) <= set(module.ARGUMENT_SPEC), check["id"]
    findings = module.inspect(dict({k: v.get("default") for k, v in module.ARGUMENT_SPEC.items()},
                                   sample_seconds=0.0))["fleetcare"]["findings"]
    for found, check in zip(findings, health_checks.CHECKS, strict=True):
        assert (found["id"], found["title"], found["remediation"]) == (check["id"], check["title"],
                                                                       check["remediation"])


def test_a_new_roles_checks_reach_explain_from_its_own_data(monkeypatch):
    """A role that describes its checks in plugins/module_utils/<role>_checks.py and has a command
    in the registry is known to explain and finding_ids, with no other file touched."""
    import sys
    import types

    from fleetcare import commands
    from fleetcare.collection import PACKAGE
    from fleetcare.commands import Command

    data = types.ModuleType("demo_checks")
    data.CHECKS = ({"id": "DEMO-USER-001", "title": "Too many users", "severity": "minor",
                    "options": ("max_users",), "rationale": "Fewer accounts, fewer ways in.",
                    "remediation": "Remove the accounts nobody uses.", "references": []},)
    monkeypatch.setitem(sys.modules, f"{PACKAGE}.plugins.module_utils.demo_checks", data)
    monkeypatch.setitem(commands.COMMANDS, "demo", Command(
        "demo", "check the demo", playbook="playbooks/demo.yml", roles=("demo",), title="Demo report"))
    assert "DEMO-USER-001" in catalog.finding_ids()
    text = catalog.explain("demo-user-001")
    assert "Too many users" in text and "role          demo" in text and "demo_max_users" in text
