"""health_inspect's hardware, kernel, certificate-discovery and performance-evidence checks
(module_utils/health_system.py, health_certs.py): parsers against real-format fixtures, and real
parts on this machine: a TLS server on 127.0.0.1 found by the handshake, a full tmpfs, a real
zombie, a busy process, the system CA store left out."""

from __future__ import annotations

import importlib
import json
import os
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from ansible_collections.fleetcare.ops.plugins.module_utils import health_certs as hc
from ansible_collections.fleetcare.ops.plugins.module_utils import health_system as hs
from ansible_collections.fleetcare.ops.plugins.module_utils import sockets, x509
from ansible_collections.fleetcare.ops.plugins.module_utils.health_checks import BY_ID

from fleetcare.collection import PACKAGE

hi = importlib.import_module(f"{PACKAGE}.plugins.module_utils.health_inspection")
ROOT = Path(__file__).resolve().parents[3]
PARAMS = {name: opt.get("default") for name, opt in hi.ARGUMENT_SPEC.items()}


def make_ctx(root, **overrides):
    return hi.Context(dict(PARAMS, **overrides), root=str(root))


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "health"
NO_DISCOVERY = {"cert_discover_ports": False, "cert_discover_services": False, "cert_discover_dirs": []}


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# ---------------------------------------------------------------- certificates made by openssl


def openssl_cert(directory: Path, name: str, days: int, ca: bool = False, cn: str | None = None) -> Path:
    """A real self-signed certificate (and its key) from the openssl command."""
    key, crt = directory / f"{name}.key", directory / f"{name}.pem"
    ext = "basicConstraints=critical,CA:TRUE" if ca else "basicConstraints=CA:FALSE"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-keyout", str(key), "-out", str(crt), "-days", str(days),
                    "-subj", f"/CN={cn or name}", "-addext", ext, "-addext", f"subjectAltName=DNS:{cn or name}"],
                   check=True, capture_output=True)
    return crt


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    base = tmp_path_factory.mktemp("certs")
    return {"leaf3": openssl_cert(base, "leaf3", 3, cn="web.example.test"),
            "leaf90": openssl_cert(base, "leaf90", 90),
            "ca": openssl_cert(base, "ca", 3650, ca=True)}


def test_certificate_details_tell_a_ca_from_a_leaf(certs):
    (leaf,) = x509.pem_certificates(certs["leaf3"].read_text())
    (ca,) = x509.pem_certificates(certs["ca"].read_text())
    info = x509.certificate_details(leaf)
    assert (info["is_ca"], info["self_signed"], info["dns_names"]) == (False, True, ["web.example.test"])
    assert 2.9 < (info["not_after"] - time.time()) / 86400 <= 3.0
    assert x509.certificate_details(ca)["is_ca"] is True


# ---------------------------------------------------------------- software RAID


def test_mdstat_degraded_arrays_from_real_text():
    arrays = {a["name"]: a for a in hs.parse_mdstat(fixture("mdstat-degraded"))}
    assert set(arrays) == {"md0", "md1", "md2"}
    assert arrays["md1"]["level"] == "raid5" and arrays["md1"]["map"] == "UU_"
    assert (arrays["md1"]["action"], arrays["md1"]["progress_pct"]) == ("recovery", 27.3)
    assert arrays["md0"]["failed_members"] == ["sdb1"]
    assert hs.md_problems(arrays["md2"]) == []  # raid0 has no redundancy map to lose


def test_raid_check_from_a_fixture_path(tmp_path):
    ctx = make_ctx(Path("/"), raid_mdstat_path=str(FIXTURES / "mdstat-degraded"))
    status, severity, evidence, metrics = hs.check_raid(ctx)
    assert (status, severity, evidence["degraded"]) == ("fail", "major", ["md1", "md0"])
    assert {m["labels"]["array"]: m["value"] for m in metrics} == {"md1": 1.0, "md0": 1.0, "md2": 0.0}
    assert hs.check_raid(make_ctx(Path("/"), raid_mdstat_path=str(FIXTURES / "mdstat-clean")))[0] == "pass"
    inactive = hs.check_raid(make_ctx(Path("/"), raid_mdstat_path=str(FIXTURES / "mdstat-inactive")))
    assert inactive[:2] == ("fail", "critical")
    finding, _ = hi.run_check(make_ctx(tmp_path), BY_ID["HLTH-RAID-001"], hs.check_raid)
    assert finding["status"] == "not_applicable" and "md driver" in finding["evidence"]["reason"]


