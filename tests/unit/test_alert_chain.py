"""The whole alerting chain once, with the real Debian programs, all on 127.0.0.1: a replayed
`fleetcare inspect` whose disk check fails critical on db-1 writes its textfile -> node_exporter
-> Prometheus (1 s scrape and evaluation) evaluating the shipped rules -> Alertmanager (1 s
group_wait) -> a webhook receiver run here, which must receive the alert naming the host and the
finding. Every program is started here and stopped at the end; the wait is bounded."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from . import promstack
from .test_cli import fleet_events, inventory, run_cli  # noqa: F401 - inventory is a fixture
from .test_monitoring import RULES

WITHIN = 60.0


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # quiet
        pass


@pytest.mark.slow
def test_critical_finding_reaches_the_webhook(capsys, fake_runner, inventory, tmp_path):  # noqa: F811
    t0 = time.monotonic()
    textfiles = tmp_path / "textfile"
    textfiles.mkdir()
    fake_runner(fleet_events())  # db-1: HLTH-DISK-001 fails, critical
    code, _, _ = run_cli(capsys, "inspect", "-i", str(inventory), "--prometheus-dir", str(textfiles), "-q")
    assert code == 1

    received: list[dict] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    am_port, prom_port = promstack.free_port(), promstack.free_port()
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump({
        "route": {"receiver": "test", "group_by": ["alertname", "host", "id"], "group_wait": "1s",
                  "group_interval": "1s", "repeat_interval": "1h"},
        "receivers": [{"name": "test", "webhook_configs": [
            {"url": f"http://127.0.0.1:{server.server_address[1]}/alert", "send_resolved": False}]}]}))
    try:
        with promstack.node_exporter(textfiles, tmp_path / "node_exporter.log") as metrics_url, \
                promstack.started([promstack.program("prometheus-alertmanager"),
                                   f"--config.file={tmp_path / 'alertmanager.yml'}",
                                   f"--storage.path={tmp_path / 'am'}",
                                   f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                                  f"http://127.0.0.1:{am_port}/-/ready", tmp_path / "alertmanager.log"):
            target = metrics_url.removeprefix("http://").removesuffix("/metrics")
            (tmp_path / "prometheus.yml").write_text(yaml.safe_dump({
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [{"job_name": "node", "static_configs": [{"targets": [target]}]}],
                "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]}}))
            with promstack.started([promstack.program("prometheus"), f"--config.file={tmp_path / 'prometheus.yml'}",
                                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                    f"--web.listen-address=127.0.0.1:{prom_port}"],
                                   f"http://127.0.0.1:{prom_port}/-/ready", tmp_path / "prometheus.log"):
                deadline = time.monotonic() + WITHIN
                alert = None
                while alert is None and time.monotonic() < deadline:
                    alert = next((a for msg in list(received) for a in msg["alerts"]
                                  if a["labels"].get("alertname") == "FleetcareCriticalFindingOpen"), None)
                    time.sleep(0.2)
    finally:
        server.shutdown()
        server.server_close()
    assert alert is not None, f"no alert within {WITHIN:.0f} s: {(tmp_path / 'prometheus.log').read_text()[-1500:]}"
    assert alert["status"] == "firing"
    assert alert["labels"]["host"] == "db-1" and alert["labels"]["id"] == "HLTH-DISK-001"
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == "HLTH-DISK-001 fails on db-1"
    # only the critical failure: web-1's major failure of the same check raises nothing
    assert {a["labels"]["host"] for msg in received for a in msg["alerts"]
            if a["labels"]["alertname"] == "FleetcareCriticalFindingOpen"} == {"db-1"}
    print(f"alert chain: {time.monotonic() - t0:.1f} s")
