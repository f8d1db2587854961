# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""Certificates in use, found without configuration (HLTH-CERT-002).

Three sources, each switchable by a module option:

- the host's own listening TCP ports (``/proc/net/tcp``, ``tcp6``): a TLS handshake from the host
  to itself on each, in parallel and bounded per port, with SNI when a name is known (a service
  configuration's server name for that port, else the host's name); the process that owns the
  socket is named from ``/proc/<pid>/fd``;
- the certificate files referenced by the configuration of nginx, Apache, Postfix, Dovecot and
  HAProxy, each with the file and line that references it;
- leaf certificates under ``/etc/ssl``: a file whose certificates are all CAs (the system store,
  its hashed links and bundle) is left out, and so is a link into the ca-certificates trees.

The same certificate found several ways is one entry listing every place (SHA-256 of its DER).
Standard library only (ssl, socket, threading): it runs on the managed host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import errno
import glob
import hashlib
import os
import re
import selectors
import socket
import ssl
import threading
import time

from ansible_collections.fleetcare.ops.plugins.module_utils.findings import NotApplicable, metric
from ansible_collections.fleetcare.ops.plugins.module_utils.sockets import listening as listening_sockets
from ansible_collections.fleetcare.ops.plugins.module_utils.host import read_optional
from ansible_collections.fleetcare.ops.plugins.module_utils.x509 import certificate_details, pem_certificates

CA_TREES = ("/usr/share/ca-certificates/", "/usr/local/share/ca-certificates/", "/etc/ssl/certs/java/")
CERT_SUFFIXES = (".pem", ".crt", ".cer", ".cert")
MAX_FILE_BYTES = 1024 * 1024
SILENT = "no TLS: no answer within the timeout"


def _path(root, absolute):
    return os.path.join(root, absolute.lstrip("/"))


# --------------------------------------------------------------------------- listening sockets


def listening_tcp(root="/"):
    """[{address, port, inode, pid, process}] of every listening TCP socket, IPv4 and IPv6 (read by
    module_utils/sockets.py), one per address and port."""
    seen, out = set(), []
    for entry in listening_sockets(root, ("tcp", "tcp6")):
        key = (entry["address"], entry["port"])
        if key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def connect_address(address):
    if address in ("0.0.0.0",):
        return "127.0.0.1"
    if address in ("::",):
        return "::1"
    return address


def client_context():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with contextlib.suppress(ssl.SSLError):
        context.set_ciphers("ALL:@SECLEVEL=0")  # an old server's certificate still counts
    return context


def _sni(name):
    return name if name and not re.match(r"^[0-9.:]+$", name) else None


