"""Every module's DOCUMENTATION, EXAMPLES and RETURN parse as YAML and agree with its argument spec.

ansible-doc, ansible-lint and Galaxy's import read these strings; a string that does not parse is
only a warning from ansible-lint, so nothing else would catch it. The strings are read with ast
(the text as shipped); the argument spec from the imported module, since some specs are built from
shared parts.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
MODULES = sorted((ROOT / "plugins" / "modules").glob("*.py"))


def _strings_and_spec(path):
    strings = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name) \
                and node.targets[0].id in ("DOCUMENTATION", "EXAMPLES", "RETURN"):
            strings[node.targets[0].id] = ast.literal_eval(node.value)
    spec = importlib.util.spec_from_file_location(f"fleetcare_doc_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return strings, getattr(module, "ARGUMENT_SPEC", None)


def test_every_module_is_covered():
    assert len(MODULES) >= 6
    assert all(p.name != "__init__.py" for p in MODULES)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.stem)
def test_module_documentation_parses_and_lists_every_option(path):
    strings, spec = _strings_and_spec(path)
    assert set(strings) == {"DOCUMENTATION", "EXAMPLES", "RETURN"}, path.name
    doc = yaml.safe_load(strings["DOCUMENTATION"])
    assert doc["module"] == path.stem
    assert doc["short_description"] and doc["description"]
    assert spec is not None, f"{path.name}: no ARGUMENT_SPEC"
    assert set(doc.get("options") or {}) == set(spec)
    for name, option in (doc.get("options") or {}).items():
        assert option.get("description"), f"{path.name}: option {name} has no description"
    assert isinstance(yaml.safe_load(strings["EXAMPLES"]), list)
    returned = yaml.safe_load(strings["RETURN"])
    assert isinstance(returned, dict) and returned
