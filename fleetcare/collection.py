"""The collection ``fleetcare.ops`` as the wrapper sees it: where it lives and how the wrapper
imports its host-side code (``plugins/module_utils``), so both sides run the same functions.

The one place that sets up ``sys.path`` for that: in a checkout the collection is the repository
itself, reachable as ``ansible_collections.fleetcare.ops`` through ``.collections``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent  # the collection root (the repository in a checkout)
COLLECTIONS_PATH = ROOT / ".collections"
PACKAGE = "ansible_collections.fleetcare.ops"


def module_utils(name: str) -> ModuleType:
    """``plugins/module_utils/<name>.py`` of this collection, imported by its collection name."""
    if str(COLLECTIONS_PATH) not in sys.path:
        sys.path.append(str(COLLECTIONS_PATH))
    return importlib.import_module(f"{PACKAGE}.plugins.module_utils.{name}")
