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
    assert 'ARG PYCMD="/opt/ee/bin/python3"' in containerfile
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


# -- an AWX job's findings, read back -----------------------------------------------------
@pytest.fixture(scope="module")
def runner_artifacts(tmp_path_factory):
    """The inspect playbook run by ansible-runner (what an AWX execution node runs) from a
    project laid out as AWX checks it out: its artifacts directory holds the events AWX stores."""
    import ansible_runner

    tmp = tmp_path_factory.mktemp("awx")
    project = _project_copy(tmp)
    private = tmp / "pdd"
    (private / "inventory").mkdir(parents=True)
    (private / "inventory" / "hosts").write_text(
        "localhost ansible_connection=local ansible_python_interpreter=/usr/bin/python3\n")
    envvars = {"ANSIBLE_CONFIG": str(tmp / "none.cfg"), "HOME": str(tmp), "PATH": f"{BIN}:{os.environ['PATH']}",
               "ANSIBLE_COLLECTIONS_PATH": f"{tmp}/requirements_collections:/usr/share/ansible/collections"}
    path = os.environ["PATH"]
    os.environ["PATH"] = envvars["PATH"]  # where the runner looks for ansible-playbook
    try:
        result = ansible_runner.run(private_data_dir=str(private), project_dir=str(project), ident="42",
                                    playbook="playbooks/inspect.yml", envvars=envvars, quiet=True)
    finally:
        os.environ["PATH"] = path
    assert result.status == "successful", (private / "artifacts" / "42" / "stdout").read_text()[-2000:]
    return private / "artifacts" / "42"


def _awx_page(artifacts: Path) -> dict:
    # /api/v2/jobs/42/job_events/: the runner's events, with the fields AWX adds to each
    events = sorted((json.loads(p.read_text()) for p in (artifacts / "job_events").glob("*.json")),
                    key=lambda e: e["counter"])
    results = [{"id": 1000 + n, "type": "job_event", "job": 42, "host_name": e.get("event_data", {}).get("host", ""),
                "playbook": "playbooks/inspect.yml", "created": e.get("created"), **e}
               for n, e in enumerate(events)]
    return {"count": len(results), "next": None, "previous": None, "results": results}


def _payload_findings(artifacts: Path) -> list[dict]:
    for path in (artifacts / "job_events").glob("*.json"):
        res = json.loads(path.read_text()).get("event_data", {}).get("res") or {}
        if "fleetcare" in res:
            return res["fleetcare"]["findings"]
    raise AssertionError("no fleetcare payload in the events")


@pytest.mark.slow
@pytest.mark.parametrize("shape", ["page", "pages", "artifacts"])
def test_an_awx_jobs_events_import_into_history_and_reports(runner_artifacts, tmp_path, capsys, shape):
    from fleetcare import cli
    from fleetcare.history import History

    page = _awx_page(runner_artifacts)
    if shape == "artifacts":
        source = runner_artifacts
    else:
        source = tmp_path / "job_events.json"
        if shape == "pages":  # two pages, saved as a list
            half = len(page["results"]) // 2
            doc = [{**page, "next": "/api/v2/jobs/42/job_events/?page=2", "results": page["results"][:half]},
                   {**page, "previous": "/api/v2/jobs/42/job_events/?page=1", "results": page["results"][half:]}]
        else:
            doc = page
        source.write_text(json.dumps(doc))
    db, out = tmp_path / "h.db", tmp_path / "runs"
    code = cli.main(["import", str(source), "--db", str(db), "--output-dir", str(out), "-q"])
    printed = capsys.readouterr().out
    want = _payload_findings(runner_artifacts)
    failing = [f for f in want if f["status"] == "fail" and f["severity"] in ("critical", "major")]
    assert code == (1 if failing else 0), printed
    with History(db) as history:
        run = history.load("latest")
    assert run.command == "inspect" and list(run.hosts) == ["localhost"]
    got = {(f.id, f.status) for f in run.hosts["localhost"].findings}
    assert {(f["id"], f["status"]) for f in want} <= got
    # besides the module's findings, only the controller's own judgement (the capacity forecast)
    assert {fid for fid, _ in got} - {f["id"] for f in want} <= {"HLTH-CAP-001"}
    (run_dir,) = out.iterdir()
    report = json.loads((run_dir / "report.json").read_text())
    assert report["run"]["command"] == "inspect" and report["hosts"][0]["name"] == "localhost"


def test_one_page_of_many_is_refused(tmp_path, capsys):
    from fleetcare import cli
    from fleetcare.history import History

    source = tmp_path / "page1.json"
    source.write_text(json.dumps({"count": 90, "next": "/api/v2/jobs/7/job_events/?page=2", "previous": None,
                                  "results": [{"event": "playbook_on_start", "counter": 1, "event_data": {}}]}))
    code = cli.main(["import", str(source), "--db", str(tmp_path / "h.db")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "save every page" in err and "page1.json" in err
    with History(tmp_path / "h.db") as history:
        assert history.runs() == []  # nothing recorded