# ---------------------------------------------------------------- kernel tables, zombies


def test_file_nr_from_real_text(tmp_path):
    assert hs.parse_file_nr(fixture("file-nr")) == (1496, 2466170)
    write(tmp_path, "proc/sys/fs/file-nr", "9000\t0\t10000\n")
    status, severity, evidence, _ = hs.check_file_descriptors(make_ctx(tmp_path))
    assert (status, severity, evidence["used_pct"]) == ("fail", "major", 90.0)


def test_conntrack_not_loaded_and_nearly_full(tmp_path):
    finding, _ = hi.run_check(make_ctx(tmp_path), BY_ID["HLTH-CONN-001"], hs.check_conntrack)
    assert finding["status"] == "not_applicable"
    write(tmp_path, "proc/sys/net/netfilter/nf_conntrack_count", "65000\n")
    write(tmp_path, "proc/sys/net/netfilter/nf_conntrack_max", "65536\n")
    assert hs.check_conntrack(make_ctx(tmp_path))[:2] == ("fail", "critical")


def test_a_real_zombie_is_counted_with_its_parent(tmp_path):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.time() + 10
        while time.time() < deadline and Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z":
            time.sleep(0.01)
        ctx = make_ctx(Path("/"), zombie_warn_count=1)
        status, _sev, evidence, _ = hs.check_zombies(ctx)
        assert status == "fail" and evidence["zombies"] >= 1
        assert any(p["parent"].endswith(f"(pid {os.getpid()})") for p in evidence["parents"]), evidence
    finally:
        os.waitpid(pid, 0)


# ---------------------------------------------------------------- kernel log, SSH


KERNEL_LINES = """\
[    0.000000] Linux version 6.1.0-27-amd64 (debian-kernel@lists.debian.org)
[ 1234.567890] mce: [Hardware Error]: Machine check events logged
[ 2345.678901] blk_update_request: I/O error, dev sdb, sector 123456 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 0
[ 2345.700000] Buffer I/O error on dev sdb1, logical block 15432, async page read
[ 2400.000000] EXT4-fs error (device sda1): ext4_find_entry:1455: inode #2: comm ls: reading directory lblock 0
[ 2500.000000] e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: None
""".splitlines()


def test_kernel_lines_are_classified():
    found = hs.classify_kernel_lines(KERNEL_LINES)
    assert len(found["machine_check"]) == 1
    assert len(found["io_error"]) == 3


def test_kernel_log_unreadable_in_a_container_is_not_applicable(tmp_path, monkeypatch):
    write(tmp_path, ".dockerenv", "")

    def denied(argv, **_kw):
        return 1, "", "dmesg: read kernel buffer failed: Operation not permitted\n"

    monkeypatch.setattr(hs, "run_cmd", denied)
    finding, _ = hi.run_check(make_ctx(tmp_path), BY_ID["HLTH-KERN-001"], hs.check_kernel_log)
    assert finding["status"] == "not_applicable"
    assert "container cannot read the host's kernel log" in finding["evidence"]["reason"]


def test_kernel_log_on_this_machine_reads_a_source_or_says_why():
    finding, _ = hi.run_check(make_ctx(Path("/")), BY_ID["HLTH-KERN-001"], hs.check_kernel_log)
    if finding["status"] == "not_applicable":
        assert "kernel log" in finding["evidence"]["reason"]
    else:
        assert finding["evidence"]["source"] in ("journal", "dmesg"), finding


SSHD_LINES = """\
Invalid user oracle from 198.51.100.7 port 40022
Failed password for invalid user oracle from 198.51.100.7 port 40022 ssh2
Failed password for root from 203.0.113.5 port 52344 ssh2
Failed password for root from 203.0.113.5 port 52344 ssh2
Connection closed by authenticating user root 203.0.113.5 port 52344 [preauth]
Connection closed by authenticating user git 192.0.2.44 port 61000 [preauth]
pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.5  user=root
Accepted publickey for deploy from 192.0.2.10 port 50000 ssh2: ED25519 SHA256:AbCdEf
""".splitlines()


