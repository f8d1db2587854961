"""module_utils/health_services.py: parsers on the real output formats of psql, mysql, pg_lsclusters,
systemctl and Redis, and the declared checks against real sockets, HTTP and TLS servers on 127.0.0.1."""

from __future__ import annotations

import http.server
import os
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import pytest

from fleetcare.collection import module_utils

svc = module_utils("health_services")
sockets = module_utils("sockets")
validation = module_utils("validation")
host_lib = module_utils("host")

PARAMS = {name: opt["default"] for name, opt in svc.OPTIONS.items()}


class Host:
    systemd = False
    container = ""


def params(**overrides):
    return dict(PARAMS, **overrides)


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("entries, fragment", [
    ("nginx", "must be a list"),
    (["nginx"], "item 1: must be a mapping"),
    ([{"unit": "a", "tcp": 22}], "exactly one of the keys"),
    ([{"prot": 22}], "exactly one of the keys"),
    ([{"tcp": 70000}], "tcp: must be a port or host:port"),
    ([{"tcp": "host:port"}], "tcp: must be a port"),
    ([{"unit": "ssh", "status": 200}], "unknown key status"),
    ([{"http": "ftp://x"}], "http: must be an http"),
    ([{"http": "http://u:hunter2@x/", "status": 999}], "status must be an HTTP status"),
    ([{"http": "http://x/", "timeout": 0}], "timeout must be"),
    ([{"process": "a b"}], "name without spaces"),
    ([{"process": "sshd", "min_count": 0}], "min_count"),
    ([{"tls": 443, "warn_days": 5, "critical_days": 10}], "critical_days must not exceed"),
])
def test_bad_declarations_get_one_clear_message(entries, fragment):
    problems = svc.services_problems(entries)
    assert len(problems) == 1 and fragment in problems[0], problems
    assert "hunter2" not in problems[0]


def test_good_declarations_pass_and_the_module_check_names_the_variable():
    good = [{"unit": "ssh.service"}, {"tcp": 22}, {"tcp": "[::1]:22"}, {"tcp": "10.0.0.1:5432"},
            {"http": "https://127.0.0.1/healthz", "status": [200, 204], "timeout": 1.5},
            {"process": "sshd", "min_count": 1}, {"tls": "127.0.0.1:443", "server_name": "www.example.org",
                                                   "warn_days": 20, "critical_days": 5}]
    assert svc.services_problems(good) == []
    hi_params = dict(module_utils_defaults(), services=[{"tcp": 0}])
    ((_options, message),) = [p for p in validation.health_problems(hi_params) if p[0] == ("services",)]
    assert message.startswith("services (health_services): item 1: tcp:")


def module_utils_defaults():
    import importlib

    from fleetcare.collection import PACKAGE

    hi = importlib.import_module(f"{PACKAGE}.plugins.module_utils.health_inspection")
    return {name: opt.get("default") for name, opt in hi.ARGUMENT_SPEC.items()}


# ---------------------------------------------------------------- parsers (real output)

def test_pg_clusters_from_etc_postgresql(tmp_path):
    main = tmp_path / "etc/postgresql/15/main"
    main.mkdir(parents=True)
    # a Debian 12 postgresql.conf (trimmed): commented defaults, then the cluster's port
    (main / "postgresql.conf").write_text("#port = 5432\t\t\t\t# (change requires restart)\n"
                                          "port = 5433\t\t\t\t# (change requires restart)\n")
    (tmp_path / "etc/postgresql/16/second").mkdir(parents=True)
    (tmp_path / "etc/postgresql/16/second/postgresql.conf").write_text("port='5434'\n")
    clusters = svc.pg_clusters(str(tmp_path))
    assert [(c["version"], c["cluster"], c["port"]) for c in clusters] == [("15", "main", 5433),
                                                                           ("16", "second", 5434)]
    assert svc.pg_clusters(str(tmp_path / "none"))[0]["port"] == 5432