class PortProbes(object):
    """One TLS handshake per listener, all at once on non-blocking sockets in one thread (a
    selector loop, not a thread per port); :meth:`results` waits at most until the deadline (start
    + timeout + a margin), so the cost is bounded whatever the ports do."""

    def __init__(self, listeners, names, timeout):
        self.listeners = listeners
        self.names = names
        self.deadline = time.monotonic() + timeout + 0.05
        self._results = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, args=(time.monotonic() + timeout,))
        self._thread.daemon = True  # a port that never answers must not keep the module alive
        self._thread.start()

    def _done(self, key, value, sel, sock):
        with contextlib.suppress(KeyError, ValueError, OSError):
            sel.unregister(sock)
        with contextlib.suppress(OSError):
            sock.close()
        with self._lock:
            self._results[key] = value

    def _step(self, key, state, sel):
        """Advance one connection: connected -> wrapped -> handshake done."""
        sock = state["sock"]
        if state["tls"] is None:
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                return self._done(key, "no TLS: %s" % os.strerror(error), sel, sock)
            state["tls"] = state["context"].wrap_socket(sock, server_hostname=_sni(self.names.get(key[1])),
                                                        do_handshake_on_connect=False)
            sel.unregister(sock)
            sock = state["sock"] = state["tls"]
            sel.register(sock, selectors.EVENT_WRITE, key)
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            return sel.modify(sock, selectors.EVENT_READ, key)
        except ssl.SSLWantWriteError:
            return sel.modify(sock, selectors.EVENT_WRITE, key)
        except (OSError, ssl.SSLError, ValueError) as exc:
            return self._done(key, "no TLS: %s" % type(exc).__name__, sel, sock)
        return self._done(key, sock.getpeercert(binary_form=True), sel, sock)

    def _loop(self, end):
        context = client_context()
        sel = selectors.DefaultSelector()
        states = {}
        for item in self.listeners:
            key = (item["address"], item["port"])
            address = connect_address(item["address"])
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            code = sock.connect_ex((address, item["port"]))
            if code not in (0, errno.EINPROGRESS, errno.EAGAIN):
                self._done(key, "no TLS: %s" % os.strerror(code), sel, sock)
                continue
            states[key] = {"sock": sock, "tls": None, "context": context}
            sel.register(sock, selectors.EVENT_WRITE, key)
        while sel.get_map() and time.monotonic() < end:
            for selected, _events in sel.select(max(0.0, end - time.monotonic())):
                key = selected.data
                try:
                    self._step(key, states[key], sel)
                except (OSError, ssl.SSLError, ValueError) as exc:
                    self._done(key, "no TLS: %s" % type(exc).__name__, sel, states[key]["sock"])
        for state in states.values():
            with contextlib.suppress(OSError):
                state["sock"].close()
        sel.close()

    def results(self):
        """{(address, port): DER, or why there is none}; ports still silent at the deadline say so."""
        self._thread.join(max(0.0, self.deadline - time.monotonic()))
        with self._lock:
            out = dict(self._results)
        for item in self.listeners:
            out.setdefault((item["address"], item["port"]), SILENT)
        return out


# --------------------------------------------------------------------------- service configuration


def _config_files(root, patterns):
    out = []
    for pattern in patterns:
        for path in sorted(glob.glob(_path(root, pattern))):
            if os.path.isfile(path) and path not in out:
                out.append(path)
    return out


def _strip_comment(line):
    return line.split("#", 1)[0].strip()


NGINX_DIRECTIVE = re.compile(r"^\s*(ssl_certificate|listen|server_name)\s+([^;]+);")
APACHE_DIRECTIVE = re.compile(r"^\s*(SSLCertificateFile|ServerName|<VirtualHost)\s+([^>\s]+)", re.I)


def nginx_references(text, source):
    """[{path, source, line, service, names, ports}] from one nginx file (block-aware enough: a
    server block's listen ports and server names go with its certificates)."""
    refs, names, ports, depth_server, depth = [], [], [], None, 0
    block_refs = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        if re.match(r"^server\s*\{", line):
            depth_server, names, ports, block_refs = depth, [], [], []
        match = NGINX_DIRECTIVE.match(line)
        if match:
            key, value = match.group(1), match.group(2).split()
            if key == "ssl_certificate" and "$" not in value[0]:
                block_refs.append({"path": value[0].strip("\"'"), "source": "%s:%d" % (source, number),
                                   "service": "nginx", "names": names, "ports": ports})
            elif key == "listen":
                port = re.search(r"(\d+)$", value[0])
                if port:
                    ports.append(int(port.group(1)))
            elif key == "server_name":
                names.extend(n for n in value if n not in ("_", "") and "*" not in n and "~" not in n)
        depth += line.count("{") - line.count("}")
        if depth_server is not None and depth <= depth_server:
            refs.extend(block_refs)
            depth_server, block_refs = None, []
    refs.extend(block_refs)
    return refs


def apache_references(text, source):
    refs, names, ports = [], [], []
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        match = APACHE_DIRECTIVE.match(line)
        if not match:
            continue
        key, value = match.group(1).lower(), match.group(2).strip("\"'")
        if key == "<virtualhost":
            names, ports = [], []
            port = re.search(r":(\d+)$", value)
            if port:
                ports.append(int(port.group(1)))
        elif key == "servername":
            names.append(value.split(":")[0])
        elif "$" not in value:
            refs.append({"path": value, "source": "%s:%d" % (source, number), "service": "apache2",
                         "names": names, "ports": ports})
    return refs