def test_ssh_failures_count_attempts_and_sources():
    count, sources = hs.ssh_failures(SSHD_LINES)
    # three "Failed password" lines, and the key-probing connection from 192.0.2.44 once
    assert count == 4
    assert sources == {"198.51.100.7": 1, "203.0.113.5": 2, "192.0.2.44": 1}


def test_ssh_check_grades_per_hour(tmp_path, monkeypatch):
    write(tmp_path, "run/systemd/journal/socket", "")
    write(tmp_path, "usr/sbin/sshd", "")
    monkeypatch.setattr(hs, "run_cmd", lambda argv, **_kw: (0, "\n".join(SSHD_LINES * 10), ""))
    status, severity, evidence, _ = hs.check_ssh_failures(make_ctx(tmp_path, ssh_window_minutes=30))
    # 30 "Failed" lines and one key-probing connection (the same connection repeated) in 30 minutes
    assert (status, severity, evidence["failed_per_hour"]) == ("fail", "minor", 62.0)
    assert evidence["top_sources"][0] == {"address": "203.0.113.5", "failed": 20}


# ---------------------------------------------------------------- SMART, EDAC


def test_smart_not_applicable_in_a_container_or_vm(tmp_path):
    write(tmp_path, ".dockerenv", "")
    finding, _ = hi.run_check(make_ctx(tmp_path), BY_ID["HLTH-SMART-001"], hs.check_smart)
    assert finding["status"] == "not_applicable" and "docker container" in finding["evidence"]["reason"]
    vm = tmp_path / "vm"
    write(vm, "sys/class/dmi/id/sys_vendor", "QEMU\n")
    finding, _ = hi.run_check(make_ctx(vm), BY_ID["HLTH-SMART-001"], hs.check_smart)
    assert "virtual machine (qemu)" in finding["evidence"]["reason"]


def test_smartctl_json_health():
    text = json.dumps({"model_name": "WDC WD40EFRX", "smart_status": {"passed": False}})
    assert hs.smart_status(text) == (False, "WDC WD40EFRX")


def test_edac_counts(tmp_path):
    write(tmp_path, "sys/devices/system/edac/mc/mc0/ce_count", "3\n")
    write(tmp_path, "sys/devices/system/edac/mc/mc0/ue_count", "0\n")
    assert hs.check_edac(make_ctx(tmp_path))[:2] == ("fail", "major")
    assert hs.check_edac(make_ctx(tmp_path, edac_ce_warn_count=5))[0] == "pass"
    write(tmp_path, "sys/devices/system/edac/mc/mc1/ue_count", "1\n")
    assert hs.check_edac(make_ctx(tmp_path, edac_ce_warn_count=5))[:2] == ("fail", "critical")


# ---------------------------------------------------------------- service configuration


def test_nginx_references_from_a_real_site():
    refs = hc.nginx_references(fixture("nginx-site.conf"), "/etc/nginx/sites-enabled/default")
    assert [(r["path"], r["source"]) for r in refs] == [
        ("/etc/ssl/certs/www.example.test.pem", "/etc/nginx/sites-enabled/default:14"),
        ("/etc/nginx/tls/api.crt", "/etc/nginx/sites-enabled/default:30")]
    assert refs[0]["names"] == ["www.example.test", "example.test"] and refs[0]["ports"] == [443, 443]
    assert refs[1]["names"] == ["api.example.test"] and refs[1]["ports"] == [8443]


def test_postfix_references_from_a_real_main_cf():
    refs = hc.postfix_references(fixture("postfix-main.cf"), "/etc/postfix/main.cf")
    assert [r["path"] for r in refs] == ["/etc/ssl/certs/ssl-cert-snakeoil.pem", "/etc/postfix/rsa.key",
                                         "/etc/postfix/rsa.pem"]
    assert refs[0]["source"] == "/etc/postfix/main.cf:19"


