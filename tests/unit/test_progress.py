"""The progress line on a real pseudo-terminal: counts from the run's tallies."""

from __future__ import annotations

import os
import pty
import select

from fleetcare.app import Progress

from .conftest import build_run, finding, ok_event, unreachable_event


def drawn(master: int) -> str:
    """Everything written to the terminal so far (a pty hands it over in pieces)."""
    out = b""
    while select.select([master], [], [], 0.2)[0]:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the terminal side is closed and everything was read
            break
        if not chunk:
            break
        out += chunk
    return out.decode()


def test_progress_shows_the_final_counts_on_a_terminal():
    master, slave = pty.openpty()
    with os.fdopen(slave, "w", encoding="utf-8") as tty:
        progress = Progress(tty, 3)
        run = build_run([], hosts=("a", "b", "c"))
        for event in (ok_event("a", [finding(), finding("HLTH-CPU-001")]), unreachable_event("b")):
            run.feed(event)
            progress.update(run)
        progress.close()
        out = drawn(master)
    os.close(master)
    last = out.replace("\r\n", "\n").split("\r")[-1].strip()
    assert last.endswith("2/3 hosts · 1 unreachable/failed · 2 failing"), out


def test_progress_is_silent_off_a_terminal(tmp_path):
    with open(tmp_path / "log", "w", encoding="utf-8") as fh:
        progress = Progress(fh, 1)
        progress.update(build_run([ok_event("a", [finding()])]))
        progress.close()
    assert (tmp_path / "log").read_text() == ""


def test_progress_never_walks_hosts_or_findings(monkeypatch):
    """O(1) per event: the line comes from the run's tallies, not from a rescan."""
    master, slave = pty.openpty()
    run = build_run([ok_event("a", [finding()])], hosts=("a", "b"))

    def rescan(*args):
        raise AssertionError("progress rescanned the run")

    monkeypatch.setattr(run, "findings", rescan)
    monkeypatch.setattr(run, "hosts", type("NoScan", (dict,), {"values": rescan})(run.hosts))
    with os.fdopen(slave, "w", encoding="utf-8") as tty:
        progress = Progress(tty, 2)
        progress.update(run)
        progress.close()
    assert "1/2 hosts · 0 unreachable/failed · 1 failing" in drawn(master)
    os.close(master)