def test_psql_row_primary_and_standby():
    assert svc.parse_pg_row("6|100|f|\n") == {"connections": 6, "max_connections": 100, "in_recovery": False,
                                              "lag_seconds": None}
    standby = svc.parse_pg_row("2|100|t|42.618301\n")
    assert standby["in_recovery"] and standby["lag_seconds"] == 42.6
    with pytest.raises(svc.CheckError):
        svc.parse_pg_row("psql: error: something\n")


# mysql -N -B -e "SHOW GLOBAL STATUS LIKE 'Threads_connected'; SHOW GLOBAL VARIABLES LIKE
# 'max_connections'; SHOW SLAVE STATUS\G" against a MariaDB 10.11 replica (trimmed)
MYSQL_REPLICA = """Threads_connected\t3
max_connections\t151
*************************** 1. row ***************************
                Slave_IO_State: Waiting for master to send event
                   Master_Host: 10.0.0.5
                   Master_User: repl
              Slave_IO_Running: Yes
             Slave_SQL_Running: No
                    Last_Error: Error 'Duplicate entry' on query; password=hunter2
         Seconds_Behind_Master: NULL
"""


def test_mysql_output_primary_and_broken_replica():
    primary = svc.parse_mysql_output("Threads_connected\t1\nmax_connections\t151\n")
    assert primary == {"connections": 1, "max_connections": 151, "replica": None}
    replica = svc.parse_mysql_output(MYSQL_REPLICA)["replica"]
    assert replica["io_running"] and not replica["sql_running"]
    assert replica["lag_seconds"] is None and replica["master_host"] == "10.0.0.5"
    assert "hunter2" not in replica["last_error"]


# INFO memory of redis 7.0 (Debian 12), trimmed; lines end in CRLF
REDIS_INFO = ("# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\nused_memory_rss:9703424\r\n"
              "maxmemory:2097152\r\nmaxmemory_human:2.00M\r\nmaxmemory_policy:noeviction\r\n")


def test_redis_info_and_conf():
    info = svc.parse_redis_info(REDIS_INFO)
    assert info["used_memory"] == "1048576" and info["maxmemory"] == "2097152"
    conf = svc.parse_redis_conf("bind 127.0.0.1 -::1\nport 6380\n# requirepass old\nrequirepass s3cret\n")
    assert conf == {"port": 6380, "unixsocket": "", "password": "s3cret", "bind": "127.0.0.1"}


def test_systemctl_show_blocks_in_order():
    text = ("Id=ssh.service\nLoadState=loaded\nActiveState=active\nSubState=running\n\n"
            "Id=nope.service\nLoadState=not-found\nActiveState=inactive\nSubState=dead\n")
    first, second = svc.parse_systemctl_show(text)
    assert first["ActiveState"] == "active" and second["LoadState"] == "not-found"


# /proc/net/tcp with sshd on 0.0.0.0:22 listening and one established connection
TCP = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
       "   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1\n"
       "   1: 0100007F:0016 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 4343 1\n")
TCP6 = ("  sl  local_address                         remote_address                        st\n"
        "   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A "
        "00000000:00000000 00:00000000 00000000   33        0 5151 1\n")


def test_listening_sockets_with_their_process(tmp_path):
    (tmp_path / "proc/net").mkdir(parents=True)
    (tmp_path / "proc/net/tcp").write_text(TCP)
    (tmp_path / "proc/net/tcp6").write_text(TCP6)
    fd = tmp_path / "proc/321/fd"
    fd.mkdir(parents=True)
    (tmp_path / "proc/321/comm").write_text("sshd\n")
    os.symlink("socket:[4242]", fd / "3")
    status, severity, evidence, metrics = svc.check_listening(params(), Host(), str(tmp_path))
    assert (status, severity) == ("pass", "info")
    assert evidence["listening"] == [{"address": "0.0.0.0", "port": 22, "process": "sshd", "pid": 321},
                                     {"address": "::1", "port": 8080, "process": "?", "pid": None}]
    assert evidence["ports"] == [22, 8080] and metrics[0]["value"] == 2.0
    with pytest.raises(svc.NotApplicable, match="health_listening_enabled"):
        svc.check_listening(params(listening_enabled=False), Host(), str(tmp_path))