def test_dovecot_apache_haproxy_references(tmp_path):
    dovecot = hc.dovecot_references("ssl = required\nssl_cert = </etc/dovecot/private/dovecot.pem\n", "d.conf")
    assert dovecot[0]["path"] == "/etc/dovecot/private/dovecot.pem"
    apache = hc.apache_references(textwrap.dedent("""\
        <VirtualHost *:443>
            ServerName shop.example.test
            SSLEngine on
            SSLCertificateFile /etc/ssl/certs/shop.pem
        </VirtualHost>
        """), "a.conf")
    assert (apache[0]["path"], apache[0]["names"], apache[0]["ports"]) == ("/etc/ssl/certs/shop.pem",
                                                                           ["shop.example.test"], [443])
    write(tmp_path, "etc/haproxy/certs/a.pem", "x")
    write(tmp_path, "etc/haproxy/certs/b.pem", "x")
    haproxy = hc.haproxy_references("frontend web\n    bind :::443 v4v6 ssl crt /etc/haproxy/certs/ alpn h2\n",
                                    "h.cfg", str(tmp_path))
    assert [r["path"] for r in haproxy] == ["/etc/haproxy/certs/a.pem", "/etc/haproxy/certs/b.pem"]


def test_discovery_names_where_and_what_and_leaves_the_ca_store_out(tmp_path, certs):
    root = tmp_path
    site = fixture("nginx-site.conf").replace("/etc/ssl/certs/www.example.test.pem", "/etc/nginx/tls/site.pem")
    write(root, "etc/nginx/sites-enabled/default", site)
    write(root, "etc/nginx/tls/site.pem", certs["leaf3"].read_text())
    write(root, "etc/nginx/tls/api.crt", certs["leaf90"].read_text())
    # the CA store: a CA in the ca-certificates tree, its link and hash link, and the bundle
    write(root, "usr/share/ca-certificates/mozilla/Root.crt", certs["ca"].read_text())
    (root / "etc/ssl/certs").mkdir(parents=True)
    os.symlink("/usr/share/ca-certificates/mozilla/Root.crt", root / "etc/ssl/certs/Root.pem")
    os.symlink("Root.pem", root / "etc/ssl/certs/abcd1234.0")
    write(root, "etc/ssl/certs/ca-certificates.crt", certs["ca"].read_text() * 3)
    write(root, "etc/ssl/certs/local-ca.pem", certs["ca"].read_text())  # a CA file outside the tree
    write(root, "etc/ssl/certs/ssl-cert-snakeoil.pem", certs["leaf90"].read_text())
    ctx = make_ctx(root, cert_discover_ports=False)
    status, severity, evidence, _ = hc.check_certs_in_use(ctx)
    assert (status, severity) == ("fail", "critical")
    assert evidence["subject_cn"] == "web.example.test" and evidence["days_left"] <= 3
    assert evidence["found_in"] == ["/etc/nginx/tls/site.pem (referenced by nginx /etc/nginx/sites-enabled/default:14)"]
    assert evidence["served_by"] == ["nginx"]
    assert not any(c["is_ca"] for c in evidence["certificates"])
    # leaf90 is both nginx's api.crt and the snakeoil file: one entry, both places
    (other,) = [c for c in evidence["certificates"] if c["subject_cn"] == "leaf90"]
    assert other["found_in"] == ["/etc/nginx/tls/api.crt (referenced by nginx /etc/nginx/sites-enabled/default:30)",
                                 "/etc/ssl/certs/ssl-cert-snakeoil.pem (leaf under /etc/ssl/certs)"]
    assert len(evidence["certificates"]) == 2


def test_the_real_system_ca_store_is_not_reported():
    assert len(os.listdir("/etc/ssl/certs")) > 100, "this machine has the ca-certificates store"
    found, sources = hc.discover(make_ctx(Path("/"), cert_discover_ports=False, cert_discover_services=False))
    assert sources["files_scanned"] < 20  # the store's links are not even opened
    assert not any(c["is_ca"] for c in found.by_print.values())
    assert not any("/usr/share/ca-certificates" in w for c in found.by_print.values() for w in c["found_in"])


def test_configured_paths_keep_working_and_are_not_reported_twice(tmp_path, certs):
    write(tmp_path, "etc/ssl/fleetcare/app.pem", certs["leaf3"].read_text())
    ctx = make_ctx(tmp_path, cert_paths=[str(tmp_path / "etc/ssl/fleetcare/*.pem")], cert_discover_ports=False)
    assert hi.check_certs(ctx)[:2] == ("fail", "critical")
    finding, _ = hi.run_check(ctx, BY_ID["HLTH-CERT-002"], hc.check_certs_in_use)
    assert finding["status"] == "not_applicable", finding


# ---------------------------------------------------------------- a real TLS server on 127.0.0.1


