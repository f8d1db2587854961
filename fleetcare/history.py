"""Run history in SQLite: runs, hosts, findings and metrics.

A run is written twice: once when it starts (status ``running``, so even a
killed wrapper leaves a trace) and once, whole, in a single transaction when
it ends. Reports can be rebuilt from here at any time (``fleetcare report``).
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fleetcare import data_dir
from fleetcare.results import Finding, Metric, Run

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, command TEXT NOT NULL, started TEXT NOT NULL, finished TEXT,
    status TEXT NOT NULL, exit_code INTEGER, fail_on TEXT NOT NULL, inventory TEXT,
    limit_ TEXT, fleetcare_version TEXT NOT NULL, check_mode INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS hosts (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, name TEXT NOT NULL,
    status TEXT NOT NULL, message TEXT NOT NULL, changes TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (run_id, name));
-- A check's texts are stored once, not once per host and run: a 1,000-host run
-- of 200 checks repeats each title and remediation a thousand times otherwise.
CREATE TABLE IF NOT EXISTS checks (
    key INTEGER PRIMARY KEY, id TEXT NOT NULL, role TEXT NOT NULL, title TEXT NOT NULL,
    remediation TEXT NOT NULL, refs TEXT NOT NULL, UNIQUE (id, role, title, remediation, refs));
CREATE TABLE IF NOT EXISTS findings (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, host TEXT NOT NULL,
    check_key INTEGER NOT NULL REFERENCES checks(key), severity TEXT NOT NULL, status TEXT NOT NULL,
    evidence TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS findings_run ON findings (run_id);
CREATE INDEX IF NOT EXISTS findings_trail ON findings (check_key, host);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, host TEXT NOT NULL,
    name TEXT NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, labels TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS metrics_run ON metrics (run_id);
CREATE INDEX IF NOT EXISTS metrics_trail ON metrics (host, name);
"""

_RUN_COLUMNS = ("id", "command", "started", "finished", "status", "exit_code", "fail_on",
                "inventory", "limit_", "fleetcare_version", "check_mode")


class HistoryError(Exception):
    """One line for the user: the database file and what is wrong with it."""


def default_path() -> Path:
    return data_dir() / "history.db"


