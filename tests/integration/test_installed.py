"""fleetcare installed, not only in a checkout: both ways of installing it, for real.

(a) ``pip install <checkout>`` (not editable) into a fresh virtual environment outside the
    checkout, then ``fleetcare inspect`` and ``fleetcare audit`` of this machine;
(b) ``ansible-galaxy collection build`` and ``install`` of the tarball, ``ansible-playbook
    fleetcare.ops.inspect`` addressed through the collection, and ``fleetcare import`` of what it
    printed.

No download: the new environment sees this test environment's packages (Ansible, ansible-runner,
setuptools) through a .pth file, pip runs with --no-deps --no-build-isolation --no-index, and the
console scripts pip would have written for ansible-core and ansible-runner are written here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib.metadata import distribution
from pathlib import Path

import pytest

from fleetcare.collection import health_checks
from fleetcare.results import validate

ROOT = Path(__file__).resolve().parents[2]
HEALTH_CHECKS = len(health_checks.CHECKS) + 1  # the module\'s checks and HLTH-CAP-001, judged on the controller
pytestmark = pytest.mark.slow


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A user's shell: nothing of this checkout or this test environment on the way."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANSIBLE_", "PYTHON", "VIRTUAL_ENV", "FLEETCARE_"))}
    env.update(PATH="/usr/local/bin:/usr/bin:/bin", XDG_DATA_HOME=str(tmp_path / "data"), HOME=str(tmp_path),
               **extra)
    return env


def _run(argv: list[str], tmp_path: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=tmp_path, env=_env(tmp_path, **extra), capture_output=True, text=True,
                          timeout=300, check=False)


def _source_copy(tmp_path: Path) -> Path:
    """The checkout as a user would have it (pip builds in the tree: keep ours clean)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", ".cache"))
    return src


def _venv(tmp_path: Path) -> Path:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # this environment's packages, after the new one's own (a plain path: its .pth files, such as
    # the editable fleetcare's, are not processed)
    Path(site, "zz-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    for dist in ("ansible-core", "ansible-runner"):
        for ep in distribution(dist).entry_points.select(group="console_scripts"):
            module, _, attr = ep.value.partition(":")
            script = venv / "bin" / ep.name
            script.write_text(f"#!{python}\nimport sys\nfrom {module} import {attr}\nsys.exit({attr}())\n")
            script.chmod(0o755)
    return venv


def _report(out: str) -> tuple[Path, dict]:
    line = next(ln for ln in out.splitlines() if ln.startswith("reports: "))
    run_dir = Path(line.removeprefix("reports: ").split("/report.")[0])
    report = json.loads((run_dir / "report.json").read_text())
    validate(report)
    return run_dir, report


def test_pip_install_then_inspect_and_audit(tmp_path):
    venv = _venv(tmp_path)
    pip = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                "--no-index", str(_source_copy(tmp_path))], tmp_path)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    shutil.rmtree(tmp_path / "src")  # nothing may come from the source tree any more
    where = _run([str(venv / "bin" / "python"), "-c", "import fleetcare, fleetcare.jobs as j; "
                  "print(fleetcare.__file__); print(j.ROOT)"], tmp_path)
    package, root = where.stdout.split()
    assert package.startswith(str(venv)) and root.startswith(str(venv)), where.stdout + where.stderr
    assert root.endswith("site-packages/ansible_collections/fleetcare/ops")

    fleetcare = str(venv / "bin" / "fleetcare")
    before = _files(Path(root))
    for command, checks in (("inspect", HEALTH_CHECKS), ("audit", 100)):
        proc = _run([fleetcare, command], tmp_path)
        assert proc.returncode in (0, 1), f"{command}: {proc.stdout}{proc.stderr}"
        assert "Traceback" not in proc.stderr
        run_dir, report = _report(proc.stdout)
        assert report["run"]["command"] == command and report["hosts"][0]["status"] == "ok"
        assert len({f["id"] for f in report["findings"]}) >= checks, command
        (events,) = run_dir.glob("runner/artifacts/*/job_events")
        start = next(json.loads(p.read_text()) for p in events.glob("1-*.json"))
        assert start["event_data"]["playbook"] == f"{root}/playbooks/{command}.yml"
        # the run's own runner artifacts read back give the same findings (the run directory
        # itself would be re-imported from its report.json; its runner/ folder is read as events)
        again = _run([fleetcare, "import", str(run_dir / "runner"), "-q"], tmp_path)
        assert again.returncode == proc.returncode, again.stdout + again.stderr
        _, imported = _report(again.stdout)
        assert imported["run"]["command"] == command
        assert _statuses(imported) == _statuses(report)
    assert _files(Path(root)) == before  # runs write nothing where they are installed (may be read-only)
    # the translations ship in the wheel and are read from it, offline (fleetcare.i18n, Babel)
    zh = _run([fleetcare, "report", "latest", "--format", "md", "--lang", "zh-CN"], tmp_path)
    assert zh.returncode == 0 and "## 未通过的检查结果" in zh.stdout, zh.stdout[-1000:] + zh.stderr
    catalogs = _run([str(venv / "bin" / "python"), "-c", "from fleetcare import i18n; "
                     "print(i18n.catalog_path('zh-CN', 'checks'))"], tmp_path)
    assert catalogs.stdout.startswith(str(venv)), catalogs.stdout + catalogs.stderr


def _files(top: Path) -> set[str]:
    return {str(p.relative_to(top)) for p in top.rglob("*") if "__pycache__" not in p.parts}


def _statuses(report: dict) -> list[tuple[str, str, str]]:
    return sorted((f["host"], f["id"], f["status"]) for f in report["findings"])


def test_galaxy_collection_then_ansible_playbook_then_import(tmp_path):
    bin_dir = Path(sys.executable).parent  # this environment's Ansible
    build = _run([str(bin_dir / "ansible-galaxy"), "collection", "build", str(ROOT), "--output-path",
                  str(tmp_path / "dist")], tmp_path)
    assert build.returncode == 0, build.stdout + build.stderr
    (tarball,) = (tmp_path / "dist").glob("fleetcare-ops-*.tar.gz")
    collections = tmp_path / "collections"
    install = _run([str(bin_dir / "ansible-galaxy"), "collection", "install", str(tarball), "-p",
                    str(collections)], tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    installed = collections / "ansible_collections" / "fleetcare" / "ops"
    assert not (installed / "fleetcare").exists() and not (installed / "fleetcare_lab").exists()

    playbook = _run([str(bin_dir / "ansible-playbook"), "fleetcare.ops.inspect", "-i",
                     str(installed / "inventories" / "localhost.yml")], tmp_path,
                    ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    assert playbook.returncode == 0, playbook.stdout[-2000:] + playbook.stderr
    doc = json.loads(playbook.stdout)
    assert doc["plays"][0]["play"]["path"].startswith(f"{installed}/playbooks/inspect.yml")
    results = tmp_path / "inspect.json"
    results.write_text(playbook.stdout)

    proc = _run([sys.executable, str(ROOT / "runner.py"), "import", str(results)], tmp_path)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr
    _, report = _report(proc.stdout)
    assert report["run"]["command"] == "inspect"
    assert len({f["id"] for f in report["findings"]}) == len(report["findings"]) == HEALTH_CHECKS
    assert report["hosts"] == [{"name": "localhost", "status": "ok", "message": "", "changes": []}]
