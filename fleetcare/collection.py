"""The collection fleetcare.ops as the wrapper imports it (``ansible_collections.fleetcare.ops``).

Installed, the collection is a package on the path. In a checkout it is the repository itself,
reached through ``.collections/ansible_collections/fleetcare/ops`` (a link to the root): this is
the one place that puts that folder on ``sys.path``, so the wrapper, the docs generator and the
tests import the collection's controller code (``plugins/plugin_utils``) and its host data
(``plugins/module_utils``) the way Ansible does, never by file path.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

CHECKOUT_COLLECTIONS = Path(__file__).resolve().parent.parent / ".collections"
PACKAGE = "ansible_collections.fleetcare.ops"


def _collection_root() -> Path:
    """Where the collection and its Ansible project (ansible.cfg, playbooks, roles, inventories)
    are: in a checkout, the repository itself; installed from a wheel, the copy shipped beside
    this package as ``ansible_collections/fleetcare/ops`` (see pyproject.toml)."""
    here = Path(__file__).resolve().parent.parent
    installed = here / "ansible_collections" / "fleetcare" / "ops"
    return installed if (installed / "galaxy.yml").is_file() else here


ROOT = _collection_root()


def _installed() -> bool:
    try:
        return importlib.util.find_spec(PACKAGE) is not None
    except ImportError:
        return False


if not _installed() and CHECKOUT_COLLECTIONS.is_dir() and str(CHECKOUT_COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(CHECKOUT_COLLECTIONS))

# What the wrapper uses of the collection, imported once the path is set.
from ansible_collections.fleetcare.ops.plugins.module_utils import health_checks  # noqa: E402
from ansible_collections.fleetcare.ops.plugins.plugin_utils import controls  # noqa: E402


def module_utils(name: str) -> ModuleType:
    """``plugins/module_utils/<name>.py`` of this collection, imported by its collection name."""
    return importlib.import_module(f"{PACKAGE}.plugins.module_utils.{name}")


def role_checks(role: str) -> tuple[dict, ...]:
    """The checks a role describes as data (``CHECKS`` in ``plugins/module_utils/<role>_checks.py``,
    the records its module takes its texts from), or () for a role that keeps none there."""
    try:
        module = module_utils(f"{role}_checks")
    except ModuleNotFoundError:
        return ()
    # checks the controller judges for the role (health's capacity forecast) come after its own
    return tuple(module.CHECKS) + tuple(getattr(module, "CONTROLLER_CHECKS", ()))


__all__ = ["CHECKOUT_COLLECTIONS", "PACKAGE", "ROOT", "controls", "health_checks", "module_utils", "role_checks"]