SNI_ASKED: list[str] = []  # the server names the test TLS server was asked for


@pytest.fixture
def tls_server(certs):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certs["leaf3"]), str(certs["leaf3"].with_suffix(".key")))
    context.sni_callback = lambda _sock, name, _ctx: SNI_ASKED.append(name)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (OSError, ssl.SSLError):
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join(2)
    listener.close()


def test_handshake_discovery_finds_a_real_tls_server(tls_server, certs):
    ctx = make_ctx(Path("/"), cert_discover_services=False, cert_discover_dirs=[], cert_probe_max_ports=4096,
                   cert_probe_timeout=2.0)
    status, severity, evidence, _ = hc.check_certs_in_use(ctx)
    assert f"127.0.0.1:{tls_server}" in evidence["sources"]["tls_ports"]
    (ours,) = [c for c in evidence["certificates"] if c["subject_cn"] == "web.example.test"]
    assert ours["days_left"] <= 3 and ours["found_in"][0].startswith(f"TLS port 127.0.0.1:{tls_server}")
    assert ours["served_by"] == [f"{Path('/proc/self/comm').read_text().strip()} (pid {os.getpid()}) "
                                 f"on port {tls_server}"]
    assert (status, severity) == ("fail", "critical")


def test_a_port_that_never_answers_costs_one_timeout(tls_server):
    silent = socket.create_server(("127.0.0.1", 0))  # accepts (backlog) but never speaks
    try:
        port = silent.getsockname()[1]
        started = time.monotonic()
        probes = hc.PortProbes([{"address": "127.0.0.1", "port": port, "inode": 0},
                                {"address": "127.0.0.1", "port": tls_server, "inode": 0}], {}, 1.0)
        results = probes.results()
        assert time.monotonic() - started < 5  # bounded, not hung (loose: the machine is shared)
        assert isinstance(results[("127.0.0.1", tls_server)], bytes)
        assert results[("127.0.0.1", port)].startswith("no TLS")
    finally:
        silent.close()


def test_handshake_sends_the_name_a_service_gives_its_port(tls_server):
    probes = hc.PortProbes([{"address": "127.0.0.1", "port": tls_server, "inode": 0}],
                           {tls_server: "shop.example.test"}, 2.0)
    assert isinstance(probes.results()[("127.0.0.1", tls_server)], bytes)
    assert "shop.example.test" in SNI_ASKED


# ---------------------------------------------------------------- memory-backed filesystems


def test_proc_net_tcp_listeners_from_real_text():
    text = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
            "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  0  0 4242 1 0 100 0 0 10 0\n"
            "   1: 0100007F:A3C4 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  0  0 4243 1 0 20 4 30 10\n")
    found = [(e["address"], e["port"], e["inode"]) for e in sockets.parse_proc_net(text, "tcp")]
    assert found == [("127.0.0.1", 8080, "4242")]
    six = ("  sl  local_address                         remote_address                        st\n"
           "   0: 00000000000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A "
           "00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0\n")
    assert [(e["address"], e["port"], e["inode"]) for e in sockets.parse_proc_net(six, "tcp6")] == [("::1", 443, "777")]


def test_read_only_memory_filesystems_are_left_out():
    mounts = host_mounts("tmpfs /run tmpfs rw,nosuid,nodev,size=1600000k 0 0\n"
                         "tmpfs /proc/acpi tmpfs ro,relatime,size=0k 0 0\n"
                         "ramfs /run/credentials/x.service ramfs ro,nosuid 0 0\n"
                         "/dev/sda1 / ext4 rw,relatime 0 0\n")
    picked = hi.select_mounts(mounts, PARAMS["disk_fstypes"], PARAMS["disk_exclude_mounts"])
    assert [m[1] for m in picked] == ["/run", "/"]


def host_mounts(text):
    from ansible_collections.fleetcare.ops.plugins.module_utils.host import parse_mounts

    return parse_mounts(text)


FULL_TMPFS = textwrap.dedent("""\
    set -e
    mount -t tmpfs -o size=1m fleetcare-test {mnt}
    dd if=/dev/zero of={mnt}/fill bs=64k count=64 2>/dev/null || true
    {python} -c '{code}'
    """)
