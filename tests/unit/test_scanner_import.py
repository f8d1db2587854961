"""`fleetcare import FILE` of a scanner's result (fleetcare/scanners.py): a Lynis report and an
OpenSCAP XCCDF result / ARF report become findings of the contract in history, like any run.

The fixtures are real scanner output, trimmed: ``lynis audit system --quick`` (Lynis 3.0.2) in a
Debian 11 lab container, and ``oscap xccdf eval --profile ...anssi_np_nt28_average`` of Debian's
ssg-debian11 content over the same container's file system (``--results`` and
``--results-arf``, oscap exit 2: rules failed). See fixtures/scanners/README.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetcare import cli, scanners
from fleetcare.history import History

FIXTURES = Path(__file__).parent / "fixtures" / "scanners"


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def payload(path: Path, host: str | None = None) -> tuple[str, dict]:
    name, events = scanners.sniff(path, host)
    return name, events[0]["event_data"]["res"]["fleetcare"]


def by_id(findings: list[dict]) -> dict[str, dict]:
    return {f["id"]: f for f in findings}


def test_lynis_report_repeated_lines_are_one_finding_per_test():
    host, pl = payload(FIXTURES / "lynis-report.dat")
    assert host == "debian11-1"
    found = by_id(pl["findings"])
    ssh = found["LYNIS-SSH-7408"]  # nine suggestion[] lines of one test
    assert ssh["status"] == "fail" and ssh["severity"] == "minor"
    assert ssh["title"] == "Consider hardening SSH configuration"
    assert len(ssh["evidence"]["suggestions"]) == 10
    assert "ClientAliveCountMax (set 3 to 2)" in " ".join(ssh["evidence"]["suggestions"])
    warn = found["LYNIS-PKGS-7388"]  # a warning[] line: major
    assert warn["status"] == "fail" and warn["severity"] == "major"
    assert found["LYNIS-FILE-7524"]["remediation"] == "Use chmod to change file permissions"
    assert found["LYNIS-HRDN-7230"]["remediation"].startswith("Install a tool like rkhunter")
    # executed without a line: pass; skipped: not applicable, with the reason
    assert found["LYNIS-USB-1000"]["status"] == "pass"
    assert found["LYNIS-MALW-3288"]["status"] == "not_applicable" and found["LYNIS-MALW-3288"]["evidence"]["reason"]
    assert found["LYNIS-LYNIS"]["status"] == "fail"  # Lynis' own test id
    assert pl["metrics"] == [{"name": "lynis_hardening_index", "value": 57, "unit": "", "labels": {}}]
    assert pl["expected"] == len(pl["findings"]) == len(found)


@pytest.mark.parametrize("name", ["xccdf-results.xml", "arf.xml"])
def test_openscap_results_map_status_severity_and_fix(name):
    host, pl = payload(FIXTURES / name)
    assert host == "vm"  # the offline scan names the machine that scanned
    found = by_id(pl["findings"])
    assert "SSG-partition_for_tmp" in found
    tmp = found["SSG-partition_for_tmp"]
    assert tmp["status"] == "fail" and tmp["severity"] == "minor"  # low
    assert tmp["title"] == "Ensure /tmp Located On Separate Partition"
    assert tmp["evidence"]["profile"].endswith("anssi_np_nt28_average")
    assert any(r.startswith("CIS Controls ") for r in tmp["references"])
    sudo = found["SSG-sudo_remove_no_authenticate"]
    assert sudo["status"] == "pass" and sudo["severity"] == "major"  # medium
    assert "sudoers" in sudo["remediation"]  # the rule's sh fix
    # the notselected rule (outside the profile) is left out
    assert all(f["evidence"]["result"] in ("pass", "fail") for f in pl["findings"]), found
    assert len(found) == 5
    (score,) = pl["metrics"]
    assert score["name"] == "openscap_score" and round(score["value"], 1) == 40.3


def test_import_stores_scanner_findings_in_history(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "import", str(FIXTURES / "lynis-report.dat"), "--output-dir", str(tmp_path),
                           "--fail-on", "critical")
    assert code == 0, out
    assert out.splitlines()[0].startswith("import · imported ")
    with History() as h:
        run = h.load("latest")
    assert run.command == "import" and list(run.hosts) == ["debian11-1"]
    ids = {f.id for f in run.findings()}
    assert {"LYNIS-SSH-7408", "LYNIS-PKGS-7388", "LYNIS-USB-1000"} <= ids
    assert {f.role for f in run.findings()} == {"lynis"}
    report = json.loads(next(tmp_path.glob("*/report.json")).read_text())
    assert any(f["id"] == "LYNIS-PKGS-7388" and f["status"] == "fail" for f in report["findings"])

    # a failing rule at --fail-on decides the exit, as a module's finding would
    code, out, _ = run_cli(capsys, "import", str(FIXTURES / "arf.xml"), "--host", "debian11-1",
                           "--output-dir", str(tmp_path), "-q", "--fail-on", "minor")
    assert code == 1, out
    run_id = Path(out.split("reports: ")[1].split("report.")[0]).name  # two imports may share a second
    with History() as h:
        run = h.load(run_id)
    assert list(run.hosts) == ["debian11-1"]  # --host over the scanning machine's name
    assert {f.role for f in run.findings()} == {"openscap"}


@pytest.mark.parametrize("text, message", [
    ("# Lynis Report\n", "without hostname="),
    ("# Lynis Report\nhostname=web-1\n", "without hardening_index= or tests_executed="),
    ('<?xml version="1.0"?><Benchmark xmlns="http://checklists.nist.gov/xccdf/1.2"/>', "no XCCDF TestResult"),
    ('<?xml version="1.0"?><Benchmark xmlns="http://checklists.nist.gov/xccdf/1.2"><TestResult', "not a readable"),
])
def test_a_bad_scanner_file_is_one_line_and_exit_2(capsys, tmp_path, text, message):
    bad = tmp_path / "scan.out"
    bad.write_text(text)
    code, _, err = run_cli(capsys, "import", str(bad), "--output-dir", str(tmp_path / "runs"))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and str(bad) in err and message in err, err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()


def test_host_option_is_for_scanner_results_only(capsys, tmp_path):
    doc = tmp_path / "run.json"
    doc.write_text(json.dumps({"plays": [], "stats": {}}))
    code, _, err = run_cli(capsys, "import", str(doc), "--host", "web-1")
    assert code == 2 and "--host applies to a scanner's result only" in err
