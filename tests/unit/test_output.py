"""What a run prints and what its reports list when hosts do not answer: an
interrupted run counts the hosts that did answer and names the unfinished ones;
thousands of unreachable hosts are one line per distinct failure; and nothing
from a host reaches the terminal as a raw control character."""

from __future__ import annotations

import json
import re

import pytest

from fleetcare import cli, reports
from fleetcare.history import History
from fleetcare.reports import html as html_report
from fleetcare.reports.view import host_problems, split_message
from fleetcare.results import Run
from fleetcare.term import safe

from .conftest import build_run, finding, ok_event, stats_event, unreachable_event

REFUSED = "Failed to connect to the host via ssh: ssh: connect to host {} port {}: Connection refused"
TIMED_OUT = "Failed to connect to the host via ssh: ssh: connect to host {} port 22: Connection timed out"
# raw terminal controls: C0 (but newline, which print adds), DEL, C1, bidi and invisible format characters
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]")


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "fleet.yml"
    path.write_text("all:\n  hosts:\n    web-1:\n    web-2:\n    db-1:\n")
    return path


def three_hosts():
    return [
        ok_event("web-1", [finding(), finding("HLTH-MEM-001", status="pass")]),
        ok_event("web-2", [finding(status="pass")]),
        ok_event("db-1", [finding(severity="critical")]),
        stats_event(["web-1", "web-2", "db-1"]),
    ]


# -- an interrupted run ---------------------------------------------------------------------------------
def test_interrupted_run_counts_the_hosts_that_answered(capsys, fake_runner, inventory):
    fake_runner(three_hosts(), term_after=2)  # web-1 and web-2 answered; no playbook_on_stats
    code, out, _ = run_cli(capsys, "inspect", "-i", str(inventory))
    assert code == 4
    last = out.strip().splitlines()[-1]
    assert last == "exit 4: interrupted; partial results kept (2 hosts done, 1 not finished: db-1)"
    assert " not finished db-1" in out.splitlines()
    assert "unreachable" not in out
    with History() as h:
        run = h.load("latest")
    md = reports.render(run, "md")
    assert "| not finished | 1 | - | db-1 |" in md
    assert "| 3 | 2 | 0 | 0 | 1 |" in md  # total, ok, unreachable, failed, not finished
    ctx = html_report.context(run)
    assert ctx["hosts"]["ok"] == 2 and ctx["hosts"]["pending"] == 1
    assert [(g.label, g.hosts) for g in ctx["problems"]] == [("not finished", ["db-1"])]
    assert "not finished" in reports.render(run, "html")


def test_a_host_that_answered_nothing_yet_is_not_done():
    run = build_run([ok_event("a-1", [finding()])], hosts=("a-1", "a-2", "a-3"))
    run.finish(interrupted=True)
    assert cli._exit_line(run).endswith("(1 hosts done, 2 not finished: a-2, a-3)")


# -- grouping hosts that failed the same way -----------------------------------------------------------
def unreachable_fleet(n: int = 2000) -> Run:
    events = [unreachable_event(f"down-{i:05d}", REFUSED.format(f"127.0.0.{1 + i % 254}", 2222))
              for i in range(n - 12)]
    events += [unreachable_event(f"slow-{i}", TIMED_OUT.format(f"10.0.0.{i}")) for i in range(10)]
    events += [unreachable_event("web-9", "ssh: Could not resolve hostname web-9: Name or service not known"),
               {"event": "runner_on_failed", "event_data": {
                   "host": "db-1", "task": "Inspect host health", "res": {"msg": "MODULE FAILURE"}}}]
    run = build_run(events)
    run.finish()
    return run


def test_two_thousand_unreachable_hosts_print_one_line_per_failure(capsys):
    cli._print_findings(unreachable_fleet())
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        " failed      db-1: Inspect host health: MODULE FAILURE",
        " unreachable 1,988 hosts: Failed to connect to the host via ssh: ssh: connect to host <address> "
        "port 2222: Connection refused (down-00000, down-00001, down-00002 and 1,985 more)",
        " unreachable 10 hosts: Failed to connect to the host via ssh: ssh: connect to host <address> "
        "port 22: Connection timed out (slow-0, slow-1, slow-2 and 7 more)",
        " unreachable web-9: ssh: Could not resolve hostname web-9: Name or service not known",
    ]


