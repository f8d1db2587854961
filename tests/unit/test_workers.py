"""--workers specs, checked before any host is contacted; shards; which event files a run keeps."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fleetcare import cli, workers
from fleetcare.errors import InputError
from fleetcare.execute import keep_event_file

ROOT = Path(__file__).resolve().parents[2]


def test_specs_name_each_worker_in_order(tmp_path):
    inv = tmp_path / "workers.yml"
    inv.write_text("all:\n  hosts:\n    n1:\n      ansible_host: 10.0.0.5\n      ansible_port: 2222\n"
                   "      ansible_user: ops\n      ansible_ssh_private_key_file: /k/id\n")
    found = workers.parse(["ssh:a,root@b:2200", f"inventory:{inv}", f"cmd:{sys.executable} -c pass"])
    assert [w.name for w in found] == ["w1", "w2", "w3", "w4"]
    assert found[1].argv[-2] == "root@b" and "2200" in found[1].argv
    assert found[2].argv[-2] == "ops@10.0.0.5" and "/k/id" in found[2].argv and "2222" in found[2].argv
    assert found[3].argv == (sys.executable, "-c", "pass")
    assert found[0].argv[-1].endswith("exec ansible-runner worker")


@pytest.mark.parametrize(("spec", "says"), [
    ("bogus", "expected ssh:HOST"),
    ("ssh:", "is not [USER@]HOST[:PORT]"),
    ("ssh:host:99999", "is not a port"),
    ("ssh:-oProxyCommand=x", "is not [USER@]HOST[:PORT]"),
    ("cmd:", "cmd: needs a command"),
    ("cmd:no-such-command-here worker", "command not found"),
    ("cmd:'unbalanced", "No closing quotation"),
    ("inventory:/no/such/file.yml", "no such file"),
])
def test_bad_specs_fail_in_one_line(spec, says):
    with pytest.raises(InputError, match=None) as info:
        workers.parse([spec])
    assert says in str(info.value) and "\n" not in str(info.value)


def test_cli_refuses_a_bad_worker_before_any_host(tmp_path, capsys):
    inv = tmp_path / "hosts.yml"
    inv.write_text("all:\n  hosts:\n    unreachable.invalid: {}\n")
    code = cli.main(["inspect", "-i", str(inv), "--output-dir", str(tmp_path / "runs"), "--db",
                     str(tmp_path / "h.db"), "--workers", "nope"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "--workers 'nope'" in err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


def test_workers_need_an_inventory(tmp_path, capsys):
    code = cli.main(["inspect", "--db", str(tmp_path / "h.db"), "--workers", f"cmd:{sys.executable}"])
    assert code == 2
    assert "--workers: needs an inventory" in capsys.readouterr().err


def test_shards_are_contiguous_and_even():
    hosts = [f"h{i}" for i in range(7)]
    assert workers.shards(hosts, 3) == [("h0", "h1", "h2"), ("h3", "h4"), ("h5", "h6")]
    assert workers.shards(hosts[:1], 2) == [("h0",), ()]
    assert sum(workers.shards(hosts, 4), ()) == tuple(hosts)


def test_big_runs_keep_event_files_only_for_failures():
    ok = {"event": "runner_on_ok", "event_data": {"res": {"changed": False}}}
    failed = {"event": "runner_on_failed", "event_data": {"res": {"failed": True}}}
    start = {"event": "runner_on_start", "event_data": {}}
    assert keep_event_file(ok, True) and keep_event_file(start, True)
    assert not keep_event_file(ok, False) and not keep_event_file(start, False)
    assert keep_event_file(failed, False)
    assert keep_event_file({"event": "runner_on_unreachable", "event_data": {}}, False)


def test_help_lists_workers():
    out = subprocess.run([sys.executable, str(ROOT / "runner.py"), "inspect", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--workers SPEC" in out
