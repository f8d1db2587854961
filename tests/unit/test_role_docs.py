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


# ---------------------------------------------------------------- controls table (roles with a catalog)

CATALOG = """---
__hardening_catalog:
  - id: HARD-SSH-001
    title: Root cannot log in | over SSH
    severity: major
    kind: sshd_option
    params: {option: permitrootlogin, value: 'no'}
    applies_in_container: true
    disruptive: true
    tags: [ssh]
    references: [CIS Debian 12 5.1.20, Lynis SSH-7408]
    rationale: Why.
    remediation: How.
  - id: HARD-KERN-001
    title: ASLR is full
    severity: major
    kind: sysctl
    params: {key: kernel.randomize_va_space, value: '2'}
    applies_in_container: false
    disruptive: false
    tags: [kern]
    references: []
    rationale: Why.
    remediation: How.
"""

CONTROLS_README = README.replace("Footer.", "## Controls\n\n<!-- BEGIN CONTROLS -->\n<!-- END CONTROLS -->\n\nFooter.")


@pytest.fixture
def catalog_role(role):
    (role / "vars").mkdir()
    (role / "vars" / "catalog.yml").write_text(CATALOG)
    (role / "README.md").write_text(CONTROLS_README)
    return role


def test_controls_table_generated_from_the_catalog(catalog_role):
    assert gen.main([str(catalog_role)]) == 0
    text = (catalog_role / "README.md").read_text()
    assert "2 controls; 1 enabled by default" in text
    assert "| `sysctl` | 1 | 1 | 0 |" in text
    assert ("| `HARD-SSH-001` | Root cannot log in \\| over SSH | major | `sshd_option` | `permitrootlogin no` "
            "| yes | **yes** | CIS Debian 12 5.1.20; Lynis SSH-7408 |") in text
    assert ("| `HARD-KERN-001` | ASLR is full | major | `sysctl` | `kernel.randomize_va_space = 2` "
            "| no | no |  |") in text
    assert text.endswith("<!-- END CONTROLS -->\n\nFooter.\n")
    assert gen.main([str(catalog_role), "--check"]) == 0


def test_stale_controls_table_fails_the_check(catalog_role, capsys):
    gen.main([str(catalog_role)])
    catalog = catalog_role / "vars" / "catalog.yml"
    catalog.write_text(catalog.read_text().replace("ASLR is full", "ASLR is on"))
    assert gen.main([str(catalog_role), "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert not gen.process(catalog_role, check=True)


def test_catalog_without_controls_markers_is_an_error(catalog_role, capsys):
    (catalog_role / "README.md").write_text(README)
    assert gen.main([str(catalog_role), "--check"]) == 2
    assert "BEGIN CONTROLS" in capsys.readouterr().err


def test_hardening_readme_carries_the_controls_table():
    text = (ROOT / "roles" / "hardening" / "README.md").read_text()
    assert gen.CONTROLS_BEGIN in text and gen.CONTROLS_END in text
    assert "`HARD-SSH-001`" in text


def test_a_catalog_record_off_the_schema_stops_the_generator(catalog_role, capsys):
    catalog = catalog_role / "vars" / "catalog.yml"
    catalog.write_text(catalog.read_text().replace("key: kernel.randomize_va_space", "kee: kernel.randomize_va_space"))
    assert gen.main([str(catalog_role), "--check"]) == 2
    err = capsys.readouterr().err
    assert "HARD-KERN-001" in err and "params" in err and err.count("\n") == 1