CHECK_CODE = ("import importlib.util, json; import fleetcare.collection; "
              "spec = importlib.util.spec_from_file_location(\"hi\", {module!r}); "
              "hi = importlib.util.module_from_spec(spec); spec.loader.exec_module(hi); "
              "params = dict((k, v.get(\"default\")) for k, v in hi.ARGUMENT_SPEC.items()); "
              "print(json.dumps(hi.check_disk_space(hi.Context(params))[2]))")


def test_a_full_tmpfs_fails_disk_space_by_default(tmp_path):
    """A real tmpfs, mounted in a private mount namespace (nothing leaks out; without root, in a
    user namespace of its own), filled to 100 %, fails HLTH-DISK-001 with the default types."""
    mnt = tmp_path / "shm"
    mnt.mkdir()
    code = CHECK_CODE.format(module=str(hi.__file__))
    script = FULL_TMPFS.format(mnt=mnt, python=sys.executable, code=code.replace("'", "'\\''"))
    namespace = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        namespace[1:1] = ["--user", "--map-root-user"]
    proc = subprocess.run([*namespace, "sh", "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    evidence = json.loads(proc.stdout.strip().splitlines()[-1])
    full = [o for o in evidence["over_threshold"] if o["mount"] == str(mnt)]
    assert full == [{"mount": str(mnt), "used_pct": 100.0}], evidence
    assert evidence["used_pct"] == 100.0 and evidence["threshold_pct"] == PARAMS["disk_warn_pct"]


# ---------------------------------------------------------------- who is busy


DISK_BEFORE = {"sda": (1000, 4000, 500, 3000, 9000), "loop0": (5, 1, 0, 0, 1)}
DISK_AFTER = {"sda": (1100, 4800, 600, 4200, 9200), "loop0": (9, 2, 0, 0, 2)}


def test_busiest_devices_with_await():
    (sda,) = hs.busiest_devices(DISK_BEFORE, DISK_AFTER, 0.25)
    # 200 I/Os took 800 + 1200 ms: await 10 ms; 200 ms busy of 250 ms
    assert sda == {"device": "sda", "util_pct": 80.0, "await_ms": 10.0, "reads_per_s": 400.0,
                   "writes_per_s": 400.0}
    detail = hs.parse_diskstats_detail("   8       0 sda 1000 0 2000 4000 500 0 80 3000 0 9000 7000 0 0 0 0\n")
    assert detail == {"sda": (1000, 4000, 500, 3000, 9000)}


def test_top_processes_keeps_the_busiest_few_and_leaves_out_idle_ones():
    # pid: (comm, state, ppid, cpu ticks, rss pages, io bytes)
    before = {pid: (f"p{pid}", "S", 1, 0, 10, 0) for pid in range(1, 9)}
    after = {pid: (f"p{pid}", "S", 1, pid if pid > 1 else 0, 10 * pid, 100 * pid) for pid in range(1, 9)}
    after[9] = ("new", "S", 1, 50, 1, None)  # started in the window: no CPU is charged to it
    before[3] = ("other", "S", 1, 0, 10, 0)  # pid reused by another command: not charged either
    top = hs.top_processes(before, after, 1.0, root="/nonexistent")
    assert [p["pid"] for p in top["by_cpu"]] == [8, 7, 6, 5, 4]
    assert len(top["by_rss"]) == hs.TOP_N and top["by_rss"][0]["pid"] == 8
    every = [p["pid"] for p in hs.top_processes(before, after, 1.0, root="/nonexistent", limit=100)["by_cpu"]]
    assert every == [8, 7, 6, 5, 4, 2]
    idle = hs.top_processes(before, {1: before[1]}, 1.0, root="/nonexistent")
    assert idle["by_cpu"] == [] and idle["by_io"] == []


def test_a_busy_process_is_named_in_a_failing_load_finding():
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        ctx = make_ctx(Path("/"))
        hs.window_start(ctx)
        time.sleep(0.6)
        findings = [{"id": "HLTH-LOAD-001", "status": "fail", "evidence": {}},
                    {"id": "HLTH-MEM-001", "status": "pass", "evidence": {}}]
        hs.performance_evidence(findings, ctx)
    finally:
        busy.kill()
        busy.wait()
    top = findings[0]["evidence"]["top_processes"]
    # only processes that used CPU in the window are listed, at most TOP_N of them: on a quiet
    # machine that can be the loop and one or two others
    assert 1 <= len(top["by_cpu"]) <= hs.TOP_N
    assert all(p["cpu_pct"] > 0 for p in top["by_cpu"])
    assert [p["cpu_pct"] for p in top["by_cpu"]] == sorted((p["cpu_pct"] for p in top["by_cpu"]), reverse=True)
    # the machine is shared, so others may be busier: the loop is measured, whatever its rank
    elapsed = ctx.after["extra_at"] - ctx.before["extra_at"]
    assert findings[0]["evidence"]["top_window_seconds"] == round(elapsed, 3) > 0
    every = hs.top_processes(ctx.before["procs"], ctx.after["procs"], elapsed, limit=100000)
    (loop,) = [p for p in every["by_cpu"] if p["pid"] == busy.pid]
    assert loop["cpu_pct"] > 5 and loop["command"] == Path(sys.executable).name[:15]
    assert top["by_rss"] and all(p["rss_bytes"] > 0 for p in top["by_rss"])
    assert "busiest_devices" in findings[0]["evidence"]
    assert findings[1]["evidence"] == {}  # a passing finding carries no extra evidence


# ---------------------------------------------------------------- switches and the whole module


def test_a_switched_off_check_still_reports_why():
    result = hi.inspect(dict(PARAMS, sample_seconds=0.01, checks_skip=["HLTH-SMART-001", "HLTH-CERT-002"]))
    by_id = {f["id"]: f for f in result["fleetcare"]["findings"]}
    assert by_id["HLTH-SMART-001"]["status"] == "not_applicable"
    assert by_id["HLTH-SMART-001"]["evidence"] == {"reason": "switched off (health_checks_skip)"}
    assert result["fleetcare"]["expected"] == len(by_id)


def test_waiting_checks_run_in_threads_inside_the_window_and_keep_their_place(monkeypatch):
    ran = {}
    # every waiting check but the switched-off one meets at the barrier: run one after another,
    # the first would wait there in vain and break it
    barrier = threading.Barrier(len(hi.WAITING_CHECKS) - 1, timeout=20)

    def waiting(check_id):
        def func(ctx):
            # the second sample of the window is taken only after the main thread's sleep
            ran[check_id] = (threading.current_thread() is not threading.main_thread(), not ctx.after)
            barrier.wait()
            return "pass", "minor", {"waited": check_id}, []
        return func

    patched = tuple((r, waiting(r["id"]) if r["id"] in hi.WAITING_CHECKS else f) for r, f in hi.CHECKS)
    monkeypatch.setattr(hi, "CHECKS", patched)
    result = hi.inspect(dict(PARAMS, sample_seconds=0.4, checks_skip=["HLTH-DB-003"], **NO_DISCOVERY))
    assert not barrier.broken
    ids = [f["id"] for f in result["fleetcare"]["findings"]]
    assert ids == [r["id"] for r, _ in hi.CHECKS]
    by_id = {f["id"]: f for f in result["fleetcare"]["findings"]}
    assert set(ran) == hi.WAITING_CHECKS - {"HLTH-DB-003"}  # a switched-off check is not started
    assert all(in_thread and in_window for in_thread, in_window in ran.values())
    for check_id in ran:
        assert by_id[check_id]["status"] == "pass" and by_id[check_id]["evidence"] == {"waited": check_id}
    assert by_id["HLTH-DB-003"]["evidence"] == {"reason": "switched off (health_checks_skip)"}


def test_unknown_check_id_to_skip_is_refused():
    (message,) = hi.validate(dict(PARAMS, checks_skip=["HLTH-SMRT-001"]))
    assert "health_checks_skip" in message and "HLTH-SMRT-001" in message
    assert any("health_fd_critical_pct" in m for m in hi.validate(dict(PARAMS, fd_critical_pct=50.0)))


def test_every_new_check_on_this_machine_gives_a_reasoned_finding():
    result = hi.inspect(dict(PARAMS, sample_seconds=0.05, **NO_DISCOVERY))
    for found in result["fleetcare"]["findings"]:
        if found["id"] in hs.PERFORMANCE_FINDINGS or found["id"] in BY_ID:
            assert found["status"] in ("pass", "fail", "error", "not_applicable")
            if found["status"] in ("error", "not_applicable"):
                assert found["evidence"]["reason"], found
            assert "traceback" not in found["evidence"], found
