"""Shared fixtures: an isolated data directory, runs built from events, and a
fake runner that replays recorded ansible-runner events (no Ansible started)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from fleetcare import app
from fleetcare.results import Run

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own ~/.local/share so history and runs never leak."""
    home = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(home))
    # the reports follow the locale (fleetcare.i18n): a Chinese desktop must not turn the
    # tests' English expectations into Chinese ones; tests of --lang set what they need
    monkeypatch.delenv("LANGUAGE", raising=False)
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        if os.environ.get(name, "").lower().startswith("zh"):
            monkeypatch.setenv(name, "C.UTF-8")
    return home


def finding(fid: str = "HLTH-DISK-001", status: str = "fail", severity: str = "major",
            **evidence: Any) -> dict[str, Any]:
    return {"id": fid, "title": f"check {fid}", "severity": severity, "status": status,
            "evidence": evidence or {"used_pct": 97.1, "threshold_pct": 90},
            "remediation": "fix it", "references": []}


def ok_event(host: str, findings: list[dict], metrics: list[dict] | None = None,
             role: str = "health") -> dict[str, Any]:
    return {"event": "runner_on_ok", "event_data": {
        "host": host, "task": "Inspect host health",
        "res": {"changed": False, "fleetcare": {"contract": 1, "role": role, "findings": findings,
                                                "metrics": metrics or []}}}}


def stats_event(ok: list[str], dark: list[str] = (), failures: list[str] = ()) -> dict[str, Any]:
    return {"event": "playbook_on_stats", "event_data": {
        "ok": dict.fromkeys(ok, 1), "dark": dict.fromkeys(dark, 1), "failures": dict.fromkeys(failures, 1)}}


def unreachable_event(host: str, msg: str = "Failed to connect to the host via ssh") -> dict[str, Any]:
    return {"event": "runner_on_unreachable", "event_data": {"host": host, "res": {"msg": msg}}}


def build_run(events: list[dict], hosts: tuple[str, ...] = (), fail_on: str = "major") -> Run:
    run = Run(id="20261125-092000-abcd", command="inspect", fail_on=fail_on)
    for h in hosts:
        run.host(h)
    for e in events:
        run.feed(e)
    return run


def load_events(name: str) -> list[dict[str, Any]]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


class FakeRunner:
    """Stands in for fleetcare.execute.execute: replays events in order; can
    raise SIGTERM at the wrapper after N events, as a user or systemd would."""

    def __init__(self, events: list[dict], status: str = "successful", term_after: int | None = None):
        self.events, self.status, self.term_after = events, status, term_after
        self.jobs: list = []

    def __call__(self, job, run_dir, ident, on_event, cancelled) -> str:
        self.jobs.append(job)
        (run_dir / "runner" / "artifacts" / ident).mkdir(parents=True)
        for n, event in enumerate(self.events):
            if self.term_after is not None and n == self.term_after:
                signal.raise_signal(signal.SIGTERM)
            if cancelled():
                return "canceled"
            on_event(event)
        return self.status


@pytest.fixture
def fake_runner(monkeypatch):
    def install(events, **kw) -> FakeRunner:
        fake = FakeRunner(events, **kw)
        monkeypatch.setattr(app, "execute", fake)
        return fake
    return install
