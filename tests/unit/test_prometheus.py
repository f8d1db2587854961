"""The Prometheus textfile: names and units by the conventions (`promtool check metrics` on every
file), no evidence in labels, atomic replace with the last complete run carried over, the
--prometheus-dir option, and a real node_exporter serving the file over HTTP."""

from __future__ import annotations

import stat
import subprocess

import pytest

from fleetcare.reports import prometheus
from fleetcare.results import Metric

from . import promstack
from .test_cli import fleet_events, inventory, run_cli  # noqa: F401 - inventory is a fixture
from .test_reports import SCRIPT_HOST, sample_run


def promtool_check(path) -> subprocess.CompletedProcess:
    with open(path, "rb") as fh:
        return subprocess.run([promstack.program("promtool"), "check", "metrics"], stdin=fh,
                              capture_output=True, text=True, timeout=60)


def _run_with_health_metrics(hostile: bool = False):
    run = sample_run(hostile=hostile)
    host = run.hosts["db-1"]
    host.metrics += [Metric("db-1", "disk_avail_bytes", 1.5e9, "bytes", {"mount": "/var"}),
                     Metric("db-1", "cert_days_left", 12, "days", {"path": "/etc/ssl/a.pem"}),
                     Metric("db-1", "net_errors_total", 7, "", {"iface": "eth0"}),
                     Metric("db-1", "health_inspect_seconds", 1.25, "seconds"),
                     Metric("db-1", "journal_errors", 3, "", {"window_minutes": "60"})]
    return run


@pytest.mark.parametrize("hostile", [False, True])
def test_promtool_accepts_the_file(tmp_path, hostile):
    path = prometheus.write(_run_with_health_metrics(hostile), tmp_path)
    assert path.name == "fleetcare_inspect.prom"
    checked = promtool_check(path)
    assert checked.returncode == 0 and not checked.stdout.strip(), checked.stdout + checked.stderr


def test_promtool_would_catch_a_bad_name(tmp_path):
    # the check is real: a gauge named like a counter fails it
    bad = tmp_path / "bad.prom"
    bad.write_text("# HELP x_total x\n# TYPE x_total gauge\nx_total 1\n")
    assert promtool_check(bad).returncode != 0


def test_series_and_values(tmp_path):
    run = _run_with_health_metrics(hostile=True)
    text = prometheus.render(run)
    find = promstack.find
    assert find(text, "fleetcare_findings_failing", host="db-2", role="health", severity="critical") == [1]
    assert find(text, "fleetcare_findings_failing", host="db-2", role="health", severity="major") == [1]
    assert find(text, "fleetcare_findings_failing", host="web-1", severity="critical") == [0]
    assert find(text, "fleetcare_findings_failing", host=SCRIPT_HOST, severity="critical") == [1]
    assert find(text, "fleetcare_check_status", host="db-1", id="HLTH-DISK-001", status="fail",
                severity="critical") == [1]
    assert find(text, "fleetcare_check_status", host="web-1", id="HARD-SSH-003", status="not_applicable") == [1]
    assert find(text, "fleetcare_host_up", host="cache-1") == [0]
    assert find(text, "fleetcare_host_up", host="db-1") == [1]
    assert find(text, "fleetcare_hosts_unreachable", command="inspect") == [1]
    assert find(text, "fleetcare_last_run_exit_code") == [run.exit_code]
    assert find(text, "fleetcare_last_run_status", status="complete") == [1]
    assert find(text, "fleetcare_host_disk_used_ratio", host="db-1", mount="/var") == [pytest.approx(0.971)]
    assert find(text, "fleetcare_host_disk_avail_bytes", mount="/var") == [1.5e9]
    assert find(text, "fleetcare_host_cert_left_seconds", path="/etc/ssl/a.pem") == [12 * 86400]
    assert find(text, "fleetcare_host_health_inspect_seconds") == [1.25]
    assert "# TYPE fleetcare_host_net_errors_total counter" in text
    # evidence never becomes a label value
    labels = {v for _, ls, _ in promstack.samples(text) for v in ls.values()}
    assert not labels & {"PermitRootLogin", "/srv", "/home", "97.1", "systemctl: not found"}
    assert all(name.startswith("fleetcare_") for name, _, _ in promstack.samples(text))


def test_an_interrupted_run_keeps_the_last_complete_timestamp(tmp_path):
    done = sample_run()
    prometheus.write(done, tmp_path)
    first = promstack.find((tmp_path / "fleetcare_inspect.prom").read_text(),
                           "fleetcare_last_complete_run_timestamp_seconds")
    assert len(first) == 1
    later = sample_run()
    later.status, later.exit_code, later.finished = "interrupted", 4, "2099-11-26T09:20:00+00:00"
    text = prometheus.write(later, tmp_path).read_text()
    assert promstack.find(text, "fleetcare_last_complete_run_timestamp_seconds") == first
    assert promstack.find(text, "fleetcare_last_run_timestamp_seconds")[0] > first[0]
    assert promstack.find(text, "fleetcare_last_run_status", status="interrupted") == [1]
    assert not list(tmp_path.glob(".*.tmp"))


def test_prometheus_dir_option(capsys, fake_runner, inventory, tmp_path):  # noqa: F811
    fake_runner(fleet_events())
    code, out, _ = run_cli(capsys, "inspect", "-i", str(inventory), "--prometheus-dir", str(tmp_path))
    path = tmp_path / "fleetcare_inspect.prom"
    assert code == 1 and f"written: {path}" in out
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # node_exporter runs as another user
    assert promstack.find(path.read_text(), "fleetcare_findings_failing", host="db-1", severity="critical") == [1]
    assert promtool_check(path).returncode == 0
    path.chmod(0o640)  # an existing file keeps its mode
    fake_runner(fleet_events())
    run_cli(capsys, "inspect", "-i", str(inventory), "--prometheus-dir", str(tmp_path), "-q")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_prometheus_dir_missing_stops_before_any_host(capsys, fake_runner, inventory, tmp_path):  # noqa: F811
    fake = fake_runner(fleet_events())
    code, _, err = run_cli(capsys, "inspect", "-i", str(inventory), "--prometheus-dir", str(tmp_path / "nope"))
    assert code == 2 and "--prometheus-dir" in err and len(err.strip().splitlines()) == 1
    assert fake.jobs == [] and not (tmp_path / "nope").exists()


def test_node_exporter_serves_the_file(tmp_path):
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    run = _run_with_health_metrics()
    prometheus.write(run, textfiles)
    audit = sample_run()
    audit.command = "audit"
    prometheus.write(audit, textfiles)  # two commands' files side by side do not clash
    with promstack.node_exporter(textfiles, tmp_path / "node_exporter.log") as url:
        text = promstack.get(url)
    assert promstack.find(text, "node_textfile_scrape_error") == [0]
    for command in ("inspect", "audit"):
        assert promstack.find(text, "fleetcare_findings_failing", command=command, host="db-2",
                              severity="critical") == [1]
        assert len(promstack.find(text, "node_textfile_mtime_seconds",
                                  file=str(textfiles / f"fleetcare_{command}.prom"))) == 1
    assert promstack.find(text, "fleetcare_host_disk_avail_bytes", command="inspect", host="db-1") == [1.5e9]