def test_only_the_same_failure_groups():
    refused = [REFUSED.format("127.0.0.1", 22), REFUSED.format("127.0.0.7", 2222)]
    assert split_message(refused[0], "a-1")[:2] == split_message(refused[1], "b-2")[:2]
    assert split_message(refused[0], "a-1")[:2] != split_message(TIMED_OUT.format("127.0.0.1"), "a-1")[:2]
    # the host's own name is set aside, a name that is a plain word is not (it may be a word of the text)
    assert split_message("Could not resolve hostname web-9: unknown", "web-9")[1] == ("host",)
    assert split_message("host db refused", "db") == (("host db refused",), (), ())
    # IPv6, address:port, the control socket named after the host; a time of day stays text
    pieces, kinds, values = split_message(
        "connect to [fe80::1]:2222 via /root/.ansible/cp/5d1c8cfb2a at 12:34:56 from ::1", "x")
    assert kinds == ("address", "port", "socket", "address")
    assert values == ("[fe80::1]", "2222", "5d1c8cfb2a", "::1")
    assert "12:34:56" in pieces[-2]
    # numbers that are not a port or an address keep two failures apart
    a = build_run([unreachable_event("a-1", "exit code 255"), unreachable_event("b-2", "exit code 1")])
    assert len(host_problems(a)) == 2


def test_a_part_every_host_shares_is_shown_as_it_is():
    run = build_run([unreachable_event(f"h-{i}", REFUSED.format("127.0.0.1", 2222)) for i in range(3)])
    [group] = host_problems(run)
    assert group.message == REFUSED.format("127.0.0.1", 2222)
    assert group.hosts == ["h-0", "h-1", "h-2"]


def test_markdown_lists_one_row_per_failure():
    text = reports.render(unreachable_fleet(), "md")
    section = text.split("## Hosts unreachable, failed or not finished")[1].split("\n## ")[0]
    rows = [ln for ln in section.splitlines() if ln.startswith("| ") and "---" not in ln][1:]
    assert len(rows) == 4
    assert rows[1].startswith("| unreachable | 1988 | Failed to connect")
    assert "down-00009 and 1,978 more |" in rows[1]
    assert "down-01000" not in text


def test_html_lists_one_row_per_failure_and_folds_the_names():
    run = unreachable_fleet()
    text = reports.render(run, "html")
    problems = text.split('<table class="hosts problems">')[1].split("</table>")[0]
    assert problems.count("<tr>") == 1 + 4  # the header and one row per distinct failure
    assert problems.count("Connection refused") == 1
    assert "<summary>and 1,968 more</summary>" in problems and "down-01987" in problems
    # no host is listed twice: the per-host table holds the hosts that answered
    assert text.count("down-01987") == 1
    assert "Hosts that answered (0 of 2,000)" in text


# -- nothing raw reaches the terminal ------------------------------------------------------------------
def test_safe_escapes_what_steers_a_terminal():
    assert safe("db-1\x1b]0;owned\x07\r") == "db-1\\x1b]0;owned\\x07\\x0d"
    assert safe("\u202eevil\u2066") == "\\u202eevil\\u2066"
    assert safe("\x9b31m\x7f\ud800\U000e0041") == "\\x9b31m\\x7f\\ud800\\U000e0041"
    assert safe("tab\tnew\nline") == "tab\\x09new\\x0aline"
    assert safe("数据库-1 café ok") == "数据库-1 café ok"  # printable text of any script stays
    assert safe(None) == "" and safe(42) == "42"


def test_host_values_reach_the_terminal_escaped(capsys, fake_runner, inventory):
    host = "web-1\x1b[2J\u202e"
    events = [
        {**ok_event(host, [finding(mount="/\x1b]52;c;cm0gLXJmIC8=\x07", used_pct=97.1)])},
        unreachable_event("db-1\r\x08", "ssh: connect to host 127.0.0.1 port 22: \x1b[31mrefused\x9b"),
        {"event": "runner_on_ok", "event_data": {"host": "web-2", "task": "Set \x1b[8m", "res": {
            "changed": True}}},
        stats_event([host, "web-2"], dark=["db-1\r\x08"]),
    ]
    fake_runner(events)
    code, out, err = run_cli(capsys, "inspect", "-i", str(inventory))
    assert code == 3
    assert not RAW.search(out + err), repr(out + err)
    assert "web-1\\x1b[2J\\u202e" in out and "db-1\\x0d\\x08" in out and "\\x1b[31mrefused\\x9b" in out
    assert "mount=/\\x1b]52;c;cm0gLXJmIC8=\\x07" in out and "Set \\x1b[8m" in out
    for fmt in ("md", "json", "html"):
        code, out, _ = run_cli(capsys, "report", "latest", "--format", fmt)
        assert code == 0 and not RAW.search(out.replace("\n", "")), (fmt, out)
    doc = json.loads(out if fmt == "json" else run_cli(capsys, "report", "latest", "--format", "json")[1])
    assert host in {h["name"] for h in doc["hosts"]}  # the JSON still holds the exact name


def test_history_rows_are_printed_safely(capsys, fake_runner, inventory):
    fake_runner(three_hosts())
    run_cli(capsys, "inspect", "-i", str(inventory), "-q")
    with History() as h:
        h._db.execute("UPDATE runs SET command = ?", ("inspect\x1b[2J",))
        h._db.commit()
    code, out, _ = run_cli(capsys, "history")
    assert code == 0 and "inspect\\x1b[2J" in out and not RAW.search(out.replace("\n", ""))
