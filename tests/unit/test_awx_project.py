"""The repository as an AWX project and an execution environment, offline:

- the playbooks are where AWX finds them (AWX's own rule: a .yml outside roles/, tasks/,
  group_vars/, host_vars/ and dot folders with a top-level ``hosts:``), and the collection
  requirements where its project update reads them (collections/requirements.yml);
- fleetcare.ops resolves without the checkout's ansible.cfg and .collections: the inspect
  playbook runs from a copy of the project with no ansible.cfg, no .collections and the
  collections path AWX sets (ansible-core finds playbooks/collections/ itself);
- ``ansible-builder create`` writes a build context from execution-environment.yml holding the
  collection built from this checkout, and the builder's own introspection reads the
  collection's Python and system requirements out of it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _awx_playbooks(project: Path) -> list[str]:
    # AWX lists a project's playbooks by this rule (awx/main/utils/ansible.py), restated here
    found = []
    playbook = re.compile(r"^\s*?-?\s*?(?:hosts|include|import_playbook):\s*?.*?$")
    for folder, dirs, files in os.walk(project):
        rel = Path(folder).relative_to(project)
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("roles", "tasks", "group_vars",
                                                                         "host_vars", "venv")]
        if any(part in ("molecule", "tests", "benchmarks") for part in rel.parts):
            continue  # listed by AWX too, but not playbooks a job template would use
        for name in files:
            if name.endswith((".yml", ".yaml")):
                text = (Path(folder) / name).read_text(encoding="utf-8", errors="ignore")
                if any(playbook.match(line) for line in text.splitlines()):
                    found.append(str(rel / name))
    return sorted(found)


def test_awx_finds_the_playbooks_and_the_collection_requirements():
    from fleetcare import commands

    listed = _awx_playbooks(ROOT)
    for command in commands.run_commands():
        assert command.playbook in listed
    reqs = yaml.safe_load((ROOT / "collections" / "requirements.yml").read_text())
    names = {c["name"] for c in reqs["collections"]}
    assert {"ansible.posix", "community.general"} <= names
    link = ROOT / "playbooks" / "collections" / "ansible_collections" / "fleetcare" / "ops"
    assert link.is_symlink() and link.resolve() == ROOT and not os.path.isabs(os.readlink(link))


def _project_copy(tmp_path: Path) -> Path:
    """What AWX checks out: the git tree (symlinks kept), without ansible.cfg and .collections."""
    project = tmp_path / "project"
    archive = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, archive):
        src = ROOT / rel
        if rel == "ansible.cfg" or rel.startswith(".collections") or not os.path.lexists(src):
            continue
        dst = project / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)
    return project


@pytest.mark.slow
def test_inspect_playbook_runs_as_awx_runs_it(tmp_path):
    project = _project_copy(tmp_path)
    assert not (project / "ansible.cfg").exists() and not (project / ".collections").exists()
    env = {"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(tmp_path), "LC_ALL": "C.UTF-8",
           # what AWX sets: the project update's collections first, then the defaults
           "ANSIBLE_COLLECTIONS_PATH": f"{tmp_path}/requirements_collections:~/.ansible/collections:"
                                       "/usr/share/ansible/collections",
           "ANSIBLE_CONFIG": str(tmp_path / "none.cfg"), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    proc = subprocess.run([str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=/usr/bin/python3", "playbooks/inspect.yml"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    (task,) = [t for t in out["plays"][0]["tasks"] if "Inspect host health" in t["task"]["name"]]
    payload = task["hosts"]["localhost"]["fleetcare"]
    assert payload["role"] == "health" and payload["findings"]


def test_ansible_builder_create_offline(tmp_path):
    builder = BIN / "ansible-builder"
    if not builder.exists():
        pytest.fail("ansible-builder is missing: pip install -e '.[test]'")
    work = tmp_path / "ee"
    (work / "context-files").mkdir(parents=True)
    shutil.copy(ROOT / "execution-environment.yml", work)
    no_cfg = {**os.environ, "ANSIBLE_CONFIG": str(tmp_path / "none.cfg")}
    subprocess.run([str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(work / "context-files"),
                    str(ROOT)], check=True, capture_output=True, env=no_cfg)
    (tarball,) = (work / "context-files").glob("fleetcare-ops-*.tar.gz")
    tarball.rename(work / "context-files" / "fleetcare-ops.tar.gz")
    proc = subprocess.run([str(builder), "create", "-f", "execution-environment.yml", "-c", "context",
                           "--output-filename", "Containerfile"], cwd=work, capture_output=True, text=True,
                          env={**os.environ, "PIP_NO_INDEX": "1"}, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    context = work / "context"
    containerfile = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="localhost/fleetcare-ee-base:12"' in containerfile
    assert 'ARG PKGMGR="/usr/bin/apt-get"' in containerfile
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible>=12,<13 ansible-runner>=2.4,<3"' in containerfile
    assert "ansible-galaxy collection install" in containerfile and "introspect.py introspect" in containerfile
    assert "COPY _build/context-files /build/context-files" in containerfile
    reqs = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert reqs["collections"] == [{"name": "/build/context-files/fleetcare-ops.tar.gz", "type": "file"}]
    shipped = context / "_build" / "context-files" / "fleetcare-ops.tar.gz"
    with tarfile.open(shipped) as tar:
        names = set(tar.getnames())
        manifest = json.load(tar.extractfile("MANIFEST.json"))
    assert manifest["collection_info"]["namespace"] == "fleetcare" and manifest["collection_info"]["name"] == "ops"
    assert {"meta/execution-environment.yml", "requirements.txt", "bindep.txt", "playbooks/inspect.yml",
            "plugins/modules/health_inspect.py", "roles/health/tasks/main.yml"} <= names
    assert not any(n.startswith(("playbooks/collections", ".collections")) for n in names)

    # what the builder stage does with it: install the tarball (no Galaxy), then introspect
    collections = tmp_path / "installed"
    inst = subprocess.run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "--force",
                           "-p", str(collections), str(shipped)], capture_output=True, text=True, check=False,
                          env=no_cfg)
    assert (collections / "ansible_collections/fleetcare/ops/MANIFEST.json").is_file(), inst.stdout + inst.stderr
    intro = subprocess.run([sys.executable, str(context / "_build" / "scripts" / "introspect.py"), "introspect",
                            str(collections)], capture_output=True, text=True, check=False)
    assert intro.returncode == 0, intro.stderr
    assert "fastjsonschema>=2.19" in intro.stdout, intro.stdout
    assert "openssh-client [platform:dpkg]" in intro.stdout, intro.stdout
