# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""The sockets a host listens on, and the process behind each, read from ``/proc``.

``/proc/net/{tcp,tcp6,udp,udp6}`` give the local address, the state and the socket's inode;
the ``/proc/PID/fd`` links of every process this user may look into map inodes to processes
(the socket of a process owned by another user shows as ``?`` without root). The drift role
records these sockets, the health role reports them; both read them here.

Pure Python without imports from Ansible (runs on the managed host).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import glob
import ipaddress
import os

from ansible_collections.fleetcare.ops.plugins.module_utils.host import read_optional

TCP_LISTEN = "0A"
UDP_UNCONNECTED = "07"
PROTOCOLS = ("tcp", "tcp6", "udp", "udp6")


def socket_owners(root="/"):
    """socket inode -> (pid, process name), for the processes this user may look into."""
    owners = {}
    for fd in glob.glob(os.path.join(root, "proc/[0-9]*/fd/*")):
        try:
            link = os.readlink(fd)
        except OSError:
            continue
        if link.startswith("socket:["):
            inode = link[8:-1]
            if inode in owners:
                continue
            piddir = os.path.dirname(os.path.dirname(fd))
            comm = read_optional(os.path.join(piddir, "comm"))
            owners[inode] = (int(os.path.basename(piddir)), (comm or "?").strip())
    return owners


def address(hexaddr):
    """``0100007F:0016`` -> ('127.0.0.1', 22); IPv6 addresses in their short form."""
    addr, port = hexaddr.split(":")
    raw = bytes.fromhex(addr)
    if len(raw) == 4:
        text = ".".join(str(b) for b in reversed(raw))
    else:
        words = [raw[i:i + 4][::-1].hex() for i in range(0, 16, 4)]
        text = ":".join(w[j:j + 4] for w in words for j in (0, 4))
        text = str(ipaddress.ip_address(text))
    return text, int(port, 16)


def parse_proc_net(text, proto):
    """Listening TCP (or unconnected, unbound-peer UDP) sockets of one /proc/net table:
    [{proto, address, port, inode}] in table order."""
    out = []
    for line in (text or "").splitlines()[1:]:
        f = line.split()
        if len(f) < 10 or f[3] != (TCP_LISTEN if proto.startswith("tcp") else UDP_UNCONNECTED):
            continue
        if proto.startswith("udp") and not f[2].endswith(":0000"):
            continue
        host, port = address(f[1])
        out.append({"proto": proto, "address": host, "port": port, "inode": f[9]})
    return out


def listening(root="/", protos=PROTOCOLS):
    """Every listening socket of the given tables with ``pid`` (None when unknown) and
    ``process`` (``?`` when unknown); the fd scan runs only when something listens."""
    found = []
    for proto in protos:
        found.extend(parse_proc_net(read_optional(os.path.join(root, "proc/net", proto)), proto))
    owners = socket_owners(root) if found else {}
    for entry in found:
        entry["pid"], entry["process"] = owners.get(entry["inode"], (None, "?"))
    return found


def shown(entry):
    """``0.0.0.0:22`` or ``[::]:22``: an address and port the way ss prints them."""
    host = entry["address"]
    return "%s:%d" % ("[%s]" % host if ":" in host else host, entry["port"])