POSTFIX_KEYS = ("smtpd_tls_cert_file", "smtpd_tls_dcert_file", "smtpd_tls_eccert_file", "smtp_tls_cert_file",
                "smtpd_tls_chain_files", "smtp_tls_chain_files")


def postfix_references(text, source):
    refs = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        key, sep, value = line.partition("=")
        if not sep or key.strip() not in POSTFIX_KEYS:
            continue
        for item in re.split(r"[\s,]+", value.strip()):
            if item.startswith("/") and "$" not in item:
                refs.append({"path": item, "source": "%s:%d" % (source, number), "service": "postfix",
                             "names": [], "ports": [25, 465, 587]})
    return refs


def dovecot_references(text, source):
    refs = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        match = re.match(r"^(ssl_cert|ssl_server_cert_file)\s*=\s*<?\s*(\S+)", line)
        if match and match.group(2).startswith("/"):
            refs.append({"path": match.group(2), "source": "%s:%d" % (source, number), "service": "dovecot",
                         "names": [], "ports": [993, 995]})
    return refs


def haproxy_references(text, source, root="/"):
    refs, base = [], ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw)
        words = line.split()
        if words[:1] == ["crt-base"] and len(words) > 1:
            base = words[1]
        if not words or words[0] != "bind":
            continue
        port = re.search(r":(\d+)$", words[1]) if len(words) > 1 else None
        for i, word in enumerate(words[:-1]):
            if word != "crt":
                continue
            target = words[i + 1]
            if not target.startswith("/"):
                target = os.path.join(base or "/etc/haproxy", target)
            local = _path(root, target)
            paths = [target]
            if os.path.isdir(local):
                paths = [os.path.join(target, f) for f in sorted(os.listdir(local))]
            for item in paths:
                refs.append({"path": item, "source": "%s:%d" % (source, number), "service": "haproxy",
                             "names": [], "ports": [int(port.group(1))] if port else []})
    return refs


SERVICE_CONFIGS = (
    (("/etc/nginx/nginx.conf", "/etc/nginx/conf.d/*.conf", "/etc/nginx/sites-enabled/*"), nginx_references),
    (("/etc/apache2/sites-enabled/*", "/etc/apache2/mods-enabled/ssl.conf", "/etc/apache2/conf-enabled/*",
      "/etc/httpd/conf.d/*.conf"), apache_references),
    (("/etc/postfix/main.cf",), postfix_references),
    (("/etc/dovecot/dovecot.conf", "/etc/dovecot/conf.d/*.conf"), dovecot_references),
    (("/etc/haproxy/haproxy.cfg",), haproxy_references),
)


def service_references(root="/"):
    """(references, config files read) of the services' configuration on the host."""
    refs, read = [], []
    for patterns, parser in SERVICE_CONFIGS:
        for path in _config_files(root, patterns):
            text = read_optional(path)
            if text is None:
                continue
            shown = "/" + os.path.relpath(path, root) if root != "/" else path
            read.append(shown)
            found = parser(text, shown, root) if parser is haproxy_references else parser(text, shown)
            refs.extend(found)
    return refs, read


# --------------------------------------------------------------------------- leaf files under /etc/ssl


def leaf_files(root, directories, skip_paths):
    """[absolute path] of certificate files under the directories, CA-store links left out."""
    out = []
    for directory in directories:
        top = _path(root, directory)
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames[:] = [d for d in dirnames if d != "private"]
            for name in filenames:
                full = os.path.join(dirpath, name)
                shown = "/" + os.path.relpath(full, root) if root != "/" else full
                if shown in skip_paths or full in skip_paths or name == "ca-certificates.crt":
                    continue
                if os.path.islink(full):
                    link = os.readlink(full)
                    # the store's links: into the ca-certificates trees, or hash names to a file beside them
                    if "/" not in link or link.startswith(CA_TREES):
                        continue
                if not name.endswith(CERT_SUFFIXES) and not re.match(r"^[0-9a-f]{8}\.\d+$", name):
                    continue
                out.append(shown)
    return out