def test_listening_on_this_machine_finds_a_socket_we_open():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        port = server.getsockname()[1]
        _s, _sev, evidence, _m = svc.check_listening(params(), Host())
        mine = [e for e in evidence["listening"] if e["port"] == port]
        assert mine and mine[0]["pid"] == os.getpid()
    finally:
        server.close()


# ---------------------------------------------------------------- declared checks against real servers


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        code = {"/ok": 200, "/broken": 500, "/slow": 200, "/moved": 302}.get(self.path, 404)
        if self.path == "/slow":
            time.sleep(0.6)
        self.send_response(code)
        if code == 302:
            self.send_header("Location", "/ok")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"hi")

    def log_message(self, *args):
        pass


@pytest.fixture
def web():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_500_fails_and_200_passes(web):
    entries = [{"http": web + "/ok"}, {"http": web + "/broken"}, {"http": web + "/moved", "status": 302},
               {"http": web.replace("http://", "http://user:hunter2@") + "/ok"}]
    status, severity, evidence, _m = svc.check_http(params(services=entries), Host())
    assert (status, severity) == ("fail", "major")
    ok, broken, moved, with_password = evidence["checks"]
    assert broken["status"] == 500 and not broken["ok"]
    assert ok["ok"] and moved["ok"] and moved["status"] == 302 and with_password["ok"]
    assert with_password["check"] == web.replace("http://", "http://user:<redacted>@") + "/ok"
    assert evidence["failed"] == [web + "/broken"]
    assert "hunter2" not in repr(evidence)


def test_http_too_slow_fails(web):
    _s, _sev, evidence, _m = svc.check_http(params(services=[{"http": web + "/slow", "timeout": 0.2}]), Host())
    (check,) = evidence["checks"]
    assert not check["ok"] and check["status"] is None and check["error"]


def test_tcp_open_passes_and_closed_fails():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
    try:
        entries = [{"tcp": server.getsockname()[1]}, {"tcp": f"127.0.0.1:{closed.getsockname()[1]}"}]
        status, _sev, evidence, metrics = svc.check_tcp(params(services=entries), Host())
    finally:
        server.close()
        closed.close()
    assert status == "fail"
    ok, refused = evidence["checks"]
    assert ok["ok"] and not refused["ok"] and "refused" in refused["error"].lower()
    assert [m["value"] for m in metrics] == [1.0, 0.0]


def test_process_check_on_this_machine():
    me = Path("/proc/self/comm").read_text().strip()
    entries = [{"process": me}, {"process": "no-such-daemon-xyz"}, {"process": me, "min_count": 100000}]
    status, _sev, evidence, _m = svc.check_processes(params(services=entries), Host())
    assert status == "fail"
    found, missing, too_few = evidence["checks"]
    assert found["ok"] and found["running"] >= 1
    assert not missing["ok"] and missing["running"] == 0
    assert not too_few["ok"]


def test_units_need_systemd_and_nothing_declared_is_not_applicable():
    with pytest.raises(svc.NotApplicable):
        svc.check_units(params(), Host())
    with pytest.raises(svc.CheckError, match="systemd is not PID 1"):
        svc.check_units(params(services=[{"unit": "ssh.service"}]), Host())


