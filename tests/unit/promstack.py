"""The Debian Prometheus programs as the tests start them: each on a free port of 127.0.0.1,
waited for over HTTP, and stopped (by its own pid) when the test ends. setup.sh --test installs
them (prometheus, prometheus-node-exporter, prometheus-alertmanager)."""

from __future__ import annotations

import contextlib
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def program(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: run ./setup.sh --test"
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # the tests use 127.0.0.1 only
        return resp.read().decode("utf-8")


@contextlib.contextmanager
def started(argv: list[str], ready_url: str, log: Path, within: float = 20.0) -> Iterator[subprocess.Popen]:
    """Run ``argv`` until the block ends; ``ready_url`` answering means it is up."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + within
        while True:
            assert proc.poll() is None, f"{argv[0]} exited: {log.read_text(errors='replace')[-2000:]}"
            try:
                get(ready_url, timeout=1.0)
                break
            except OSError:
                assert time.monotonic() < deadline, f"{argv[0]} not ready: {log.read_text(errors='replace')[-2000:]}"
                time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def node_exporter(textfile_dir: Path, log: Path) -> contextlib.AbstractContextManager[str]:
    """node_exporter serving only its textfile collector; yields the /metrics URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"

    @contextlib.contextmanager
    def run() -> Iterator[str]:
        with started([program("prometheus-node-exporter"), f"--web.listen-address=127.0.0.1:{port}",
                      "--collector.disable-defaults", "--collector.textfile",
                      f"--collector.textfile.directory={textfile_dir}"], url, log):
            yield url

    return run()


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$')
_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample in an exposition text."""
    out = []
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m and not line.startswith("#"):
            labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                      for k, v in _PAIR.findall(m.group(2) or "")}
            out.append((m.group(1), labels, float(m.group(3))))
    return out


def find(text: str, name: str, **labels: str) -> list[float]:
    return [v for n, ls, v in samples(text) if n == name and all(ls.get(k) == x for k, x in labels.items())]
