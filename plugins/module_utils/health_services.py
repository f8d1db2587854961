# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""What a host is for: the health role's service checks, measured here and registered by
``health_inspect``.

- Declared checks (the role variable ``health_services``, a list of one-key mappings): a
  systemd ``unit`` that must be active, a ``tcp`` port that must accept, an ``http`` URL that
  must answer with an expected status within a time, a ``process`` that must run, a ``tls``
  endpoint whose certificate must not expire soon. One finding per kind (HLTH-SVC-001..005);
  each declared check is one entry of its evidence (``checks``), with what was measured.
- Discovered: every listening TCP socket with its process (HLTH-PORT-001, module_utils/sockets.py).
- Databases, probed locally when installed: PostgreSQL (HLTH-DB-001, ``psql`` as the postgres
  user over the local socket), MariaDB/MySQL (HLTH-DB-002, ``mysql`` as root over the unix
  socket), Redis (HLTH-DB-003, the protocol spoken over its socket). Not installed:
  not_applicable; installed and down: fail.

No password is passed on a command line or returned: PostgreSQL and MariaDB authenticate the
local user by its socket (peer / unix_socket), Redis's ``requirepass`` is read from its
configuration and sent over the socket only, and URLs are shown redacted.

:func:`services_problems` validates ``health_services``; validation.py runs it in the module
and in the wrapper (before any host is contacted). Pure Python without imports from Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import os
import re
import socket
import ssl
import time

from ansible_collections.fleetcare.ops.plugins.module_utils.findings import (
    CheckError, NotApplicable, ToolMissing, grade, metric)
from ansible_collections.fleetcare.ops.plugins.module_utils.host import (
    parse_properties, read_optional, run_cmd)
from ansible_collections.fleetcare.ops.plugins.module_utils.redact import redact
from ansible_collections.fleetcare.ops.plugins.module_utils.sockets import listening as listening_sockets
from ansible_collections.fleetcare.ops.plugins.module_utils.x509 import certificate_info

KINDS = ("unit", "tcp", "http", "process", "tls")
# the keys each kind of declared check takes beside its own
EXTRA_KEYS = {"unit": (), "tcp": ("host", "timeout"), "http": ("status", "timeout"),
              "process": ("min_count",), "tls": ("server_name", "warn_days", "critical_days", "timeout")}
KIND_IDS = {"unit": "HLTH-SVC-001", "tcp": "HLTH-SVC-002", "http": "HLTH-SVC-003",
            "process": "HLTH-SVC-004", "tls": "HLTH-SVC-005"}


# a secret inside a line (redact() judges whole lines): password=..., IDENTIFIED BY '...'
_INLINE_SECRET = re.compile(r"(?i)((?:password|passwd|pwd|requirepass|masterauth|secret|token)\s*[=:]\s*|"
                            r"identified\s+(?:with\s+\S+\s+)?(?:by|as)\s+(?:password\s*)?\(?\s*)"
                            r"('[^']*'|\"[^\"]*\"|[^\s,;)]+)")


_URL_SECRET = re.compile(r"(://[^\s:/@]*:)([^\s@/]+)(@)")


def scrub(text):
    """``text`` with passwords hidden, line by line and inside lines."""
    text = _INLINE_SECRET.sub(lambda m: m.group(1) + "<redacted>", redact(text))
    return _URL_SECRET.sub(lambda m: m.group(1) + "<redacted>" + m.group(3), text)


def rnd(value, digits=1):
    return round(float(value), digits)


# --------------------------------------------------------------------------- validation


def _port(value):
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536


def _endpoint(value):
    """(host, port) of ``443``, ``"443"``, ``"host:443"`` or ``"[::1]:443"``; None when malformed."""
    if _port(value):
        return "127.0.0.1", value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.isdigit():
        return ("127.0.0.1", int(text)) if _port(int(text)) else None
    match = re.match(r"^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:\[\]/]+)):([0-9]{1,5})$", text)
    if not match or not _port(int(match.group(3))):
        return None
    return match.group(1) or match.group(2), int(match.group(3))