@pytest.fixture
def tls_server(tmp_path):
    """A real TLS server on 127.0.0.1 with a self-signed certificate valid for 3 days (openssl)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "3", "-subj", "/CN=svc.example.test"], check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    stop = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def test_tls_endpoint_expiring_in_3_days_fails_critical(tls_server):
    entries = [{"tls": tls_server, "server_name": "svc.example.test"}]
    status, severity, evidence, metrics = svc.check_tls(params(services=entries), Host())
    assert (status, severity) == ("fail", "critical")
    (check,) = evidence["checks"]
    assert check["subject_cn"] == "svc.example.test" and 2 < check["days_left"] <= 3
    assert any(m["name"] == "service_tls_days_left" for m in metrics)
    status, severity, _e, _m = svc.check_tls(params(services=[dict(entries[0], warn_days=2, critical_days=1)]),
                                             Host())
    assert status == "pass"


# ---------------------------------------------------------------- databases, not installed / down


def test_databases_not_installed_are_not_applicable(tmp_path):
    for check in (svc.check_postgresql, svc.check_mysql):
        with pytest.raises(svc.NotApplicable, match="not installed"):
            check(params(), Host(), 0, str(tmp_path))
    with pytest.raises(svc.NotApplicable, match="not installed"):
        svc.check_redis(params(), Host(), str(tmp_path))


def test_redis_installed_and_down_fails_critical(tmp_path):
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/redis-server").write_text("")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    (tmp_path / "etc/redis").mkdir(parents=True)
    (tmp_path / "etc/redis/redis.conf").write_text(f"port {port}\nrequirepass hunter2\n")
    try:
        status, severity, evidence, _m = svc.check_redis(params(), Host(), str(tmp_path))
    finally:
        closed.close()
    assert (status, severity) == ("fail", "critical") and evidence["accepting"] is False
    assert evidence["auth"] is True and "hunter2" not in repr(evidence)


def test_redis_protocol_against_a_minimal_real_server(tmp_path):
    """A socket server speaking RESP the way redis-server does (AUTH, PING, INFO memory)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    seen = []

    def serve():
        conn, _ = server.accept()
        with conn:
            data = b""
            while data.count(b"\r\n") < 5:  # AUTH: *2, $4, AUTH, $7, password
                data += conn.recv(4096)
            conn.sendall(b"+OK\r\n")
            while data.count(b"\r\n") < 13:  # then PING (3 lines) and INFO memory (5)
                data += conn.recv(4096)
            seen.append(data)
            conn.sendall(b"+PONG\r\n$%d\r\n%s\r\n" % (len(REDIS_INFO), REDIS_INFO.encode()))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    conf = {"port": server.getsockname()[1], "unixsocket": "", "password": "hunter2", "bind": "127.0.0.1"}
    pong, info = svc.redis_ask(conf, 2.0)
    thread.join()
    server.close()
    assert pong == "PONG" and svc.parse_redis_info(info)["maxmemory"] == "2097152"
    assert seen[0].startswith(b"*2\r\n$4\r\nAUTH\r\n$7\r\nhunter2\r\n")


@pytest.mark.parametrize("text", [
    "ERROR 1396 (HY000): CREATE USER 'app'@'%' IDENTIFIED BY 'hunter2' failed",
    "psql: error: password=hunter2 host=/run/postgresql",
    "Last_Error: ALTER USER x IDENTIFIED WITH mysql_native_password BY 'hunter2'",
    "dial redis://:hunter2@127.0.0.1:6379 failed",
])
def test_scrub_hides_passwords_inside_lines(text):
    assert "hunter2" not in svc.scrub(text)


def test_the_error_line_is_the_one_that_says_what_failed():
    # psql run as postgres from /root, the server stopped (Debian 12, PostgreSQL 15)
    err = ('could not change directory to "/root": Permission denied\n'
           'psql: error: connection to server on socket "/var/run/postgresql/.s.PGSQL.5432" failed: '
           'No such file or directory\n\tIs the server running locally and accepting connections on that socket?\n')
    assert svc._first_line(err).startswith("psql: error: connection to server on socket")


def test_tls_endpoint_without_a_handshake_fails_critical():
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    try:
        status, severity, evidence, _m = svc.check_tls(params(services=[{"tls": closed.getsockname()[1]}]), Host())
    finally:
        closed.close()
    assert (status, severity) == ("fail", "critical") and evidence["checks"][0]["error"]
