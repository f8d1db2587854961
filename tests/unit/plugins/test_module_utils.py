"""The host library every module imports (plugins/module_utils): probe, wrapper, Debian, sshd."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from ansible_collections.fleetcare.ops.plugins.filter import sshd_access
from ansible_collections.fleetcare.ops.plugins.module_utils import debian, findings, host, sshd

ROOT = Path(__file__).resolve().parents[3]


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# ---------------------------------------------------------------- the probe


def test_probe_is_asked_once_per_root(tmp_path):
    write(tmp_path, "run/.containerenv", "")
    write(tmp_path, "etc/os-release", 'ID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n')
    (tmp_path / "run/systemd/system").mkdir(parents=True)
    first = host.probe(str(tmp_path))
    assert host.probe(str(tmp_path)) is first
    assert first.as_dict() == {"container": "podman", "container_detected_by": "/run/.containerenv", "systemd": True,
                               "os_id": "debian", "os_version_id": "12", "os_codename": "bookworm",
                               "proc_sys_writable": False}
    (tmp_path / "run/.containerenv").unlink()
    assert host.probe(str(tmp_path)).container == "podman"  # the run's answer does not change mid-run


def test_both_modules_answer_the_container_question_with_the_probe(tmp_path):
    import importlib.util

    write(tmp_path, "proc/1/environ", "container=lxc\0")
    from ansible_collections.fleetcare.ops.plugins.module_utils import health_inspection as health

    spec = importlib.util.spec_from_file_location("probe_hardening_audit",
                                                  ROOT / "plugins" / "modules" / "hardening_audit.py")
    hardening = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hardening)
    assert health.probe is host.probe and hardening.probe is host.probe
    ctx = health.Context({}, root=str(tmp_path))
    assert ctx.container == "lxc"
    audit_host = hardening.Host(str(tmp_path))
    assert audit_host.codename() == host.probe(str(tmp_path)).codename == ""


def test_run_cmd_says_a_tool_is_missing():
    with pytest.raises(findings.ToolMissing, match="no-such-tool-here is not installed"):
        host.run_cmd(["no-such-tool-here"])
    assert isinstance(findings.ToolMissing("x"), findings.CheckError)


# ---------------------------------------------------------------- the check -> finding wrapper


@pytest.mark.parametrize("exc, status, reason", [
    (findings.NotApplicable("no journal", {"path": "/run/x"}), "not_applicable", "no journal"),
    (findings.CheckError("cannot tell"), "error", "cannot tell"),
    (PermissionError(13, "Permission denied", "/proc/x"), "error", "cannot read /proc/x: Permission denied"),
    (KeyError("boom"), "error", "check crashed: KeyError: 'boom'"),
])
def test_run_check_turns_what_a_check_raises_into_one_finding(exc, status, reason):
    def check():
        raise exc

    found, metrics = findings.run_check("T-1", "Title", "major", check, "fix it", ["ref"], {"kind": "demo"})
    assert (found["status"], found["severity"], found["evidence"]["reason"], metrics) == (status, "major", reason, [])
    assert found["evidence"]["kind"] == "demo" and found["remediation"] == "fix it" and found["references"] == ["ref"]
    if isinstance(exc, findings.NotApplicable):
        assert found["evidence"]["path"] == "/run/x"


def test_run_check_passes_a_result_through():
    found, metrics = findings.run_check("T-1", "Title", "minor", lambda: ("fail", "major", {"x": 1}, ["m"]))
    assert (found["status"], found["severity"], found["evidence"], metrics) == ("fail", "major", {"x": 1}, ["m"])


# ---------------------------------------------------------------- Debian


def test_release_files_name_their_origin_and_security_suites(tmp_path):
    lists = "var/lib/apt/lists/"
    write(tmp_path, lists + "deb.debian.org_debian-security_dists_bookworm-security_InRelease",
          "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian\nLabel: Debian-Security\n"
          "Suite: stable-security\nCodename: bookworm-security\n-----BEGIN PGP SIGNATURE-----\nxyz\n")
    write(tmp_path, lists + "deb.debian.org_debian_dists_bookworm_Release",
          "Origin: Debian\nLabel: Debian\nSuite: stable\nCodename: bookworm\n")
    origins = debian.apt_origins(str(tmp_path))
    assert sorted(origins) == ["deb.debian.org_debian-security_dists_bookworm-security_InRelease",
                               "deb.debian.org_debian_dists_bookworm_Release"]
    security, main = (origins[k] for k in sorted(origins))
    assert security == {"origin": "Debian", "label": "Debian-Security", "suite": "stable-security",
                        "codename": "bookworm-security"}
    assert debian.is_security_origin(security) and not debian.is_security_origin(main)


def test_apt_sources_read_both_formats(tmp_path):
    write(tmp_path, "etc/apt/sources.list", "deb http://deb.debian.org/debian bookworm main\n")
    write(tmp_path, "etc/apt/sources.list.d/debian.sources",
          "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n"
          "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
    write(tmp_path, "etc/apt/sources.list.d/ignored.txt", "deb http://x y main\n")
    entries = debian.parse_apt_sources(debian.read_apt_sources(str(tmp_path)))
    assert [e[2] for e in entries] == ["bookworm", "bookworm-security"]


def test_reboot_required_and_kernels(tmp_path):
    assert debian.reboot_required(str(tmp_path)) == (False, [])
    write(tmp_path, "var/run/reboot-required", "*** System restart required ***\n")
    assert debian.reboot_required(str(tmp_path)) == (True, [])
    write(tmp_path, "var/run/reboot-required.pkgs", "libc6\nlibc6\nlinux-image-amd64\n")
    assert debian.reboot_required(str(tmp_path)) == (True, ["libc6", "linux-image-amd64"])
    write(tmp_path, "boot/vmlinuz-6.1.0-18-amd64", "")
    write(tmp_path, "boot/vmlinuz-6.1.0-9-amd64", "")
    assert debian.newer_kernel_installed("6.1.0-9-amd64", str(tmp_path)) == ("6.1.0-18-amd64", True)
    assert debian.newer_kernel_installed("6.1.0-18-amd64", str(tmp_path)) == ("6.1.0-18-amd64", False)


# ---------------------------------------------------------------- sshd: one table for module and filters


def test_the_filters_spell_lists_with_the_shared_table():
    assert not hasattr(sshd_access, "COMMA_LISTS")
    for option in sshd.COMMA_LIST_OPTIONS:
        assert sshd_access.sshd_value({"option": option, "value": ["a", "b"]}) == "a,b", option
    # gssapikexalgorithms was a comma list to the audit module only, before there was one table.
    assert sshd_access.sshd_value({"option": "GSSAPIKexAlgorithms", "value": ["a", "b"]}) == "a,b"
    assert sshd_access.sshd_value({"option": "AllowGroups", "value": ["a", "b"]}) == "a b"
    assert sshd.parse_sshd_t("AllowGroups  sudo adm\nallowgroups root\nport 22\n") == {
        "allowgroups": ["sudo adm", "root"], "port": ["22"]}


# ---------------------------------------------------------------- runs on the managed hosts' Python


@pytest.mark.parametrize("path", sorted((ROOT / "plugins").rglob("*.py")), ids=lambda p: p.name)
def test_plugins_parse_as_python_39(path):
    tree = ast.parse(path.read_text(), str(path), feature_version=(3, 9))
    if "module_utils" in path.parts or "modules" in path.parts:
        # Code shipped to hosts imports the collection's utilities by their collection name.
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and "module_utils" in node.module:
                assert node.module.startswith(("ansible.module_utils", "ansible_collections.fleetcare.ops.plugins"
                                                                       ".module_utils.")), node.module


def _host_python_files():
    """Code that runs on a managed host's Python (Debian 11: 3.9): the collection's plugins and
    the Python scripts roles install (roles/*/files with a python shebang)."""
    files = sorted((ROOT / "plugins").rglob("*.py"))
    for path in sorted((ROOT / "roles").glob("*/files/*")):
        if path.is_file() and path.read_text(errors="replace").startswith("#!/usr/bin/python"):
            files.append(path)
    return files


# Calls whose keyword arrived after Python 3.9: they parse under 3.9 and fail only when run there
# (zip(strict=False) turned BKUP-TIMER-001 and BKUP-UNIT-001 into errors on Debian 11).
NEWER_KEYWORDS = {"zip": {"strict"}, "dataclass": {"slots", "kw_only", "match_args"}}


@pytest.mark.parametrize("path", _host_python_files(), ids=lambda p: p.name)
def test_host_code_runs_on_python_39(path):
    tree = ast.parse(path.read_text(), str(path), feature_version=(3, 9))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            used = {k.arg for k in node.keywords} & NEWER_KEYWORDS.get(name, set())
            assert not used, f"{path.name}:{node.lineno}: {name}({used.pop()}=...) needs Python 3.10"


def test_the_python_39_scan_sees_zip_strict():
    tree = ast.parse("dict(zip(a, b, strict=False))", feature_version=(3, 9))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "zip"]
    assert {k.arg for k in calls[0].keywords} & NEWER_KEYWORDS["zip"]
