"""The compiled-code cache: code built once is read back while its key holds, rebuilt when the
key changes or the file is damaged, and never read from a folder another user could write."""

from __future__ import annotations

import json
import os

import pytest

from fleetcare import codecache, results
from fleetcare.reports import html as html_report
from tests.unit.test_reports import sample_run


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    home = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    html_report._template.cache_clear()
    results._validator.cache_clear()
    yield home / "fleetcare"
    html_report._template.cache_clear()
    results._validator.cache_clear()


def _builder(source: str, calls: list[str]):
    def build() -> str:
        calls.append(source)
        return source
    return build


def _value(code) -> int:
    namespace: dict = {}
    exec(code, namespace)
    return namespace["VALUE"]


def test_built_once_then_read_back(cache_home):
    calls: list[str] = []
    first = codecache.python_code("k1", _builder("VALUE = 1", calls), "<t>")
    again = codecache.python_code("k1", _builder("VALUE = 2", calls), "<t>")
    assert (_value(first), _value(again)) == (1, 1)  # the second source was never compiled
    assert calls == ["VALUE = 1"]
    (entry,) = (cache_home / "code").iterdir()
    assert oct(entry.stat().st_mode & 0o777) == "0o600"
    assert oct((cache_home / "code").stat().st_mode & 0o777) == "0o700"


def test_a_new_key_builds_again(cache_home):
    calls: list[str] = []
    codecache.python_code("k1", _builder("VALUE = 1", calls), "<t>")
    assert _value(codecache.python_code("k2", _builder("VALUE = 2", calls), "<t>")) == 2
    assert len(list((cache_home / "code").iterdir())) == 2


def test_a_damaged_entry_is_rebuilt_and_replaced(cache_home):
    calls: list[str] = []
    codecache.python_code("k1", _builder("VALUE = 1", calls), "<t>")
    (entry,) = (cache_home / "code").iterdir()
    entry.write_bytes(b"\xe3not marshal data")
    assert _value(codecache.python_code("k1", _builder("VALUE = 3", calls), "<t>")) == 3
    assert _value(codecache.python_code("k1", _builder("VALUE = 4", calls), "<t>")) == 3
    assert calls == ["VALUE = 1", "VALUE = 3"]


def test_a_folder_others_can_write_is_not_used(cache_home):
    (cache_home / "code").mkdir(parents=True)
    os.chmod(cache_home / "code", 0o777)
    calls: list[str] = []
    for value in (1, 2):
        assert _value(codecache.python_code("k1", _builder(f"VALUE = {value}", calls), "<t>")) == value
    assert calls == ["VALUE = 1", "VALUE = 2"]
    assert list((cache_home / "code").iterdir()) == []


def test_no_usable_cache_folder_only_costs_time(cache_home):
    cache_home.parent.mkdir(parents=True)
    cache_home.write_text("a file where the folder would be")
    calls: list[str] = []
    for _ in range(2):
        assert _value(codecache.python_code("k1", _builder("VALUE = 1", calls), "<t>")) == 1
    assert len(calls) == 2
    assert codecache.jinja_bytecode_cache() is None


def test_reports_and_schema_checks_are_the_same_from_the_cache(cache_home):
    """The HTML report and the schema validator, compiled (cold) and read back (warm), give the
    same page and refuse the same document with the same message."""
    run = sample_run(hostile=True)
    doc = json.loads(json.dumps(run.to_report()))
    bad = {**doc, "contract": "one"}

    def once() -> tuple[str, str]:
        html_report._template.cache_clear()
        results._validator.cache_clear()
        page = html_report.render(run)
        with pytest.raises(results.SchemaError) as refused:
            results.validate(bad)
        results.validate(doc)
        return page, str(refused.value)

    cold = once()
    assert list((cache_home / "jinja").iterdir()) and list((cache_home / "code").iterdir())
    stamps = {p: p.stat().st_mtime_ns for p in cache_home.rglob("*") if p.is_file()}
    warm = once()
    assert warm == cold
    assert {p: p.stat().st_mtime_ns for p in cache_home.rglob("*") if p.is_file()} == stamps  # read, not rewritten
