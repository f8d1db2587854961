"""What the wheel carries (pyproject.toml): every file Ansible reads from the collection, and the
lab's image definitions, so an installed fleetcare has what a checkout has. Building and
installing for real is tests/integration/test_installed.py; this is the fast guard that a new
role, module or playbook needs no packaging edit."""

from __future__ import annotations

import glob
import os
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def shipped(package: str) -> set[str]:
    """Files of ``package`` the wheel takes, found the way setuptools expands package-data."""
    source = ROOT / CONFIG.get("package-dir", {}).get(package, package.replace(".", "/"))
    files = set()
    for pattern in CONFIG["package-data"][package]:
        for hit in glob.glob(os.path.join(source, pattern), recursive=True):
            if os.path.isfile(hit):
                files.add(os.path.relpath(hit, source))
    return files


def present(top: str, *dirs: str) -> set[str]:
    out = set()
    for d in dirs:
        for path in (ROOT / top / d).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and not path.name.startswith("."):
                out.add(str(path.relative_to(ROOT / top)))
    return out


def test_the_collection_ships_whole():
    assert "ansible_collections.fleetcare.ops" in CONFIG["packages"]
    wanted = present(".", "roles", "playbooks", "plugins", "meta", "inventories") | {"ansible.cfg", "galaxy.yml"}
    missing = wanted - shipped("ansible_collections.fleetcare.ops")
    assert not missing, f"pyproject.toml package-data leaves out: {sorted(missing)}"


def test_the_lab_ships_its_image_definitions():
    assert present("fleetcare_lab", "images") <= {f"images/{f}" for f in shipped("fleetcare_lab.images")}


@pytest.mark.parametrize("name", ["roles/health/tasks/main.yml", "plugins/modules/health_inspect.py",
                                  "playbooks/inspect.yml", "inventories/localhost.yml"])
def test_known_files_are_among_them(name):
    assert name in shipped("ansible_collections.fleetcare.ops")


def test_the_message_catalogs_ship():
    """The reports' translations (fleetcare.i18n reads them at render time, offline)."""
    catalogs = present("fleetcare", "locale")
    assert {"locale/zh_CN/LC_MESSAGES/ui.po", "locale/zh_CN/LC_MESSAGES/checks.po"} <= catalogs
    assert catalogs <= {f"locale/{f}" for f in shipped("fleetcare.locale")}
    assert "fleetcare.locale" in CONFIG["packages"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(d.lower().startswith("babel") for d in project["dependencies"])
