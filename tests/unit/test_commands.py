"""The command registry (fleetcare/commands.py): the CLI, jobs, report titles, the exit code
text and the README's tables all come from it, so one entry is one command."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fleetcare import cli, commands, jobs, results
from fleetcare.commands import Command, Option
from fleetcare.history import History
from fleetcare.reports import html

from .conftest import build_run, finding, ok_event, stats_event

ROOT = Path(__file__).resolve().parents[2]


_spec = importlib.util.spec_from_file_location("gen_readme", ROOT / "docs" / "gen_readme.py")
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


def test_readme_tables_are_fresh():
    assert gen.process(ROOT / "README.md", check=True), "README.md is stale: run python docs/gen_readme.py"


def test_check_reports_a_stale_table_without_writing(tmp_path, capsys):
    readme = tmp_path / "README.md"
    text = (ROOT / "README.md").read_text()
    readme.write_text(text.replace("| `fleetcare history` |", "| `fleetcare histories` |"))
    before = readme.read_text()
    assert gen.main([str(readme), "--check"]) == 1
    assert readme.read_text() == before
    assert "stale" in capsys.readouterr().err
    assert gen.main([str(readme)]) == 0
    assert readme.read_text() == text


def test_missing_markers_is_an_error_naming_the_file(tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    assert gen.main([str(readme), "--check"]) == 2
    assert "README.md" in capsys.readouterr().err


@pytest.fixture
def probe(monkeypatch):
    """A new command in one registry entry, as a new role would add it."""
    entry = Command("probe", "probe the hosts for the test", "Probe every host.",
                    playbook="playbooks/inspect.yml", roles=("health",), title="Probe report",
                    example="health_disk_warn_pct=85",
                    options=(Option("--depth", "how deep", metavar="N", var="health_units_ignore"),))
    monkeypatch.setitem(commands.COMMANDS, "probe", entry)
    return entry


def test_one_registry_entry_is_a_whole_command(probe, capsys, fake_runner, tmp_path):
    fake = fake_runner([ok_event("localhost", [finding()]), stats_event(["localhost"])])
    assert cli.main(["probe", "--depth", "cron.service", "--depth", "ssh.service"]) == 1
    out = capsys.readouterr().out
    job = fake.jobs[0]
    assert job.playbook == jobs.ROOT / "playbooks" / "inspect.yml" and job.roles == ("health",)
    assert job.extravars == {"health_units_ignore": ["cron.service", "ssh.service"]}
    assert out.splitlines()[0].startswith("probe · this machine")
    with History() as h:
        run = h.load("latest")
    assert run.command == "probe"
    assert "<title>Probe report" in html.render(run)
    assert "probe the hosts for the test" in cli.build_parser().format_help()
    assert "| `fleetcare probe` | probe the hosts for the test | `playbooks/inspect.yml` (role `health`) " \
           "| `--depth N` sets `health_units_ignore` |" in gen.render_commands()
    assert not gen.process(ROOT / "README.md", check=True)  # the README now lags behind the registry


def test_option_values_are_checked_before_any_host(probe, monkeypatch, capsys, fake_runner):
    from fleetcare.errors import InputError

    def no_deep(values):
        if "9" in values:
            raise InputError("too deep: 9")

    option = Option("--depth", "how deep", metavar="N", var="health_units_ignore", check=no_deep)
    monkeypatch.setitem(commands.COMMANDS, "probe", Command(**{**probe.__dict__, "options": (option,)}))
    fake = fake_runner([])
    assert cli.main(["probe", "--depth", "9"]) == 2
    assert capsys.readouterr().err.strip() == "fleetcare: --depth: too deep: 9"
    assert fake.jobs == []


def test_a_command_takes_only_its_own_options():
    with pytest.raises(TypeError, match="inspect has no option check"):
        jobs.build("inspect", check=True)
    assert jobs.build("harden", check=True).check
    assert jobs.build("audit", controls=("HARD-SSH-*",)).extravars == {"hardening_controls_only": ["HARD-SSH-*"]}


def test_an_option_is_declared_one_way():
    with pytest.raises(ValueError):
        Option("--both", "x", metavar="X", var="a_b", job="check")
    with pytest.raises(ValueError):  # a switch has no value to check
        Option("--switch-with-var", "x", var="a_b", check=lambda values: None)
    with pytest.raises(ValueError):
        Option("--neither", "x")
    # a switch may set a boolean role variable: drift's --desired sets drift_desired
    assert jobs.build("drift", desired=True).extravars == {"drift_desired": True}
    assert "drift_desired" not in jobs.build("drift").extravars


def test_playbooks_and_roles_of_every_run_command_exist():
    for command in commands.run_commands():
        assert (jobs.ROOT / command.playbook).is_file(), command.name
        for role in command.roles:
            assert (jobs.ROOT / "roles" / role / "meta" / "argument_specs.yml").is_file(), role
        assert command.title and command.help


def test_a_playbook_names_its_command():
    assert commands.by_playbook("/srv/x/playbooks/audit.yml").name == "audit"
    assert commands.by_playbook("fleetcare.ops.inspect").name == "inspect"
    assert commands.by_playbook("site.yml") is None
    assert commands.by_playbook("") is None


# -- exit codes: one table ------------------------------------------------------------------
def test_every_exit_code_is_in_the_one_table():
    codes = {getattr(results, n) for n in dir(results) if n.startswith("EXIT_")}
    assert {e.code for e in commands.EXIT_CODES} == codes
    for e in commands.EXIT_CODES:
        assert f"  {e.code}  {e.long}" in cli.EXIT_HELP
        assert f"| {e.code} | " in gen.render_exit_codes()


def test_exit_line_and_html_report_use_the_table(monkeypatch):
    run = build_run([ok_event("a", [finding()]), stats_event(["a"])], fail_on="minor")
    run.finish()
    assert run.exit_code == 1
    assert cli._exit_line(run).startswith("exit 1: findings at or above minor (")
    monkeypatch.setattr(commands, "EXIT_CODES", (commands.ExitCode(1, "bad news at {fail_on}", "bad news"),))
    assert cli._exit_line(run).startswith("exit 1: bad news at minor (")
    assert "(bad news at minor)" in html.render(run)


def test_titles_come_from_the_registry():
    assert commands.title("inspect") == "Inspection report"
    assert commands.title("audit") == "Hardening audit report"
    assert commands.title("import") == "Import report"  # a run whose playbook was not a command's


# -- the lab stays out of the product's import path ------------------------------------------
def test_commands_that_do_not_use_the_lab_never_import_it():
    code = ("import sys\nfrom fleetcare import cli\n"
            "for argv in (['inspect', '--help'], ['--help'], ['explain', 'HARD-SSH-001']):\n"
            "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in sys.modules if m.startswith('fleetcare')))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": ""})
    modules = proc.stdout.strip().splitlines()[-1]
    assert "fleetcare.cli" in modules and "fleetcare_lab" not in modules