class History:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else default_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._db = sqlite3.connect(self.path)
            self._db.execute("PRAGMA foreign_keys = ON")
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.executescript(_SCHEMA)
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None:
                with self._db:
                    self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise HistoryError(f"{self.path}: history schema {row[0]} is newer than this fleetcare "
                                   f"understands ({SCHEMA_VERSION})")
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path}: not a usable fleetcare history database ({exc})") from None
        except OSError as exc:
            raise HistoryError(f"{self.path}: cannot open the history database ({exc.strerror})") from None
        os.chmod(self.path, 0o600)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._db:
                yield self._db
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path}: {exc}") from None

    # -- writing -------------------------------------------------------------------
    def begin(self, run: Run) -> None:
        """Record that a run started, before anything else happens."""
        with self._tx() as db:
            db.execute(f"INSERT OR REPLACE INTO runs VALUES ({','.join('?' * len(_RUN_COLUMNS))})",
                       _run_row(run))

    def save(self, run: Run) -> None:
        """Store the whole run (replacing an earlier save of the same id)."""
        with self._tx() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run.id,))
            db.execute(f"INSERT INTO runs VALUES ({','.join('?' * len(_RUN_COLUMNS))})", _run_row(run))
            dumps = json.dumps
            db.executemany("INSERT INTO hosts VALUES (?,?,?,?,?)",
                           ((run.id, h.name, h.status, h.message, dumps(h.changes))
                            for h in run.hosts.values()))
            keys: dict[tuple[str, ...], int] = {}

            def check_key(f: Finding) -> int:
                text = (f.id, f.role, f.title, f.remediation, dumps(f.references))
                key = keys.get(text)
                if key is None:
                    db.execute("INSERT OR IGNORE INTO checks (id, role, title, remediation, refs) "
                               "VALUES (?,?,?,?,?)", text)
                    key = keys[text] = db.execute(
                        "SELECT key FROM checks WHERE id = ? AND role = ? AND title = ? AND remediation = ? "
                        "AND refs = ?", text).fetchone()[0]
                return key

            db.executemany(
                "INSERT INTO findings VALUES (?,?,?,?,?,?)",
                ((run.id, f.host, check_key(f), f.severity, f.status, dumps(f.evidence)) for f in run.findings()))
            db.executemany(
                "INSERT INTO metrics VALUES (?,?,?,?,?,?)",
                ((run.id, m.host, m.name, m.value, m.unit, dumps(m.labels)) for m in run.metrics()))

    # -- reading -------------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """A run id from an exact id, a unique prefix, or ``latest``."""
        if ref == "latest":
            row = self._db.execute("SELECT id FROM runs ORDER BY started DESC, id DESC LIMIT 1").fetchone()
            if row is None:
                raise HistoryError(f"{self.path}: no runs recorded yet")
            return row[0]
        rows = self._db.execute("SELECT id FROM runs WHERE id = ? OR id LIKE ? ORDER BY id",
                                (ref, ref.replace("%", "") + "%")).fetchall()
        ids = [r[0] for r in rows]
        if ref in ids:
            return ref
        if len(ids) == 1:
            return ids[0]
        if not ids:
            raise HistoryError(f"{self.path}: no run {ref!r} (see 'fleetcare history')")
        raise HistoryError(f"{self.path}: {ref!r} matches {len(ids)} runs; give more of the id")

    def load(self, run_id: str) -> Run:
        run_id = self.resolve(run_id)
        db = self._db
        row = db.execute(f"SELECT {','.join(_RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,)).fetchone()
        run = dict(zip(_RUN_COLUMNS, row, strict=True))
        run["limit"] = run.pop("limit_")
        run["check"] = bool(run.pop("check_mode"))
        loads = json.loads
        hosts = [{"name": n, "status": s, "message": m, "changes": loads(c)} for n, s, m, c in db.execute(
            "SELECT name, status, message, changes FROM hosts WHERE run_id = ? ORDER BY rowid", (run_id,))]
        checks = {key: (fid, role, title, rem, loads(refs)) for key, fid, role, title, rem, refs in db.execute(
            "SELECT key, id, role, title, remediation, refs FROM checks WHERE key IN "
            "(SELECT DISTINCT check_key FROM findings WHERE run_id = ?)", (run_id,))}

        def finding(host: str, key: int, sev: str, status: str, ev: str) -> Finding:
            fid, role, title, rem, refs = checks[key]
            return Finding(fid, title, sev, status, host, role, loads(ev), rem, list(refs))

        findings = (finding(*row) for row in db.execute(
            "SELECT host, check_key, severity, status, evidence FROM findings WHERE run_id = ? ORDER BY rowid",
            (run_id,)))
        metrics = (Metric(host, name, value, unit, loads(labels)) for host, name, value, unit, labels in
                   db.execute("SELECT host, name, value, unit, labels FROM metrics WHERE run_id = ? "
                              "ORDER BY rowid", (run_id,)))
        return Run.from_parts(run, hosts, findings, metrics)

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest runs first, with counts of hosts and failing findings."""
        rows = self._db.execute(
            "SELECT r.id, r.command, r.started, r.status, r.exit_code, "
            "(SELECT COUNT(*) FROM hosts h WHERE h.run_id = r.id), "
            "(SELECT COUNT(*) FROM findings f WHERE f.run_id = r.id AND f.status = 'fail') "
            "FROM runs r ORDER BY r.started DESC, r.id DESC LIMIT ?", (limit,)).fetchall()
        keys = ("id", "command", "started", "status", "exit_code", "hosts", "failing")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def metric_series(self, host: str, name: str) -> list[tuple[str, float, dict[str, str]]]:
        """(run start, value, labels) for one metric of one host, oldest first: trends."""
        return [(started, value, json.loads(labels)) for started, value, labels in self._db.execute(
            "SELECT r.started, m.value, m.labels FROM metrics m JOIN runs r ON r.id = m.run_id "
            "WHERE m.host = ? AND m.name = ? ORDER BY r.started", (host, name))]


def _run_row(run: Run) -> tuple[Any, ...]:
    return (run.id, run.command, run.started, run.finished, run.status, run.exit_code, run.fail_on,
            run.inventory, run.limit, run.fleetcare_version, int(run.check))
