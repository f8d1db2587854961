"""JUnit XML: one suite per host, one case per finding, read back with junitparser and checked
against the Jenkins/Ant JUnit schema (tests/schemas/junit.xsd); --junit on a run and
`report --format junit`; written whole, 0600 when new, an existing file keeps its mode."""

from __future__ import annotations

import stat
from pathlib import Path

import junitparser
import pytest
import xmlschema

from fleetcare import cli, reports
from fleetcare.history import History

from .test_cli import fleet_events, inventory, run_cli  # noqa: F401 - inventory is a fixture
from .test_reports import IMG_EVIDENCE, SCRIPT_HOST, sample_run

XSD = Path(__file__).resolve().parents[1] / "schemas" / "junit.xsd"


@pytest.fixture(scope="module")
def schema():
    return xmlschema.XMLSchema(str(XSD))


def _parse(tmp_path: Path, text: str) -> junitparser.JUnitXml:
    path = tmp_path / "junit.xml"
    path.write_text(text, encoding="utf-8")
    return junitparser.JUnitXml.fromfile(str(path))


def _cases(xml) -> dict[tuple[str, str], junitparser.TestCase]:
    return {(suite.name, case.name.split()[0]): case for suite in xml for case in suite}


@pytest.mark.parametrize("hostile", [False, True])
def test_one_suite_per_host_one_case_per_finding(tmp_path, schema, hostile):
    run = sample_run(hostile=hostile)
    text = reports.render(run, "junit")
    schema.validate(str(_write(tmp_path, text)))
    xml = _parse(tmp_path, text)
    suites = {s.name: s for s in xml}
    assert list(suites) == list(run.hosts)
    cases = _cases(xml)
    # every finding is one case; the unreachable host is one case in error
    assert len(cases) == sum(len(h.findings) for h in run.hosts.values()) + 1
    last = SCRIPT_HOST if hostile else "web-2"

    [failure] = cases[("db-2", "HARD-SSH-003")].result
    assert isinstance(failure, junitparser.Failure)
    assert "actual=" in failure.text and "prohibit-password" in failure.text
    assert "remediation: Fix HARD-SSH-003." in failure.text
    [failure] = cases[(last, "HLTH-DISK-001")].result
    assert failure.type == "critical"
    assert (IMG_EVIDENCE if hostile else "/home") in failure.text  # escaped, read back as text

    [error] = cases[("web-1", "HLTH-UNIT-001")].result
    assert isinstance(error, junitparser.Error) and error.message == "systemctl: not found"
    [skipped] = cases[("web-1", "HARD-SSH-003")].result
    assert isinstance(skipped, junitparser.Skipped) and skipped.message == "not applicable: no sshd"
    [skipped] = cases[(last, "HARD-SSH-003")].result
    assert isinstance(skipped, junitparser.Skipped) and skipped.message.startswith("waived")
    assert cases[("db-1", "HARD-SSH-003")].is_passed
    [down] = cases[("cache-1", "host")].result
    assert isinstance(down, junitparser.Error) and down.type == "unreachable"

    assert (suites["db-2"].tests, suites["db-2"].failures, suites["db-2"].errors) == (2, 2, 0)
    assert (suites["web-1"].errors, suites["web-1"].skipped) == (1, 1)
    assert (xml.tests, xml.failures, xml.errors, xml.skipped) == (10, 4, 2, 2)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "check.xml"
    path.write_text(text, encoding="utf-8")
    return path


def test_control_characters_in_evidence_stay_valid_xml(tmp_path, schema):
    run = sample_run()
    # evidence values arrive JSON-quoted; remediation and titles are text as they are
    run.hosts["db-2"].findings[1].remediation = "bell\x07 nul\x00 esc\x1b ]]> &amp;"
    text = reports.render(run, "junit")
    schema.validate(str(_write(tmp_path, text)))
    [failure] = _cases(_parse(tmp_path, text))[("db-2", "HARD-SSH-003")].result
    assert "bell\ufffd nul\ufffd esc\ufffd ]]> &amp;" in failure.text


def test_the_schema_refuses_what_it_should(tmp_path, schema):
    # the schema is a real check: a case with two outcomes, or without a classname, is refused
    bad = ('<testsuites><testsuite name="h" tests="1" failures="1" errors="0"><testcase name="x">'
           "<failure/></testcase></testsuite></testsuites>")
    assert not schema.is_valid(str(_write(tmp_path, bad)))
    bad = ('<testsuites><testsuite name="h" tests="1" failures="1" errors="1"><testcase name="x" '
           'classname="c"><failure/><error/></testcase></testsuite></testsuites>')
    assert not schema.is_valid(str(_write(tmp_path, bad)))


def test_junit_option_on_a_run_and_report_format_junit(capsys, fake_runner, inventory, tmp_path, schema):  # noqa: F811
    fake_runner(fleet_events())
    target = tmp_path / "ci" / "fleet.xml"
    target.parent.mkdir()
    code, out, _ = run_cli(capsys, "inspect", "-i", str(inventory), "--junit", str(target))
    assert code == 1 and f"written: {target}" in out
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    schema.validate(str(target))
    cases = _cases(junitparser.JUnitXml.fromfile(str(target)))
    assert isinstance(cases[("db-1", "HLTH-DISK-001")].result[0], junitparser.Failure)
    assert not list(target.parent.glob(".*.tmp"))

    with History() as h:
        run_id = h.resolve("latest")
    code, out, _ = run_cli(capsys, "report", run_id, "--format", "junit")
    assert code == 0 and out == target.read_text(encoding="utf-8")

    # a file that exists keeps its mode (fleetcare did not create it)
    target.chmod(0o644)
    fake_runner(fleet_events())
    run_cli(capsys, "inspect", "-i", str(inventory), "--junit", str(target), "-q")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


@pytest.mark.parametrize("where, needle", [("missing/fleet.xml", "is not a directory"), (".", "is a directory")])
def test_junit_to_a_bad_place_stops_before_any_host(capsys, fake_runner, inventory, tmp_path, where, needle):  # noqa: F811
    fake = fake_runner(fleet_events())
    code, _, err = run_cli(capsys, "inspect", "-i", str(inventory), "--junit", str(tmp_path / where))
    assert code == 2 and "--junit" in err and needle in err and len(err.strip().splitlines()) == 1
    assert fake.jobs == []


def test_every_run_command_takes_the_export_options():
    parser = cli.build_parser()
    for command in ("inspect", "audit", "harden"):
        args = parser.parse_args([command, "--junit", "x.xml", "--prometheus-dir", "/tmp"])
        assert args.junit == Path("x.xml") and args.prometheus_dir == Path("/tmp")
