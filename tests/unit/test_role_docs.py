"""docs/gen_role_docs.py: README variables tables generated from argument specs, and kept fresh."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load():
    spec = importlib.util.spec_from_file_location("gen_role_docs", ROOT / "docs" / "gen_role_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load()

SPEC = """---
argument_specs:
  main:
    short_description: Do a thing
    options:
      demo_paths:
        type: list
        elements: str
        default: [/a, /b]
        description:
          - Paths to C(look) at | carefully.
          - Second line.
      demo_mode:
        type: str
        default: fast
        choices: [fast, slow]
        description: How.
      demo_token:
        type: str
        required: true
        description: A secret.
"""

README = """# demo

Intro.

<!-- BEGIN VARIABLES -->
old table
<!-- END VARIABLES -->

Footer.
"""


@pytest.fixture
def role(tmp_path):
    (tmp_path / "meta").mkdir()
    (tmp_path / "meta" / "argument_specs.yml").write_text(SPEC)
    (tmp_path / "README.md").write_text(README)
    return tmp_path


def roles_with_markers():
    return sorted(p.parent for p in ROOT.glob("roles/*/README.md") if gen.BEGIN in p.read_text())


def test_health_readme_uses_the_generator():
    assert ROOT / "roles" / "health" in roles_with_markers()


@pytest.mark.parametrize("role_dir", roles_with_markers(), ids=lambda p: p.name)
def test_role_readme_tables_are_fresh(role_dir):
    assert gen.process(role_dir, check=True), (
        f"{role_dir}/README.md is stale: run python docs/gen_role_docs.py roles/{role_dir.name}"
    )


def test_generates_between_markers_and_keeps_the_rest(role):
    assert gen.main([str(role)]) == 0
    text = (role / "README.md").read_text()
    assert text.startswith("# demo\n\nIntro.\n")
    assert text.endswith("<!-- END VARIABLES -->\n\nFooter.\n")
    assert "old table" not in text
    row = "| `demo_paths` | list of str | `[/a, /b]` | Paths to `look` at \\| carefully. Second line. |"
    assert row in text
    assert "| `demo_mode` | str | `fast` | How. Choices: `fast`, `slow`. |" in text
    assert "| `demo_token` | str | *required* | A secret. |" in text
    assert gen.main([str(role), "--check"]) == 0


def test_check_reports_stale_without_writing(role, capsys):
    before = (role / "README.md").read_text()
    assert gen.main([str(role), "--check"]) == 1
    assert (role / "README.md").read_text() == before
    assert "stale" in capsys.readouterr().err


def test_regenerating_is_idempotent(role):
    gen.main([str(role)])
    first = (role / "README.md").read_text()
    assert gen.main([str(role)]) == 0
    assert (role / "README.md").read_text() == first


def test_missing_markers_is_a_usage_error_naming_the_file(role, capsys):
    (role / "README.md").write_text("# no markers\n")
    assert gen.main([str(role), "--check"]) == 2
    assert "README.md" in capsys.readouterr().err
