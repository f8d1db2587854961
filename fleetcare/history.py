"""Run history in SQLite: runs, hosts, findings and metrics.

A run is written twice: once when it starts (status ``running``, with the
controller's host name and process, so a run whose wrapper was killed can be
told from one still going: :meth:`History.mark_abandoned`) and once, whole, in
a single transaction when it ends. Reports can be rebuilt from here at any time
(``fleetcare report``).

The schema is upgraded in place by :data:`MIGRATIONS`: ordered steps, one per
schema version, each in its own transaction, so a database written by any
earlier fleetcare keeps every run. A file that is not a fleetcare history (an
SQLite database of another application, a damaged one, one from a newer
fleetcare) is refused with one line and left exactly as it was.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fleetcare import data_dir
from fleetcare.lifecycle import first_seen_of
from fleetcare.results import Finding, Metric, Run, bulk, utcnow

# "FLCR" in the SQLite header: this file is a fleetcare history (set since schema 2)
APPLICATION_ID = 0x464C4352
# seconds a write waits for another process's lock before the save fails
BUSY_TIMEOUT = 5.0
# KiB of page cache while a run is saved (History._cache): about the findings_trail index of a
# 1,000-host run of 200 checks and the history's neighbouring runs
SAVE_CACHE_KIB = 64 * 1024

# schema version -> the statements that bring a database of the version before it
# to this one. Step 1 is the schema fleetcare 0.1.0 created; a step, once released,
# is never edited: a change is a new step.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "CREATE TABLE runs ("
        " id TEXT PRIMARY KEY, command TEXT NOT NULL, started TEXT NOT NULL, finished TEXT,"
        " status TEXT NOT NULL, exit_code INTEGER, fail_on TEXT NOT NULL, inventory TEXT,"
        " limit_ TEXT, fleetcare_version TEXT NOT NULL, check_mode INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE hosts ("
        " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, name TEXT NOT NULL,"
        " status TEXT NOT NULL, message TEXT NOT NULL, changes TEXT NOT NULL DEFAULT '[]',"
        " PRIMARY KEY (run_id, name))",
        # A check's texts are stored once, not once per host and run: a 1,000-host run
        # of 200 checks repeats each title and remediation a thousand times otherwise.
        "CREATE TABLE checks ("
        " key INTEGER PRIMARY KEY, id TEXT NOT NULL, role TEXT NOT NULL, title TEXT NOT NULL,"
        " remediation TEXT NOT NULL, refs TEXT NOT NULL, UNIQUE (id, role, title, remediation, refs))",
        "CREATE TABLE findings ("
        " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, host TEXT NOT NULL,"
        " check_key INTEGER NOT NULL REFERENCES checks(key), severity TEXT NOT NULL, status TEXT NOT NULL,"
        " evidence TEXT NOT NULL)",
        "CREATE INDEX findings_run ON findings (run_id)",
        "CREATE INDEX findings_trail ON findings (check_key, host)",
        "CREATE TABLE metrics ("
        " run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, host TEXT NOT NULL,"
        " name TEXT NOT NULL, value REAL NOT NULL, unit TEXT NOT NULL, labels TEXT NOT NULL)",
        "CREATE INDEX metrics_run ON metrics (run_id)",
        "CREATE INDEX metrics_trail ON metrics (host, name)",
    ),
    2: (
        # who runs it: the controller's host name, the wrapper's pid and that
        # process's start (a pid alone may have been reused since)
        "ALTER TABLE runs ADD COLUMN host TEXT",
        "ALTER TABLE runs ADD COLUMN pid INTEGER",
        "ALTER TABLE runs ADD COLUMN pid_start TEXT",
        f"PRAGMA application_id = {APPLICATION_ID}",
    ),
    # drift baselines (fleetcare.drift): every approved snapshot of a host, versioned, with who
    # approved it, when and why; and each host's last observed snapshot, which accept draws from
    3: (
        "CREATE TABLE drift_baselines ("
        " host TEXT NOT NULL, version INTEGER NOT NULL, taken TEXT NOT NULL, run_id TEXT,"
        " kind TEXT NOT NULL, by TEXT NOT NULL, reason TEXT NOT NULL, items TEXT NOT NULL,"
        " snapshot TEXT NOT NULL, PRIMARY KEY (host, version))",
        "CREATE TABLE drift_observed ("
        " host TEXT PRIMARY KEY, run_id TEXT NOT NULL, taken TEXT NOT NULL, snapshot TEXT NOT NULL)",
    ),
    4: (
        # when the current stretch of failures of a failing finding began (fleetcare.lifecycle)
        "ALTER TABLE findings ADD COLUMN first_seen TEXT",
        "CREATE INDEX runs_command ON runs (command, started)",
    ),
    # the life of a finding, kept across runs (fleetcare.lifecycle): waivers (a finding ID or
    # pattern, on hosts matching a pattern, with a reason, an owner and an expiry; revoked, never
    # deleted), notes (cause and fix, the knowledge base), and the waiver a waived finding ran under
    5: (
        "CREATE TABLE waivers ("
        " id INTEGER PRIMARY KEY, finding TEXT NOT NULL, host TEXT NOT NULL DEFAULT '*',"
        " reason TEXT NOT NULL, owner TEXT NOT NULL, expires TEXT NOT NULL, created TEXT NOT NULL,"
        " revoked TEXT)",
        "CREATE INDEX waivers_finding ON waivers (finding)",
        "CREATE TABLE notes ("
        " id INTEGER PRIMARY KEY, finding TEXT NOT NULL, host TEXT NOT NULL DEFAULT '*',"
        " cause TEXT NOT NULL, fix TEXT NOT NULL, author TEXT NOT NULL, created TEXT NOT NULL)",
        "CREATE INDEX notes_finding ON notes (finding)",
        "ALTER TABLE findings ADD COLUMN waiver TEXT",
    ),
    # --fail-on-overdue, which gave the run its exit code: a report rebuilt from history says why
    6: (
        "ALTER TABLE runs ADD COLUMN fail_on_overdue INTEGER NOT NULL DEFAULT 0",
    ),
}
SCHEMA_VERSION = max(MIGRATIONS)

# every table any version has: another table means the file is not (only) ours
_TABLES = frozenset({"meta", "runs", "hosts", "checks", "findings", "metrics"})
_DRIFT_TABLES = frozenset({"drift_baselines", "drift_observed"})  # since schema 3
_LIFECYCLE_TABLES = frozenset({"waivers", "notes"})  # since schema 5
_PLAIN = frozenset({str, int, float, bool, type(None)})  # JSON values with nothing inside them
_EXACT = frozenset({str, int, bool, type(None)})  # and of those, the ones equal only when their JSON is
_RUN_COLUMNS = ("id", "command", "started", "finished", "status", "exit_code", "fail_on",
                "inventory", "limit_", "fleetcare_version", "check_mode", "fail_on_overdue")
_OWNER_COLUMNS = ("host", "pid", "pid_start")
_NOTE_COLUMNS = ("id", "finding", "host", "cause", "fix", "author", "created")
_INSERT_RUN = (f"INSERT INTO runs ({','.join(_RUN_COLUMNS + _OWNER_COLUMNS)}) "
               f"VALUES ({','.join('?' * (len(_RUN_COLUMNS) + len(_OWNER_COLUMNS)))})")


class HistoryError(Exception):
    """One line for the user: the database file and what is wrong with it."""


def default_path() -> Path:
    return data_dir() / "history.db"


class History:
    def __init__(self, path: Path | str | None = None, timeout: float | None = None) -> None:
        self.path = Path(path).expanduser() if path else default_path()
        self._checked = False
        try:
            _create_private(self.path)
            # mode=rw: SQLite must never create the file itself (fleetcare creates it
            # 0600 above) nor turn a missing path into an empty database
            self._db = sqlite3.connect(f"file:{quote(str(self.path))}?mode=rw", uri=True,
                                       timeout=BUSY_TIMEOUT if timeout is None else timeout,
                                       isolation_level=None)
        except sqlite3.DatabaseError as exc:
            raise HistoryError(f"{self.path}: cannot open the history database ({exc})") from None
        except OSError as exc:
            raise HistoryError(f"{self.path}: cannot open the history database ({exc.strerror})") from None
        try:
            with self._errors():
                version = self._identify()
                if version < SCHEMA_VERSION:
                    self._migrate(version)
                if version == 0:
                    # a new database: persistent, and set outside any transaction, as SQLite wants
                    self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            self._db.close()
            raise

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what the file is, and bringing it up to date ----------------------------
    def _refuse(self, reason: str) -> HistoryError:
        reason = " ".join(reason.split())  # SQLite's reports run over several lines
        return HistoryError(f"{self.path}: not a usable fleetcare history database ({reason}); "
                            "it was left as it is")

    def _identify(self) -> int:
        """The schema version of the file, 0 for an empty one; refuses, reading
        only, anything that is not a fleetcare history this code can use."""
        db = self._db
        if db.execute("PRAGMA page_count").fetchone()[0] == 0:
            return 0
        app_id = db.execute("PRAGMA application_id").fetchone()[0]
        if app_id not in (0, APPLICATION_ID):
            raise self._refuse(f"it belongs to another application, application_id {app_id:#x}")
        tables = {name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        if not tables & _TABLES:
            raise self._refuse("it has none of fleetcare's tables")
        version = _stored_version(db) if "meta" in tables else None
        if version is not None and version > SCHEMA_VERSION:
            # before the tables: a newer fleetcare may well have more of them
            raise HistoryError(f"{self.path}: history schema {version} is newer than this fleetcare "
                               f"understands ({SCHEMA_VERSION}); it was left as it is")
        unknown = tables - _TABLES - _DRIFT_TABLES - _LIFECYCLE_TABLES
        if unknown:
            raise self._refuse(f"it has tables fleetcare does not know: {', '.join(sorted(unknown))}")
        if _TABLES - tables:
            raise self._refuse(f"fleetcare tables are missing: {', '.join(sorted(_TABLES - tables))}")
        if version is None:
            raise self._refuse("it has no valid schema_version in its meta table")
        return version

    def _migrate(self, version: int) -> None:
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self._tx() as db:
                # another fleetcare may have upgraded it while this one waited for the lock
                if (_stored_version(db) or 0) >= target:
                    continue
                for statement in MIGRATIONS[target]:
                    db.execute(statement)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(target),))

    def _check_integrity(self) -> None:
        """Before the first write: never build on a damaged file. quick_check reads
        every page (about 0.2 s for a run of 1,000 hosts x 337 findings)."""
        if self._checked:
            return
        problem = self._db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if problem != "ok":
            raise self._refuse(f"damaged: {problem}")
        self._checked = True

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
                raise self._refuse(str(exc)) from None
            if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise HistoryError(f"{self.path}: the history database is locked by another process "
                                   f"({exc})") from None
            raise HistoryError(f"{self.path}: {exc}") from None

    @contextmanager
    def _cache(self, kib: int) -> Iterator[None]:
        """A larger page cache for one write: a run's findings go into the findings_trail index all
        over it (by check and host, not in the order they arrive), and with SQLite's 2 MB default
        each insert would read pages back. Memory only, the file is the same; restored after."""
        db = self._db
        (before,) = db.execute("PRAGMA cache_size").fetchone()
        db.execute(f"PRAGMA cache_size = {-int(kib)}")
        try:
            yield
        finally:
            db.execute(f"PRAGMA cache_size = {int(before)}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; it takes the write lock at once (waiting at most
        the busy timeout) and leaves nothing behind when anything fails."""
        db = self._db
        with self._errors():
            self._check_integrity()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.rollback()
                raise

    # -- writing -------------------------------------------------------------------
    def begin(self, run: Run) -> None:
        """Record that a run started, before anything else happens."""
        with self._tx() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run.id,))
            db.execute(_INSERT_RUN, _run_row(run))

    def save(self, run: Run) -> None:
        """Store the whole run (replacing an earlier save of the same id)."""
        with self._tx() as db, self._cache(SAVE_CACHE_KIB), bulk():
            db.execute("DELETE FROM runs WHERE id = ?", (run.id,))
            db.execute(_INSERT_RUN, _run_row(run))
            dumps = json.dumps
            db.executemany("INSERT INTO hosts VALUES (?,?,?,?,?)",
                           ((run.id, h.name, h.status, h.message, dumps(h.changes))
                            for h in run.hosts.values()))
            keys: dict[tuple[str, ...], int] = {}
            # the same check on every host: found by its texts and references as they are, and
            # serialised only the first time (references of text alone: equal ones give equal JSON)
            seen: dict[tuple[Any, ...], int] = {}

            def check_key(f: Finding) -> int:
                refs = f.references
                plain = (f.id, f.role, f.title, f.remediation, *refs) if refs.__class__ is list else None
                key = seen.get(plain) if plain is not None else None
                if key is not None:
                    return key
                text = (f.id, f.role, f.title, f.remediation, dumps(refs))
                key = keys.get(text)
                if key is None:
                    db.execute("INSERT OR IGNORE INTO checks (id, role, title, remediation, refs) "
                               "VALUES (?,?,?,?,?)", text)
                    key = keys[text] = db.execute(
                        "SELECT key FROM checks WHERE id = ? AND role = ? AND title = ? AND remediation = ? "
                        "AND refs = ?", text).fetchone()[0]
                if plain is not None and all(r.__class__ is str for r in refs):
                    seen[plain] = key
                return key

            # A check's evidence is often the same on every host (a hardening control that passes):
            # the last evidence of each check made of strings, integers, booleans and nulls is kept
            # with its text, and an equal one (the same keys in the same order, the same values of
            # the same types: 1 and true are equal in Python, not in JSON; floats are left out, as
            # 0.0 equals -0.0) reuses the text. History.load does the same the other way.
            last: dict[int, tuple[tuple[Any, ...], tuple[type, ...], str]] = {}

            def evidence_text(key: int, ev: Any) -> str:
                if ev.__class__ is not dict:
                    return dumps(ev)
                items = tuple(ev.items())
                kinds = tuple([v.__class__ for v in ev.values()])
                seen = last.get(key)
                if seen is not None and seen[0] == items and seen[1] == kinds:
                    return seen[2]
                text = dumps(ev)
                if all(k in _EXACT for k in kinds):
                    last[key] = (items, kinds, text)
                return text

            since = first_seen_of(run)

            def rows() -> Iterator[tuple[Any, ...]]:
                for f in run.findings():
                    key = check_key(f)
                    yield (run.id, f.host, key, f.severity, f.status, evidence_text(key, f.evidence),
                           since.get((f.id, f.host), run.started) if f.open else None,
                           dumps(f.waiver) if f.waiver is not None else None)

            db.executemany(
                "INSERT INTO findings (run_id, host, check_key, severity, status, evidence, first_seen, waiver) "
                "VALUES (?,?,?,?,?,?,?,?)", rows())
            db.executemany(
                "INSERT INTO metrics VALUES (?,?,?,?,?,?)",
                ((run.id, m.host, m.name, m.value, m.unit, dumps(m.labels)) for m in run.metrics()))

    def mark_abandoned(self) -> list[str]:
        """Mark ``abandoned`` the runs still ``running`` whose wrapper is gone: it
        ran on this controller and its process has ended (or the pid now belongs to
        another process). Runs of other controllers, and of fleetcare before schema
        2 (no process recorded), are left alone: nothing can be told of them here.
        Returns the ids marked."""
        with self._errors():
            rows = self._db.execute("SELECT id, pid, pid_start FROM runs WHERE status = 'running' "
                                    "AND host = ? AND pid IS NOT NULL", (socket.gethostname(),)).fetchall()
        gone = [(run_id,) for run_id, pid, start in rows if not _process_alive(pid, start)]
        if gone and os.access(self.path, os.W_OK):  # a read-only history is only read
            with self._tx() as db:
                db.executemany("UPDATE runs SET status = 'abandoned' WHERE id = ? AND status = 'running'", gone)
        return [run_id for (run_id,) in gone]

    # -- reading -------------------------------------------------------------------
    def resolve(self, ref: str) -> str:
        """A run id from an exact id, a unique prefix, or ``latest``."""
        with self._errors():
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
        with self._errors(), bulk():
            return self._load(run_id)

    def _load(self, run_id: str) -> Run:
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

        # A check's evidence is often the same text on every host (a hardening control that
        # passes): the last text of each check is kept parsed, and an equal one is a copy of it.
        # Only evidence of plain values is copied so; nested lists or mappings are parsed each time.
        last: dict[int, tuple[str, dict[str, Any] | None]] = {}
        waivers: dict[str, dict[str, Any] | None] = {}  # the few waivers there are, by their text

        def evidence(key: int, text: str) -> Any:
            seen = last.get(key)
            if seen is not None and seen[0] == text and seen[1] is not None:
                return dict(seen[1])
            value = loads(text)
            plain = value.__class__ is dict and all(v.__class__ in _PLAIN for v in value.values())
            last[key] = (text, dict(value) if plain else None)
            return value

        def waiver_of(text: str) -> Any:
            value = waivers.get(text)
            if value is not None:
                return dict(value)
            value = loads(text)
            plain = value.__class__ is dict and all(v.__class__ in _PLAIN for v in value.values())
            waivers[text] = dict(value) if plain else None
            return value

        def finding(host: str, key: int, sev: str, status: str, ev: str, waiver: str | None) -> Finding:
            fid, role, title, rem, refs = checks[key]
            return Finding(fid, title, sev, status, host, role, evidence(key, ev), rem, list(refs),
                           waiver_of(waiver) if waiver else None)

        findings = (finding(*row) for row in db.execute(
            "SELECT host, check_key, severity, status, evidence, waiver FROM findings WHERE run_id = ? "
            "ORDER BY rowid", (run_id,)))
        metrics = (Metric(host, name, value, unit, loads(labels)) for host, name, value, unit, labels in
                   db.execute("SELECT host, name, value, unit, labels FROM metrics WHERE run_id = ? "
                              "ORDER BY rowid", (run_id,)))
        return Run.from_parts(run, hosts, findings, metrics)

    def outline(self, run_id: str) -> Run:
        """A run as the comparison needs it (fleetcare.lifecycle): its fields and hosts, and each
        finding's ID, host, severity, status and role, without texts, evidence or metrics. A
        tenth of :meth:`load`'s work at 200,000 findings."""
        run_id = self.resolve(run_id)
        with self._errors():
            db = self._db
            row = db.execute(f"SELECT {','.join(_RUN_COLUMNS)} FROM runs WHERE id = ?", (run_id,)).fetchone()
            run = dict(zip(_RUN_COLUMNS, row, strict=True))
            run["limit"] = run.pop("limit_")
            run["check"] = bool(run.pop("check_mode"))
            hosts = [{"name": n, "status": s, "message": m, "changes": []} for n, s, m in db.execute(
                "SELECT name, status, message FROM hosts WHERE run_id = ? ORDER BY rowid", (run_id,))]
            checks = dict(db.execute("SELECT key, id FROM checks WHERE key IN "
                                     "(SELECT DISTINCT check_key FROM findings WHERE run_id = ?)", (run_id,)))
            findings = (Finding(checks[key], "", sev, status, host, "") for host, key, sev, status in db.execute(
                "SELECT host, check_key, severity, status FROM findings WHERE run_id = ? ORDER BY rowid",
                (run_id,)))
            return Run.from_parts(run, hosts, findings, ())

    def runs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest runs first, with counts of hosts and failing findings."""
        with self._errors():
            rows = self._db.execute(
                "SELECT r.id, r.command, r.started, r.status, r.exit_code, "
                "(SELECT COUNT(*) FROM hosts h WHERE h.run_id = r.id), "
                "(SELECT COUNT(*) FROM findings f WHERE f.run_id = r.id AND f.status = 'fail') "
                "FROM runs r ORDER BY r.started DESC, r.id DESC LIMIT ?", (limit,)).fetchall()
        keys = ("id", "command", "started", "status", "exit_code", "hosts", "failing")
        return [dict(zip(keys, r, strict=True)) for r in rows]

    # -- the lifecycle (fleetcare.lifecycle) ------------------------------------------
    def previous_run(self, run: Run, look_back: int = 50) -> str | None:
        """The newest earlier finished run of the same command over the same hosts."""
        hosts = set(run.hosts)
        with self._errors():
            candidates = self._db.execute(
                "SELECT id FROM runs WHERE command = ? AND id != ? AND started <= ? AND status IN "
                "('complete', 'interrupted') ORDER BY started DESC, id DESC LIMIT ?",
                (run.command, run.id, run.started, look_back)).fetchall()
            for (run_id,) in candidates:
                names = {n for (n,) in self._db.execute("SELECT name FROM hosts WHERE run_id = ?", (run_id,))}
                if names == hosts:
                    return run_id
        return None

    def failed_before(self, run: Run) -> set[tuple[str, str]]:
        """(finding id, host) pairs that failed (waived or not), on ``run``'s hosts, in runs of its
        command started before it."""
        hosts = set(run.hosts)
        with self._errors():
            rows = self._db.execute(
                "SELECT DISTINCT c.id, f.host FROM findings f JOIN runs r ON r.id = f.run_id "
                "JOIN checks c ON c.key = f.check_key WHERE r.command = ? AND r.started < ? "
                "AND f.status IN ('fail', 'waived')", (run.command, run.started)).fetchall()
        return {(fid, host) for fid, host in rows if host in hosts}

    def first_seen(self, run_id: str) -> dict[tuple[str, str], str]:
        """(finding id, host) -> when its failures began, for the failing (or waived) findings of a run."""
        with self._errors():
            return {(fid, host): since for fid, host, since in self._db.execute(
                "SELECT c.id, f.host, f.first_seen FROM findings f JOIN checks c ON c.key = f.check_key "
                "WHERE f.run_id = ? AND f.status IN ('fail', 'waived') AND f.first_seen IS NOT NULL", (run_id,))}

    # -- waivers (fleetcare.waivers) ------------------------------------------------------------
    def add_waiver(self, finding: str, host: str, reason: str, owner: str, expires: str, created: str) -> int:
        """Store a waiver (already validated by fleetcare.waivers); returns its id."""
        with self._tx() as db:
            cur = db.execute("INSERT INTO waivers (finding, host, reason, owner, expires, created) "
                             "VALUES (?,?,?,?,?,?)", (finding, host, reason, owner, expires, created))
            return int(cur.lastrowid)

    def revoke_waivers(self, ids: list[int], when: str) -> list[int]:
        """Mark waivers revoked (never deleted); returns the ids that were not revoked before."""
        with self._tx() as db:
            done = [i for i in ids if db.execute(
                "UPDATE waivers SET revoked = ? WHERE id = ? AND revoked IS NULL", (when, i)).rowcount]
        return done

    def waivers(self) -> list[dict[str, Any]]:
        """Every waiver ever given, revoked ones too, oldest first."""
        keys = ("id", "finding", "host", "reason", "owner", "expires", "created", "revoked")
        with self._errors():
            return [dict(zip(keys, row, strict=True)) for row in self._db.execute(
                f"SELECT {', '.join(keys)} FROM waivers ORDER BY id")]

    # -- the knowledge base and recurrence (fleetcare.knowledge) ------------------------
    def add_note(self, finding: str, host: str, cause: str, fix: str, author: str, created: str) -> int:
        """Record a cause and a fix against a finding ID on hosts matching ``host``; its id."""
        with self._tx() as db:
            return db.execute("INSERT INTO notes (finding, host, cause, fix, author, created) "
                              "VALUES (?,?,?,?,?,?)", (finding, host, cause, fix, author, created)).lastrowid

    def notes(self, findings: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """Notes, newest first: all of them, or those on the given finding IDs."""
        sql = f"SELECT {','.join(_NOTE_COLUMNS)} FROM notes"
        params: tuple[Any, ...] = ()
        if findings is not None:
            sql += " WHERE finding IN (SELECT value FROM json_each(?))"
            params = (json.dumps(sorted(set(findings))),)
        with self._errors():
            rows = self._db.execute(sql + " ORDER BY created DESC, id DESC", params).fetchall()
        return [dict(zip(_NOTE_COLUMNS, r, strict=True)) for r in rows]

    def recorded(self, finding: str) -> bool:
        """Whether any stored run holds a result of this finding ID."""
        with self._errors():
            return self._db.execute(
                "SELECT 1 FROM checks c WHERE c.id = ? AND EXISTS (SELECT 1 FROM findings f "
                "WHERE f.check_key = c.key) LIMIT 1", (finding,)).fetchone() is not None

    def trail(self, finding: str, recent_since: str) -> list[dict[str, Any]]:
        """Per host on which ``finding`` ever failed, over every stored run of any command:
        ``first_failed``, ``last_failed``, ``failed_runs``, ``recurrences`` (failures that came
        right after the host reported the check passing) and how many of those started at or
        after ``recent_since``, ``last_status`` and ``last_seen`` (its latest pass or fail).
        Hosts with the most recent recurrences first, then the latest failures. One scan of the finding's rows
        (index findings_trail)."""
        with self._errors():
            rows = self._db.execute(
                "WITH obs AS (SELECT f.host AS host, f.status AS status, r.started AS started, r.id AS rid "
                " FROM checks c CROSS JOIN findings f ON f.check_key = c.key CROSS JOIN runs r ON r.id = f.run_id"
                " WHERE c.id = ? AND f.status IN ('pass', 'fail')),"
                " seq AS (SELECT host, status, started, LAG(status) OVER w AS prev, LEAD(1) OVER w AS later"
                " FROM obs WINDOW w AS (PARTITION BY host ORDER BY started, rid))"
                " SELECT host, MIN(CASE WHEN status = 'fail' THEN started END),"
                " MAX(CASE WHEN status = 'fail' THEN started END), SUM(status = 'fail'),"
                " SUM(status = 'fail' AND prev IS 'pass'),"
                " SUM(status = 'fail' AND prev IS 'pass' AND started >= ?),"
                " MAX(CASE WHEN later IS NULL THEN status END), MAX(started)"
                " FROM seq GROUP BY host HAVING SUM(status = 'fail') > 0", (finding, recent_since)).fetchall()
        keys = ("host", "first_failed", "last_failed", "failed_runs", "recurrences", "recent_recurrences",
                "last_status", "last_seen")
        out = [dict(zip(keys, r, strict=True)) for r in rows]
        out.sort(key=lambda t: t["host"])
        out.sort(key=lambda t: t["last_failed"], reverse=True)
        out.sort(key=lambda t: (-t["recent_recurrences"], -t["recurrences"]))
        return out

    def recurrences(self, run: Run, since: str) -> dict[tuple[str, str], int]:
        """(finding id, host) -> how often each failing finding of ``run`` recurred in the runs
        started from ``since`` up to ``run`` (any command; ``run`` itself counted from memory,
        so it need not be saved yet): the failures that came right after the host reported
        the check passing, both inside that window. Only pairs that recurred at least once.

        Driven by the run's failing pairs through the index findings_trail, so the cost follows
        what fails now and how many runs checked it, not the size of the fleet: about 20,000
        failing pairs x 8 runs of history (1,000 hosts x 200 findings) read 157,000 rows."""
        pairs = {(f.id, f.host) for f in run.findings() if f.failing}
        if not pairs:
            return {}
        db = self._db
        with self._errors():
            keys: dict[str, list[int]] = {}
            for key, fid in db.execute("SELECT key, id FROM checks"):
                keys.setdefault(fid, []).append(key)
            window = dict(db.execute("SELECT id, started FROM runs WHERE started >= ? AND started <= ? AND id != ?",
                                     (since, run.started, run.id)).fetchall())
            # rowids grow as runs are saved, and findings_trail holds them: reading from the first row
            # any run of the window saved skips, in the index itself, every older run
            firsts = [db.execute("SELECT MIN(rowid) FROM findings WHERE run_id = ?", (run_id,)).fetchone()[0]
                      for run_id in window]
            firsts = [rowid for rowid in firsts if rowid is not None]
            if not firsts:
                return {}  # nothing before the run in the window: its own failure cannot be a recurrence
            # the pairs go in as one JSON parameter: no temporary table to write, no statement per pair
            wanted = json.dumps([[key, host, fid] for fid, host in pairs for key in keys.get(fid, ())])
            results: dict[tuple[str, str], list[tuple[str, str, str]]] = {}
            for fid, host, run_id, status in db.execute(
                    "SELECT json_extract(w.value, '$[2]'), f.host, f.run_id, f.status FROM json_each(?) w"
                    " CROSS JOIN findings f ON f.check_key = json_extract(w.value, '$[0]')"
                    " AND f.host = json_extract(w.value, '$[1]') AND f.rowid >= ? WHERE f.status IN ('pass', 'fail')",
                    (wanted, min(firsts))):
                started = window.get(run_id)  # the few runs of the window, filtered here: no join per row
                if started is not None:
                    results.setdefault((fid, host), []).append((started, run_id, status))
        counts: dict[tuple[str, str], int] = {}
        for pair, seen in results.items():
            seen.sort()
            statuses = [status for _, _, status in seen] + ["fail"]  # the run's own failure comes last
            n = sum(1 for before, now in itertools.pairwise(statuses) if before == "pass" and now == "fail")
            if n:
                counts[pair] = n
        return counts

    def metric_series(self, host: str, name: str) -> list[tuple[str, float, dict[str, str]]]:
        """(run start, value, labels) for one metric of one host, oldest first: trends."""
        with self._errors():
            return [(started, value, json.loads(labels)) for started, value, labels in self._db.execute(
                "SELECT r.started, m.value, m.labels FROM metrics m JOIN runs r ON r.id = m.run_id "
                "WHERE m.host = ? AND m.name = ? ORDER BY r.started", (host, name))]

    # -- drift baselines (fleetcare.drift) ---------------------------------------------
    def drift_latest(self, host: str) -> tuple[int, dict[str, Any]] | None:
        """(version, snapshot) of the newest baseline of ``host`` (or of a declared baseline
        such as ``group:web``), None when it has none."""
        with self._errors():
            row = self._db.execute("SELECT version, snapshot FROM drift_baselines WHERE host = ? "
                                   "ORDER BY version DESC LIMIT 1", (host,)).fetchone()
        return (row[0], json.loads(row[1])) if row else None

    def drift_store(self, host: str, snapshot: dict[str, Any], run_id: str | None, kind: str, by: str,
                    reason: str, items: list[str]) -> int:
        """Store ``snapshot`` as the next baseline version of ``host``, with who, why and which
        items (for an accept); returns the version."""
        with self._tx() as db:
            (top,) = db.execute("SELECT COALESCE(MAX(version), 0) FROM drift_baselines WHERE host = ?",
                                (host,)).fetchone()
            db.execute("INSERT INTO drift_baselines VALUES (?,?,?,?,?,?,?,?,?)",
                       (host, top + 1, utcnow(), run_id, kind, by, reason, json.dumps(items),
                        json.dumps(snapshot, sort_keys=True)))
        return top + 1

    def drift_observe(self, host: str, run_id: str, snapshot: dict[str, Any]) -> None:
        """Keep ``snapshot`` as the last observed one of ``host`` (what accept draws from)."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO drift_observed VALUES (?,?,?,?)",
                       (host, run_id, utcnow(), json.dumps(snapshot, sort_keys=True)))

    def drift_observed(self, host: str) -> dict[str, Any] | None:
        with self._errors():
            row = self._db.execute("SELECT snapshot FROM drift_observed WHERE host = ?", (host,)).fetchone()
        return json.loads(row[0]) if row else None

    def drift_log(self, host: str) -> list[dict[str, Any]]:
        """The baseline versions of ``host``, oldest first, without their snapshots."""
        keys = ("version", "taken", "run_id", "kind", "by", "reason", "items")
        with self._errors():
            rows = self._db.execute("SELECT version, taken, run_id, kind, by, reason, items FROM drift_baselines "
                                    "WHERE host = ? ORDER BY version", (host,)).fetchall()
        return [dict(zip(keys, (*r[:6], json.loads(r[6])), strict=True)) for r in rows]


    # -- trends (fleetcare.trends) ---------------------------------------------------
    def trend_runs(self, command: str, until: str, since: str, exclude: str | None = None) -> list[tuple[str, str]]:
        """(run id, start) of the finished runs of ``command`` started in [since, until], oldest
        first, leaving out ``exclude`` (the run being built, recorded as running)."""
        with self._errors():
            return [(run_id, started) for run_id, started in self._db.execute(
                "SELECT id, started FROM runs WHERE command = ? AND started >= ? AND started <= ? AND id != ? "
                "AND status IN ('complete', 'interrupted') ORDER BY started, id",
                (command, since, until, exclude or ""))]

    def metric_values(self, run_ids: list[str], names: tuple[str, ...]) -> Iterator[tuple[str, str, str, float, str]]:
        """(run id, host, metric name, value, labels as stored JSON) of the metrics ``names`` in the
        runs ``run_ids``: one indexed look-up per run (metrics_run), whatever the number of hosts."""
        if not run_ids or not names:
            return iter(())
        marks = ",".join("?" * len(names))
        sql = (f"SELECT run_id, host, name, value, labels FROM metrics WHERE run_id = ? AND name IN ({marks}) "
               "ORDER BY rowid")

        def rows() -> Iterator[tuple[str, str, str, float, str]]:
            with self._errors():
                for run_id in run_ids:
                    yield from self._db.execute(sql, (run_id, *names))

        return rows()


def _create_private(path: Path) -> None:
    """Create an empty ``path`` with mode 0600 (and its directory 0700) when it
    does not exist. An existing file keeps its mode and owner: fleetcare sets
    modes only on what it creates."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))


def _stored_version(db: sqlite3.Connection) -> int | None:
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.OperationalError:  # no meta table yet: an empty database
        return None
    try:
        return int(row[0]) if row else None
    except ValueError:
        return None


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started, as ``boot id/start ticks`` (a pid is reused,
    a boot id and start tick are not); "" for a zombie; None without /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except (OSError, IndexError):
        return None
    return "" if fields[0] == "Z" else f"{boot}/{fields[19]}"


def _process_alive(pid: int, start: str | None) -> bool:
    """Whether process ``pid`` of this host is still the one that began the run
    (True when that cannot be told)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    now = _process_start(pid)
    return now is None or start is None or now == start


def _run_row(run: Run) -> tuple[Any, ...]:
    return (run.id, run.command, run.started, run.finished, run.status, run.exit_code, run.fail_on,
            run.inventory, run.limit, run.fleetcare_version, int(run.check), int(run.fail_on_overdue),
            socket.gethostname(), os.getpid(), _process_start(os.getpid()))