# --------------------------------------------------------------------------- the check


class Found(object):
    """Certificates by fingerprint, each with every place it was found."""

    def __init__(self, now):
        self.now = now
        self.by_print = {}
        self.unreadable = []

    def add(self, der, found_in, served_by=None):
        key = hashlib.sha256(der).hexdigest()
        entry = self.by_print.get(key)
        if entry is None:
            info = certificate_details(der)
            entry = {"subject_cn": info["subject_cn"], "dns_names": info["dns_names"][:5],
                     "not_after": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(info["not_after"])),
                     "days_left": round((info["not_after"] - self.now) / 86400.0, 1),
                     "is_ca": info["is_ca"], "sha256": key[:16], "found_in": [], "served_by": []}
            self.by_print[key] = entry
        if found_in not in entry["found_in"]:
            entry["found_in"].append(found_in)
        if served_by and served_by not in entry["served_by"]:
            entry["served_by"].append(served_by)
        return entry

    def add_file(self, root, path, found_in, served_by=None, leaves_only=False):
        text = read_optional(_path(root, path))
        if text is None:
            self.unreadable.append({"path": path, "reason": "missing or unreadable", "found_in": found_in})
            return 0
        try:
            ders = pem_certificates(text[:MAX_FILE_BYTES])
            infos = [(d, certificate_details(d)) for d in ders]
        except (ValueError, UnicodeDecodeError) as exc:
            self.unreadable.append({"path": path, "reason": "cannot parse: %s" % exc, "found_in": found_in})
            return 0
        if leaves_only:
            infos = [(d, i) for d, i in infos if not i["is_ca"]]
        elif infos:
            infos = infos[:1]  # a service's file: its first certificate is the one it serves
        for der, _info in infos:
            self.add(der, "%s (%s)" % (path, found_in), served_by)
        return len(infos)


def host_names():
    """The host's own name, for SNI where no service names one (no DNS lookup: a broken resolver
    must not cost the inspection seconds)."""
    name = socket.gethostname()
    return [name] if name and name != "localhost" else []


def start_port_probes(ctx, refs=None):
    """Start the handshakes on the host's listening TCP ports (lowest ports first, at most
    cert_probe_max_ports), SNI from the services' configuration for that port, else the host name."""
    p, root = ctx.p, ctx.root
    if refs is None:
        refs = service_references(root)[0] if p["cert_discover_services"] else []
    names = {}
    for ref in refs:
        for port in ref["ports"]:
            if ref["names"] and port not in names:
                names[port] = ref["names"][0]
    default = host_names()
    listeners = sorted(listening_tcp(root), key=lambda i: (i["port"], i["address"]))
    for item in listeners:
        names.setdefault(item["port"], default[0] if default else None)
    probes = PortProbes(listeners[:p["cert_probe_max_ports"]], names, p["cert_probe_timeout"])
    probes.not_probed = max(0, len(listeners) - p["cert_probe_max_ports"])
    return probes


class Discovery(object):
    """The discovery of HLTH-CERT-002 in a thread of its own, started at the start of the module's
    sampling window: the services' configuration, the handshakes (their own threads), the
    certificate files. :meth:`wait` gives (Found, sources) without the ports, and ``probes``."""

    def __init__(self, ctx, now=None, background=False):
        self.ctx, self.now = ctx, now
        self.result = self.error = self.probes = None
        self._started = threading.Event()
        self._thread = None
        if background:
            self._thread = threading.Thread(target=self._run)
            self._thread.daemon = True
            self._thread.start()
        else:
            self._run()

    def _run(self):
        try:
            p, root = self.ctx.p, self.ctx.root
            refs, configs = service_references(root) if p["cert_discover_services"] else ([], [])
            if p["cert_discover_ports"]:
                self.probes = start_port_probes(self.ctx, refs)
            self.result = self._scan(refs, configs)
        except Exception as exc:  # raised again in the check, which reports it
            self.error = exc

    def _scan(self, refs, configs):
        p, root = self.ctx.p, self.ctx.root
        found = Found(time.time() if self.now is None else self.now)
        sources = {}
        if p["cert_discover_services"]:
            for ref in refs:
                found.add_file(root, ref["path"], "referenced by %s %s" % (ref["service"], ref["source"]),
                               ref["service"])
            sources["service_configs"] = configs
        if p["cert_discover_dirs"]:
            configured = set()  # HLTH-CERT-001's files, read as it reads them
            for pattern in p["cert_paths"]:
                configured.update(glob.glob(pattern))
            files = leaf_files(root, p["cert_discover_dirs"], configured)
            for path in files:
                found.add_file(root, path, "leaf under %s" % os.path.dirname(path), leaves_only=True)
            sources["files_scanned"] = len(files)
        return found, sources

    def wait(self):
        if self._thread is not None:
            self._thread.join()
        if self.error is not None:
            raise self.error
        return self.result