def _positive(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _entry_problem(entry):
    """What is wrong with one declared check, or None."""
    if not isinstance(entry, dict):
        return "must be a mapping with one of the keys %s, got %r" % (", ".join(KINDS), entry)
    kinds = [k for k in KINDS if k in entry]
    if len(kinds) != 1:
        return "must have exactly one of the keys %s, got %s" % (
            ", ".join(KINDS), ", ".join(sorted(map(str, entry))) or "none")
    kind = kinds[0]
    extra = sorted(str(k) for k in entry if k != kind and k not in EXTRA_KEYS[kind])
    if extra:
        return "%s check: unknown key %s (allowed: %s)" % (kind, extra[0], ", ".join(EXTRA_KEYS[kind]) or "none")
    value = entry[kind]
    if kind in ("unit", "process") and not (isinstance(value, str) and value.strip() and " " not in value.strip()):
        return "%s: must be a name without spaces, got %r" % (kind, value)
    if kind in ("tcp", "tls") and _endpoint(value) is None:
        return "%s: must be a port or host:port, got %r" % (kind, value)
    if kind == "tcp" and "host" in entry and not (isinstance(entry["host"], str) and entry["host"].strip()):
        return "tcp check: host must be a host name or address, got %r" % (entry["host"],)
    if kind == "http":
        if not (isinstance(value, str) and re.match(r"^https?://[^\s/]+", value)):
            return "http: must be an http:// or https:// URL, got %r" % (redact(str(value)),)
        codes = entry.get("status", 200)
        codes = codes if isinstance(codes, list) else [codes]
        if not codes or not all(isinstance(c, int) and not isinstance(c, bool) and 100 <= c <= 599
                                for c in codes):
            return "http check: status must be an HTTP status (100-599) or a list of them, got %r" % (
                entry.get("status"),)
    if "timeout" in entry and not (_positive(entry["timeout"]) and entry["timeout"] <= 60):
        return "%s check: timeout must be a number of seconds above 0 and at most 60, got %r" % (
            kind, entry["timeout"])
    if kind == "process" and "min_count" in entry and not (
            isinstance(entry["min_count"], int) and not isinstance(entry["min_count"], bool)
            and entry["min_count"] >= 1):
        return "process check: min_count must be a whole number of at least 1, got %r" % (entry["min_count"],)
    if kind == "tls":
        for key in ("warn_days", "critical_days"):
            if key in entry and not (isinstance(entry[key], int) and not isinstance(entry[key], bool)
                                     and entry[key] >= 0):
                return "tls check: %s must be a whole number of days, got %r" % (key, entry[key])
        if entry.get("critical_days", 0) > entry.get("warn_days", 10 ** 6):
            return "tls check: critical_days must not exceed warn_days"
        if "server_name" in entry and not (isinstance(entry["server_name"], str) and entry["server_name"].strip()):
            return "tls check: server_name must be a host name, got %r" % (entry["server_name"],)
    return None


def services_problems(entries):
    """Messages (without the option's name) about a ``health_services`` list; [] when usable."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        return ["must be a list of checks, got %s" % type(entries).__name__]
    problems = []
    for index, entry in enumerate(entries, 1):
        problem = _entry_problem(entry)
        if problem:
            problems.append("item %d: %s" % (index, problem))
    return problems


def declared(entries, kind):
    return [e for e in entries or () if isinstance(e, dict) and kind in e]


# --------------------------------------------------------------------------- declared checks


def _judge_declared(kind, results, extra=None):
    """(status, severity, evidence, metrics) of the entries of one kind."""
    failed = [r for r in results if not r["ok"]]
    evidence = {"declared": len(results), "failed_count": len(failed), "checks": results,
                "failed": [r["check"] for r in failed]}
    evidence.update(extra or {})
    metrics = [metric("service_check_ok", 1 if r["ok"] else 0, kind=kind, check=r["check"]) for r in results]
    return ("fail" if failed else "pass"), "major", evidence, metrics


def _none_declared(kind):
    raise NotApplicable("no %s check declared in health_services" % kind, {"declared": 0})


def parse_systemctl_show(text):
    """``systemctl show -p Id,LoadState,ActiveState,SubState U1 U2`` -> one dict per unit, in order
    (blocks are separated by blank lines)."""
    blocks, current = [], []
    for line in text.splitlines() + [""]:
        if line.strip():
            current.append(line)
        elif current:
            blocks.append(parse_properties("\n".join(current)))
            current = []
    return blocks


def check_units(params, host):
    entries = declared(params.get("services"), "unit")
    if not entries:
        _none_declared("unit")
    if not host.systemd:
        raise CheckError("systemd is not PID 1 on this host: the declared units cannot be checked",
                         {"declared": len(entries)})
    names = [e["unit"].strip() for e in entries]
    try:
        rc, out, err = run_cmd(["systemctl", "show", "--no-pager",
                                "--property=Id,LoadState,ActiveState,SubState", "--"] + names)
    except (ToolMissing, OSError) as exc:
        raise CheckError("cannot run systemctl: %s" % exc) from exc
    blocks = parse_systemctl_show(out)
    if rc != 0 or len(blocks) != len(names):
        raise CheckError("systemctl show failed (rc=%s): %s" % (rc, err.strip()[:200]))
    results = []
    for index, name in enumerate(names):
        props = blocks[index]
        active = props.get("ActiveState", "")
        result = {"check": name, "ok": active == "active", "load_state": props.get("LoadState", ""),
                  "active_state": active, "sub_state": props.get("SubState", ""), "expected": "active"}
        if props.get("LoadState") == "not-found":
            result["reason"] = "no such unit"
        results.append(result)
    return _judge_declared("unit", results)


def _connect(host, port, timeout):
    """(ok, seconds, error) of one TCP connection."""
    start = time.monotonic()
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
    except (OSError, socket.timeout) as exc:
        return False, time.monotonic() - start, str(exc) or type(exc).__name__
    conn.close()
    return True, time.monotonic() - start, ""


def check_tcp(params, host):
    entries = declared(params.get("services"), "tcp")
    if not entries:
        _none_declared("tcp")
    results = []
    for entry in entries:
        addr, port = _endpoint(entry["tcp"])
        addr = entry.get("host", addr)
        timeout = entry.get("timeout", params["services_timeout_seconds"])
        ok, seconds, error = _connect(addr, port, timeout)
        result = {"check": "%s:%d" % (addr, port), "ok": ok, "connect_ms": rnd(seconds * 1000),
                  "timeout_seconds": timeout}
        if error:
            result["error"] = error
        results.append(result)
    return _judge_declared("tcp", results)


def unverified_context():
    """A client TLS context that loads no CA store (loading it costs a tenth of a second or more):
    these checks judge what an endpoint of the host serves, not whom it is signed by."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _http_status(url, timeout):
    """(status, seconds, error) of one GET, redirects not followed, the certificate not verified
    (an endpoint of the host itself; HLTH-SVC-005 judges certificates)."""
    from urllib import error as urlerror
    from urllib import request as urlrequest

    class NoRedirect(urlrequest.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    handlers = [urlrequest.ProxyHandler({}), NoRedirect()]
    if url.lower().startswith("https:"):
        handlers.append(urlrequest.HTTPSHandler(context=unverified_context()))
    opener = urlrequest.build_opener(*handlers)
    headers = {"User-Agent": "fleetcare-health"}
    match = re.match(r"^(https?://)([^/@\s]*)@(.*)$", url)
    if match:  # user:password@ becomes a Basic Authorization header (urllib takes no userinfo)
        import base64
        from urllib.parse import unquote

        user, _sep, password = match.group(2).partition(":")
        token = base64.b64encode(("%s:%s" % (unquote(user), unquote(password))).encode("utf-8")).decode("ascii")
        headers["Authorization"] = "Basic " + token
        url = match.group(1) + match.group(3)
    request = urlrequest.Request(url, headers=headers)
    start = time.monotonic()
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(65536)
            return response.status, time.monotonic() - start, ""
    except urlerror.HTTPError as exc:
        exc.close()
        return exc.code, time.monotonic() - start, ""
    except (urlerror.URLError, OSError, socket.timeout, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, time.monotonic() - start, str(reason) or type(exc).__name__


def check_http(params, host):
    entries = declared(params.get("services"), "http")
    if not entries:
        _none_declared("http")
    results = []
    limit = params["services_http_max_seconds"]
    for entry in entries:
        codes = entry.get("status", 200)
        codes = codes if isinstance(codes, list) else [codes]
        timeout = entry.get("timeout", limit)
        status, seconds, error = _http_status(entry["http"], timeout)
        ok = status in codes and seconds <= timeout
        result = {"check": scrub(entry["http"]), "ok": ok, "status": status, "expected_status": codes,
                  "elapsed_ms": rnd(seconds * 1000), "max_seconds": timeout}
        if error:
            result["error"] = error
        elif status in codes and not ok:
            result["error"] = "answered after %.2f s (at most %g s)" % (seconds, timeout)
        results.append(result)
    return _judge_declared("http", results)


def process_names(root="/"):
    """{name: count} of the running processes, by comm and by the base name of argv[0]."""
    counts = {}
    for piddir in glob.glob(os.path.join(root, "proc/[0-9]*")):
        names = set()
        comm = read_optional(os.path.join(piddir, "comm"))
        if comm:
            names.add(comm.strip())
        cmdline = read_optional(os.path.join(piddir, "cmdline"))
        if cmdline:
            argv0 = cmdline.split("\0", 1)[0].split(" ", 1)[0]
            if argv0:
                names.add(os.path.basename(argv0).rstrip(":"))
        for name in names:
            counts[name] = counts.get(name, 0) + 1
    return counts


def check_processes(params, host, root="/"):
    entries = declared(params.get("services"), "process")
    if not entries:
        _none_declared("process")
    counts = process_names(root)
    results = []
    for entry in entries:
        name = entry["process"].strip()
        # the kernel cuts comm at 15 characters
        found = counts.get(name, 0) or (counts.get(name[:15], 0) if len(name) > 15 else 0)
        wanted = entry.get("min_count", 1)
        results.append({"check": name, "ok": found >= wanted, "running": found, "min_count": wanted})
    return _judge_declared("process", results)


def peer_certificate(addr, port, server_name, timeout):
    """DER of the certificate an endpoint serves (not verified: its expiry is what is judged)."""
    context = unverified_context()
    with socket.create_connection((addr, port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=server_name or None) as conn:
        return conn.getpeercert(binary_form=True)


def check_tls(params, host, now=None):
    entries = declared(params.get("services"), "tls")
    if not entries:
        _none_declared("tls")
    now = time.time() if now is None else now
    results, worst = [], None
    for entry in entries:
        addr, port = _endpoint(entry["tls"])
        warn = entry.get("warn_days", params["services_tls_warn_days"])
        crit = entry.get("critical_days", params["services_tls_critical_days"])
        name = entry.get("server_name", "")
        result = {"check": "%s:%d" % (addr, port), "warn_days": warn, "critical_days": crit}
        if name:
            result["server_name"] = name
        try:
            info = certificate_info(peer_certificate(addr, port, name, entry.get(
                "timeout", params["services_timeout_seconds"])))
        except (OSError, ssl.SSLError, socket.timeout, ValueError) as exc:
            result.update({"ok": False, "error": str(exc) or type(exc).__name__})
            results.append(result)
            worst = "critical"  # the endpoint serves nothing: as bad as an expired certificate
            continue
        days = (info["not_after"] - now) / 86400.0
        result.update({"subject_cn": info["subject_cn"], "days_left": rnd(days),
                       "not_after": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info["not_after"])),
                       "ok": days > warn})
        if days <= crit or days <= 0:
            worst = "critical"
        elif days <= warn and worst is None:
            worst = "major"
        results.append(result)
    status, _sev, evidence, metrics = _judge_declared("tls", results)
    metrics += [metric("service_tls_days_left", r["days_left"], "days", check=r["check"])
                for r in results if "days_left" in r]
    return status, (worst if status == "fail" and worst else "major"), evidence, metrics


# --------------------------------------------------------------------------- discovered sockets


def check_listening(params, host, root="/"):
    if not params["listening_enabled"]:
        raise NotApplicable("switched off (health_listening_enabled: false)")
    tables = [os.path.join(root, "proc/net", proto) for proto in ("tcp", "tcp6")]
    if not any(os.path.exists(path) for path in tables):
        raise CheckError("cannot read /proc/net/tcp or /proc/net/tcp6")
    found = listening_sockets(root, ("tcp", "tcp6"))
    entries, seen = [], set()
    for entry in sorted(found, key=lambda e: (e["port"], e["address"])):
        key = (entry["address"], entry["port"])
        if key in seen:  # SO_REUSEPORT workers share one address
            continue
        seen.add(key)
        entries.append({"address": entry["address"], "port": entry["port"], "process": entry["process"],
                        "pid": entry["pid"]})
    evidence = {"listening_count": len(entries), "listening": entries,
                "ports": sorted(set(e["port"] for e in entries))}
    if any(e["process"] == "?" for e in entries):
        evidence["note"] = ("a socket's process is shown when this user may read the process's file "
                            "descriptors (root without CAP_SYS_PTRACE, as in a container, may not)")
    return "pass", "info", evidence, [metric("listening_tcp_sockets", len(entries))]


# --------------------------------------------------------------------------- databases


def _installed(paths):
    for pattern in paths:
        hits = sorted(glob.glob(pattern))
        if hits:
            return hits[0]
    return None


def _as_user(user, argv, uid):
    """argv run as ``user`` (runuser when root; the current user otherwise)."""
    if uid == 0 and user != "root":
        return ["runuser", "-u", user, "--"] + argv
    return argv


def _first_line(text):
    """The line of an error output that says what failed (psql warns first that it cannot change
    to root's home when run as postgres from there), scrubbed of passwords."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    said = [line for line in lines if re.search(r"(?i)\b(error|fatal)\b", line)] or lines
    return scrub(said[0])[:300] if said else ""


def parse_pg_port(text):
    """The ``port`` of a postgresql.conf (the last setting wins), or 5432."""
    port = 5432
    for line in (text or "").splitlines():
        match = re.match(r"^\s*port\s*=?\s*'?([0-9]+)'?", line)
        if match:
            port = int(match.group(1))
    return port


def pg_clusters(root="/"):
    """[{version, cluster, port, owner}] of the Debian clusters (/etc/postgresql/VERSION/NAME), the
    owner from the data directory's owner; one default cluster on port 5432 elsewhere."""
    out = []
    for conf in sorted(glob.glob(os.path.join(root, "etc/postgresql/*/*/postgresql.conf"))):
        cluster_dir = os.path.dirname(conf)
        version, name = os.path.basename(os.path.dirname(cluster_dir)), os.path.basename(cluster_dir)
        owner = "postgres"
        try:
            import pwd

            owner = pwd.getpwuid(os.stat(conf).st_uid).pw_name
        except (ImportError, KeyError, OSError):
            pass
        out.append({"version": version, "cluster": name, "port": parse_pg_port(read_optional(conf)),
                    "owner": owner})
    return out or [{"version": "", "cluster": "", "port": 5432, "owner": "postgres"}]


PG_QUERY = ("SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),"
            " current_setting('max_connections')::int, pg_is_in_recovery(),"
            " CASE WHEN NOT pg_is_in_recovery() THEN NULL"
            " WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
            " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END")
PG_DOWN = ("could not connect", "connection refused", "no such file or directory", "is the server running")


def parse_pg_row(text):
    """``psql -XAt -F '|'`` output of PG_QUERY -> {connections, max_connections, in_recovery, lag_seconds}."""
    line = [ln for ln in text.splitlines() if "|" in ln]
    if not line:
        raise CheckError("unexpected psql output: %r" % text[:200])
    fields = line[0].split("|")
    if len(fields) != 4:
        raise CheckError("unexpected psql output: %r" % line[0][:200])
    return {"connections": int(fields[0]), "max_connections": int(fields[1]),
            "in_recovery": fields[2] == "t",
            "lag_seconds": rnd(float(fields[3]), 1) if fields[3] else None}


def check_postgresql(params, host, uid=None, root="/"):
    if not params["postgresql_enabled"]:
        raise NotApplicable("switched off (health_postgresql_enabled: false)")
    uid = os.geteuid() if uid is None else uid
    binary = _installed([os.path.join(root, p) for p in ("usr/lib/postgresql/*/bin/postgres",
                                                          "usr/pgsql-*/bin/postgres", "usr/bin/postgres",
                                                          "usr/sbin/postgres")])
    if binary is None:
        raise NotApplicable("PostgreSQL is not installed (no postgres server binary)")
    results = []
    for cluster in pg_clusters(root):
        name = ("%s/%s" % (cluster["version"], cluster["cluster"])).strip("/") or "port %d" % cluster["port"]
        result = {"cluster": name, "port": cluster["port"]}
        # the version's own psql: /usr/bin/psql is Debian's Perl wrapper, half a second to start
        own = os.path.join(root, "usr/lib/postgresql", cluster["version"], "bin/psql")
        psql = own if cluster["version"] and os.path.exists(own) else "psql"
        argv = _as_user(cluster["owner"], [psql, "-XAtq", "-F", "|", "-v", "ON_ERROR_STOP=1",
                                           "-p", str(cluster["port"]), "-d", "postgres", "-c", PG_QUERY], uid)
        try:
            rc, out, err = run_cmd(argv, timeout=10)
        except ToolMissing as exc:
            raise CheckError("PostgreSQL is installed but %s" % exc, {"server": binary}) from None
        except OSError as exc:
            raise CheckError("cannot run psql: %s" % exc) from exc
        if rc != 0:
            message = _first_line(err)
            down = any(text in err.lower() for text in PG_DOWN)
            result.update({"accepting": False, "state": "down" if down else "error", "error": message})
        else:
            result.update(parse_pg_row(out))
            result["accepting"] = True
            result["connections_pct"] = rnd(100.0 * result["connections"] / max(1, result["max_connections"]))
        results.append(result)
    return _judge_db("postgresql", results, params, {"server": binary})


def _judge_db(engine, results, params, extra):
    """One database finding from its instances: down fails as critical, an instance that could
    not be asked is an error, then connections and replication lag against their thresholds."""
    evidence = dict(extra, instances=results, threshold_connections_pct=params["db_connections_warn_pct"],
                    critical_connections_pct=params["db_connections_critical_pct"],
                    threshold_lag_seconds=params["db_replication_lag_warn_seconds"],
                    critical_lag_seconds=params["db_replication_lag_critical_seconds"])
    metrics = []
    status, severity = "pass", "major"
    rank = {"pass": 0, "fail": 1}
    sev_rank = {"minor": 0, "major": 1, "critical": 2}
    problems = []

    def worse(new_status, new_sev, problem):
        nonlocal status, severity
        problems.append(problem)
        if (rank[new_status], sev_rank[new_sev]) > (rank[status], sev_rank[severity]):
            status, severity = new_status, new_sev

    unknown = [r for r in results if not r.get("accepting") and r.get("state") == "error"]
    for r in results:
        label = r.get("cluster") or r.get("instance") or engine
        metrics.append(metric("db_up", 1 if r.get("accepting") else 0, engine=engine, instance=label))
        if not r.get("accepting"):
            if r.get("state") == "down":
                worse("fail", "critical", "%s is down" % label)
            continue
        if "connections_pct" in r:
            metrics.append(metric("db_connections_pct", r["connections_pct"], "percent", engine=engine, instance=label))
            st, sev = grade(r["connections_pct"], params["db_connections_warn_pct"],
                            params["db_connections_critical_pct"], "major", "critical")
            if st == "fail":
                worse(st, sev, "%s uses %s%% of its connections" % (label, r["connections_pct"]))
        if r.get("replication_running") is False:
            worse("fail", "critical", "%s: replication is not running" % label)
        if r.get("lag_seconds") is not None:
            metrics.append(metric("db_replication_lag_seconds", r["lag_seconds"], "seconds", engine=engine,
                                  instance=label))
            st, sev = grade(r["lag_seconds"], params["db_replication_lag_warn_seconds"],
                            params["db_replication_lag_critical_seconds"], "major", "critical")
            if st == "fail":
                worse(st, sev, "%s lags %s s behind its primary" % (label, r["lag_seconds"]))
    if problems:
        evidence["problems"] = problems
    if status == "pass" and unknown:
        raise CheckError("%s could not be asked: %s" % (engine, unknown[0].get("error", "")), evidence)
    return status, severity, evidence, metrics


MYSQL_QUERY = ("SHOW GLOBAL STATUS LIKE 'Threads_connected'; SHOW GLOBAL VARIABLES LIKE 'max_connections'; "
               "SHOW SLAVE STATUS\\G")
MYSQL_DOWN = ("can't connect", "error 2002", "error 2003", "lost connection")


def parse_mysql_output(text):
    """``mysql -N -B -e MYSQL_QUERY`` -> {connections, max_connections, replica{...} or None}.
    The first two statements print ``Name<TAB>value``; the vertical ``\\G`` block prints
    ``Key: value`` lines, and nothing on a server that is not a replica."""
    values, replica = {}, {}
    for line in text.splitlines():
        if "\t" in line:
            key, value = line.split("\t", 1)
            values[key.strip().lower()] = value.strip()
        elif ":" in line and not line.lstrip().startswith("*"):
            key, value = line.split(":", 1)
            replica[key.strip()] = value.strip()
    if "threads_connected" not in values or "max_connections" not in values:
        raise CheckError("unexpected mysql output: %r" % text[:200])
    out = {"connections": int(values["threads_connected"]), "max_connections": int(values["max_connections"]),
           "replica": None}
    if replica:
        io_ok = replica.get("Slave_IO_Running") == "Yes"
        sql_ok = replica.get("Slave_SQL_Running") == "Yes"
        lag = replica.get("Seconds_Behind_Master")
        out["replica"] = {"io_running": io_ok, "sql_running": sql_ok,
                          "master_host": replica.get("Master_Host", ""),
                          "lag_seconds": float(lag) if lag not in (None, "", "NULL") else None,
                          "last_error": scrub(replica.get("Last_Error", ""))[:300]}
    return out


def check_mysql(params, host, uid=None, root="/"):
    if not params["mysql_enabled"]:
        raise NotApplicable("switched off (health_mysql_enabled: false)")
    uid = os.geteuid() if uid is None else uid
    binary = _installed([os.path.join(root, p) for p in ("usr/sbin/mariadbd", "usr/sbin/mysqld",
                                                          "usr/bin/mariadbd", "usr/bin/mysqld")])
    if binary is None:
        raise NotApplicable("MariaDB/MySQL is not installed (no mariadbd or mysqld)")
    client = "mariadb" if os.path.exists(os.path.join(root, "usr/bin/mariadb")) else "mysql"
    result = {"instance": "local"}
    try:
        rc, out, err = run_cmd([client, "--protocol=socket", "--user=root", "--connect-timeout=5",
                                "-N", "-B", "-e", MYSQL_QUERY], timeout=10)
    except ToolMissing as exc:
        raise CheckError("MariaDB/MySQL is installed but %s" % exc, {"server": binary}) from None
    except OSError as exc:
        raise CheckError("cannot run %s: %s" % (client, exc)) from exc
    if rc != 0:
        message = _first_line(err)
        down = any(text in message.lower() for text in MYSQL_DOWN)
        result.update({"accepting": False, "state": "down" if down else "error", "error": message})
        if not down and uid != 0:
            result["error"] += " (the socket login needs root)"
    else:
        parsed = parse_mysql_output(out)
        result.update({"accepting": True, "connections": parsed["connections"],
                       "max_connections": parsed["max_connections"],
                       "connections_pct": rnd(100.0 * parsed["connections"] / max(1, parsed["max_connections"]))})
        if parsed["replica"] is not None:
            rep = parsed["replica"]
            result["replica"] = rep
            result["replication_running"] = rep["io_running"] and rep["sql_running"]
            result["lag_seconds"] = rep["lag_seconds"]
    return _judge_db("mysql", [result], params, {"server": binary})


def parse_redis_conf(text):
    """port, bind, unixsocket and whether requirepass is set, from redis.conf (last one wins)."""
    conf = {"port": 6379, "unixsocket": "", "password": None, "bind": "127.0.0.1"}
    for line in (text or "").splitlines():
        f = line.strip().split(None, 1)
        if len(f) != 2 or f[0].startswith("#"):
            continue
        key, value = f[0].lower(), f[1].strip().strip('"')
        if key == "port" and value.isdigit():
            conf["port"] = int(value)
        elif key == "unixsocket":
            conf["unixsocket"] = value
        elif key == "requirepass":
            conf["password"] = value
        elif key == "bind":
            conf["bind"] = value.split()[0].lstrip("-")
    return conf


def parse_redis_info(text):
    """``INFO`` text (``key:value`` lines, ``# Section`` headers) -> {key: value}."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            key, value = line.split(":", 1)
            out[key] = value
    return out


def _resp_command(*words):
    parts = ["*%d\r\n" % len(words)]
    for word in words:
        data = word.encode("utf-8")
        parts.append("$%d\r\n" % len(data))
        parts.append(data.decode("utf-8") + "\r\n")
    return "".join(parts).encode("utf-8")


class _Reader(object):
    def __init__(self, conn):
        self.conn, self.buf = conn, b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.conn.recv(65536)
            if not chunk:
                raise OSError("connection closed by redis")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self):
        """One RESP reply: a string, or a RedisError raised as ValueError."""
        head = self.line()
        kind, rest = head[:1], head[1:]
        if kind == b"-":
            raise ValueError(rest.decode("utf-8", "replace"))
        if kind in (b"+", b":"):
            return rest.decode("utf-8", "replace")
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self.buf) < size + 2:
                chunk = self.conn.recv(65536)
                if not chunk:
                    raise OSError("connection closed by redis")
                self.buf += chunk
            data, self.buf = self.buf[:size], self.buf[size + 2:]
            return data.decode("utf-8", "replace")
        raise ValueError("unexpected redis reply %r" % head[:40])


def redis_ask(conf, timeout):
    """(ping reply, INFO memory text) from a Redis server; the password goes over the socket only."""
    if conf["unixsocket"] and os.path.exists(conf["unixsocket"]):
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        conn.settimeout(timeout)
        conn.connect(conf["unixsocket"])
    else:
        addr = conf["bind"] if conf["bind"] not in ("*", "0.0.0.0", "::", "") else "127.0.0.1"
        conn = socket.create_connection((addr, conf["port"]), timeout=timeout)
    with conn:
        reader = _Reader(conn)
        if conf["password"]:
            conn.sendall(_resp_command("AUTH", conf["password"]))
            reader.reply()
        conn.sendall(_resp_command("PING") + _resp_command("INFO", "memory"))
        return reader.reply(), reader.reply()


def check_redis(params, host, root="/"):
    if not params["redis_enabled"]:
        raise NotApplicable("switched off (health_redis_enabled: false)")
    binary = _installed([os.path.join(root, p) for p in ("usr/bin/redis-server", "usr/sbin/redis-server",
                                                          "usr/local/bin/redis-server")])
    if binary is None:
        raise NotApplicable("Redis is not installed (no redis-server)")
    conf_path = os.path.join(root, "etc/redis/redis.conf")
    conf = parse_redis_conf(read_optional(conf_path))
    where = conf["unixsocket"] or "%s:%d" % (conf["bind"], conf["port"])
    evidence = {"server": binary, "endpoint": where, "auth": bool(conf["password"]),
                "threshold_memory_pct": params["redis_memory_warn_pct"],
                "critical_memory_pct": params["redis_memory_critical_pct"]}
    try:
        pong, info_text = redis_ask(conf, params["services_timeout_seconds"])
    except (OSError, socket.timeout) as exc:
        evidence.update({"accepting": False, "error": str(exc) or type(exc).__name__})
        return "fail", "critical", evidence, [metric("db_up", 0, engine="redis", instance=where)]
    except ValueError as exc:  # NOAUTH, WRONGPASS, a renamed command...
        raise CheckError("redis answered with an error: %s" % scrub(str(exc))[:200], evidence) from None
    info = parse_redis_info(info_text or "")
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0) or 0)
    evidence.update({"accepting": True, "ping": pong, "used_memory_bytes": used, "maxmemory_bytes": limit,
                     "maxmemory_policy": info.get("maxmemory_policy", "")})
    metrics = [metric("db_up", 1, engine="redis", instance=where),
               metric("redis_used_memory_bytes", used, "bytes")]
    if pong != "PONG":
        evidence["expected"] = "PONG"
        return "fail", "critical", evidence, metrics
    if limit <= 0:
        evidence["note"] = "no maxmemory set: Redis grows until the host runs out of memory"
        return "pass", "major", evidence, metrics
    used_pct = 100.0 * used / limit
    evidence["used_memory_pct"] = rnd(used_pct)
    metrics.append(metric("redis_memory_pct", used_pct, "percent"))
    status, severity = grade(used_pct, params["redis_memory_warn_pct"], params["redis_memory_critical_pct"],
                             "major", "critical")
    return status, severity, evidence, metrics


# option -> (module argument spec, default); health_inspect registers them
OPTIONS = {
    "services": dict(type="list", elements="raw", default=[]),
    "services_timeout_seconds": dict(type="float", default=2.0),
    "services_http_max_seconds": dict(type="float", default=2.0),
    "services_tls_warn_days": dict(type="int", default=30),
    "services_tls_critical_days": dict(type="int", default=7),
    "listening_enabled": dict(type="bool", default=True),
    "postgresql_enabled": dict(type="bool", default=True),
    "mysql_enabled": dict(type="bool", default=True),
    "redis_enabled": dict(type="bool", default=True),
    "db_connections_warn_pct": dict(type="float", default=80.0),
    "db_connections_critical_pct": dict(type="float", default=95.0),
    "db_replication_lag_warn_seconds": dict(type="float", default=300.0),
    "db_replication_lag_critical_seconds": dict(type="float", default=1800.0),
    "redis_memory_warn_pct": dict(type="float", default=85.0),
    "redis_memory_critical_pct": dict(type="float", default=95.0),
}
# (warn, critical, upper bound) and (option, lowest, highest), as in validation.py
PAIRS = (
    ("db_connections_warn_pct", "db_connections_critical_pct", 100),
    ("db_replication_lag_warn_seconds", "db_replication_lag_critical_seconds", None),
    ("redis_memory_warn_pct", "redis_memory_critical_pct", 100),
    ("services_tls_critical_days", "services_tls_warn_days", None),
)
BOUNDS = (
    ("services_timeout_seconds", 0.05, 60),
    ("services_http_max_seconds", 0.05, 60),
)