def start_discovery(ctx):
    """At the start of the sampling window: the whole discovery in the background."""
    ctx.cert_discovery = Discovery(ctx, background=True)


def discover(ctx, now=None):
    """(Found, sources evidence) of every certificate in use that the enabled sources see."""
    discovery = getattr(ctx, "cert_discovery", None) or Discovery(ctx, now=now)
    found, sources = discovery.wait()
    probes = discovery.probes
    if probes is not None:
        results = probes.results()
        tls = [(k, v) for k, v in sorted(results.items()) if isinstance(v, bytes)]
        owners = dict(((i["address"], i["port"]), "%s (pid %s)" % (i["process"], i["pid"]))
                      for i in probes.listeners if i.get("pid") is not None)
        for (address, port), der in tls:
            owner = owners.get((address, port))
            name = probes.names.get(port)
            where = "TLS port %s:%d%s" % (address, port, " (SNI %s)" % name if name else "")
            found.add(der, where, "%s on port %d" % (owner, port) if owner else "port %d" % port)
        sources["ports_probed"] = len(results)
        sources["tls_ports"] = ["%s:%d" % k for k, _ in tls]
        silent = ["%s:%d" % k for k, v in sorted(results.items()) if v == SILENT]
        if silent:  # a TLS server slower than cert_probe_timeout would hide here
            sources["ports_silent"] = silent
        if probes.not_probed:
            sources["ports_not_probed"] = probes.not_probed
    return found, sources


def expiry_grade(left, p):
    """(status, severity) of a certificate with ``left`` days to live: critical within
    C(cert_critical_days) or expired, major within C(cert_warn_days). Both certificate checks."""
    if left <= p["cert_critical_days"] or left <= 0:
        return "fail", "critical"
    if left <= p["cert_warn_days"]:
        return "fail", "major"
    return "pass", "major"


def check_certs_in_use(ctx, now=None):
    p = ctx.p
    found, sources = discover(ctx, now)
    certs = sorted(found.by_print.values(), key=lambda c: c["days_left"])
    evidence = {"threshold_days": p["cert_warn_days"], "critical_days": p["cert_critical_days"],
                "sources": sources, "certificates": certs}
    if found.unreadable:
        evidence["unreadable"] = found.unreadable
    if not certs:
        raise NotApplicable("no certificate in use found (no TLS on the listening ports, none referenced by "
                            "nginx, Apache, Postfix, Dovecot or HAProxy, no leaf certificate under %s)"
                            % ", ".join(p["cert_discover_dirs"] or ["-"]), evidence)
    worst = certs[0]
    left = worst["days_left"]
    evidence.update({"subject_cn": worst["subject_cn"], "days_left": left, "found_in": worst["found_in"],
                     "served_by": worst["served_by"],
                     "expiring": [{"subject_cn": c["subject_cn"], "days_left": c["days_left"],
                                   "found_in": c["found_in"]} for c in certs if c["days_left"] <= p["cert_warn_days"]]})
    status, severity = expiry_grade(left, p)
    metrics = [metric("cert_in_use_days_left", c["days_left"], "days", subject=c["subject_cn"] or "",
                      sha256=c["sha256"]) for c in certs]
    return status, severity, evidence, metrics
