# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

"""The checks of the health role, as data: one record per finding ID, the texts written once.

The module ``health_inspect`` takes each finding's title, base severity, remediation and
references from here (it holds only the measuring code), and the wrapper reads the same
records for ``fleetcare explain HLTH-...``. A record has the keys of a hardening control that
are not about enforcement: ``id``, ``title``, ``severity`` (the severity of a failure at the
first threshold; a check may escalate at its critical one), ``rationale``, ``remediation``,
``references``, and ``options``: the module options (role variables ``health_<option>``)
that tune it. Python rather than YAML, because module_utils is what Ansible ships to hosts.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def _check(fid, title, severity, options, rationale, remediation, references=()):
    return {"id": fid, "title": title, "severity": severity, "options": tuple(options),
            "rationale": " ".join(rationale.split()), "remediation": " ".join(remediation.split()),
            "references": list(references)}


CHECKS = (
    _check("HLTH-LOAD-001", "Load average per core", "minor", ("load_warn_per_core", "load_critical_per_core"),
           """A 5-minute load above the number of cores means runnable work waits for a CPU: requests
           slow down before anything fails. Fails as major at the critical threshold.""",
           """Find what keeps the CPUs busy (top, pidstat) and spread or reduce the work, or add CPUs."""),
    _check("HLTH-CPU-001", "CPU steal time", "minor", ("cpu_steal_warn_pct", "cpu_steal_critical_pct",
                                                       "sample_seconds"),
           """Steal is CPU time the hypervisor gave to other guests while this one wanted to run; it
           makes a VM slow in a way no tuning inside it can fix.""",
           """The hypervisor is overcommitted: move the VM or ask the provider for dedicated CPU."""),
    _check("HLTH-CPU-002", "CPU I/O wait", "minor", ("cpu_iowait_warn_pct", "cpu_iowait_critical_pct",
                                                     "sample_seconds"),
           """CPUs idle while processes wait on storage: the disks, not the CPUs, limit the host.""",
           """Find the process waiting on storage (iotop, pidstat -d) and check the disk's health and latency."""),
    _check("HLTH-MEM-001", "Memory use", "major", ("mem_warn_pct", "mem_critical_pct"),
           """Memory used (from MemAvailable, so caches that can be dropped do not count). Near the
           limit the kernel swaps, then kills processes. Fails as critical at the critical threshold.""",
           """Find the largest processes (ps aux --sort=-rss), fix leaks or add memory."""),
    _check("HLTH-SWAP-001", "Swap use", "minor", ("swap_warn_pct", "swap_critical_pct"),
           """Heavy swap use means the working set no longer fits in memory; a host without swap passes.""",
           """The host is short of memory: reduce the workload, add memory, or tune vm.swappiness."""),
    _check("HLTH-DISK-001", "Filesystem space", "major", ("disk_warn_pct", "disk_critical_pct", "disk_fstypes",
                                                         "disk_exclude_mounts"),
           """A full filesystem stops databases, logging and package upgrades. Space is counted as df
           does (blocks reserved for root are not available); the worst mount names the finding and
           every mount over the threshold is listed. Fails as critical at the critical threshold.""",
           """Free space on the listed filesystems (old logs, caches, packages) or grow the volumes."""),
    _check("HLTH-DISK-002", "Filesystem inodes", "major", ("inode_warn_pct", "inode_critical_pct", "disk_fstypes",
                                                          "disk_exclude_mounts"),
           """A filesystem out of inodes refuses new files although df shows free space.""",
           """Remove the many small files filling the filesystem (sessions, mail queues, caches) or rebuild it
           with more inodes."""),
    _check("HLTH-DISK-003", "Disk I/O utilisation", "minor", ("disk_io_warn_pct", "disk_io_critical_pct",
                                                             "sample_seconds"),
           """The share of the sampling window a whole disk was busy; a saturated device queues every
           read and write behind it.""",
           """Find the process saturating the device (iotop) and spread the load or use faster storage."""),
    _check("HLTH-NET-001", "Network interface errors and drops", "minor", ("net_error_warn_pct",
                                                                          "net_error_critical_pct",
                                                                          "net_exclude_ifaces", "sample_seconds"),
           """Errors and drops lose packets and make connections retransmit. Judged since boot (minor)
           and within the sampling window when it saw enough packets (major).""",
           """Check the interface's cabling, duplex, driver and ring buffers (ip -s link, ethtool -S)."""),
    _check("HLTH-UNIT-001", "Failed systemd units", "major", ("units_ignore",),
           """A failed unit is a service that is not running although the host is configured to run it.""",
           """Inspect each failed unit (systemctl status UNIT, journalctl -u UNIT), fix and restart it, or
           reset it."""),
    _check("HLTH-TIME-001", "Clock synchronisation", "major", (),
           """Logs, certificates, Kerberos and distributed databases need a synchronised clock; the
           kernel's own state is read first, then timedatectl and chronyc.""",
           """Run a time synchronisation service (systemd-timesyncd or chrony) that can reach an NTP server."""),
    _check("HLTH-CERT-001", "Certificate expiry", "major", ("cert_paths", "cert_warn_days", "cert_critical_days"),
           """An expired certificate stops every client that checks it. The certificate that expires
           first names the finding. Fails as critical at the critical threshold or when expired.""",
           """Renew the listed certificates before they expire and reload the services using them."""),
    _check("HLTH-REBOOT-001", "Pending reboot", "major", (),
           """Updated kernels and libraries take effect only after a reboot: /var/run/reboot-required
           says a package asked for one, and a newer installed kernel than the running one says so too
           (not in a container, whose kernel is the host's).""",
           """Reboot the host in a maintenance window so the updated kernel and libraries are used."""),
    _check("HLTH-OOM-001", "Out-of-memory kills", "major", ("oom_warn_count",),
           """The kernel killed processes to free memory since boot: something was lost, and it will
           happen again under the same load.""",
           """Find the killed process (journalctl -k | grep -i oom), then add memory or limit the workload."""),
    _check("HLTH-LOG-001", "Journal error rate", "minor", ("log_window_minutes", "log_warn_count",
                                                          "log_critical_count"),
           """Journal entries of priority err and worse in the window: a burst of errors is often the
           first sign of a fault. Fails as major at the critical count.""",
           """Read the errors (journalctl -p err --since -1h) and fix their causes."""),
    _check("HLTH-BKUP-001", "Last backup age", "major", ("backup_max_age_hours",),
           """A backup older than the recovery point objective means data written since would be lost.
           Read from the backup role's status records (the set whose last success is oldest names it);
           not applicable on a host without fleetcare backup sets.""",
           """Run a backup and check the backup schedule."""),
    # services: what the host is for (measured in module_utils/health_services.py)
    _check("HLTH-SVC-001", "Declared systemd units active", "major", ("services",),
           """Each unit declared with unit: in health_services must be active; one entry per unit in
           the evidence with its load, active and sub state. Not applicable when none is declared.""",
           """Start the listed units (systemctl start UNIT), read why they stopped (journalctl -u UNIT)
           and enable them if they must survive a reboot."""),
    _check("HLTH-SVC-002", "Declared TCP ports accept connections", "major", ("services",
                                                                             "services_timeout_seconds"),
           """Each port declared with tcp: in health_services must accept a connection from the host
           itself within the timeout; one entry per port with the time it took or the error.""",
           """Start the service that should listen on the port, or check its listen address and the
           local firewall (ss -ltnp)."""),
    _check("HLTH-SVC-003", "Declared HTTP endpoints answer", "major", ("services", "services_http_max_seconds"),
           """Each URL declared with http: in health_services must answer a GET from the host with an
           expected status (200 unless status: says otherwise) within the time; redirects are not
           followed and URLs are shown with passwords redacted.""",
           """Read the application's and the web server's error logs for the failing URL and fix what
           makes it answer with the wrong status or slowly."""),
    _check("HLTH-SVC-004", "Declared processes running", "major", ("services",),
           """Each process declared with process: in health_services must run (at least min_count
           processes of that name, by command name or the base name of argv[0]).""",
           """Start the service that runs the process and find why it exited (its logs, the journal)."""),
    _check("HLTH-SVC-005", "Declared TLS endpoint certificates", "major", ("services", "services_tls_warn_days",
                                                                          "services_tls_critical_days"),
           """The certificate each endpoint declared with tls: in health_services serves (a handshake from
           the host itself, with server_name as SNI) must not expire within the warning days; fails as
           critical at the critical days, when expired, or when no handshake is possible.""",
           """Renew the certificate the endpoint serves and reload the service that serves it."""),
    _check("HLTH-PORT-001", "Listening TCP sockets", "info", ("listening_enabled",),
           """Every listening TCP socket with the process behind it (from /proc/net/tcp and tcp6 and
           the processes' file descriptors), so the report shows what the host serves. Passes with the
           list as evidence; the drift role alerts when it changes.""",
           """Stop and disable services that should not listen, or bind them to localhost."""),
    _check("HLTH-DB-001", "PostgreSQL health", "major", ("postgresql_enabled", "db_connections_warn_pct",
                                                         "db_connections_critical_pct",
                                                         "db_replication_lag_warn_seconds",
                                                         "db_replication_lag_critical_seconds"),
           """Every local cluster (/etc/postgresql/VERSION/NAME) is asked with psql over the local
           socket as its owner (peer authentication, no password): accepting connections, client connections against
           max_connections and, on a standby, the replay lag. Not applicable when PostgreSQL is not
           installed; a cluster that is down fails as critical.""",
           """Start the cluster (pg_ctlcluster VERSION NAME start) and read its log under
           /var/log/postgresql; raise max_connections or add a connection pooler; on a lagging
           standby check the network and the primary's WAL sender."""),
    _check("HLTH-DB-002", "MariaDB/MySQL health", "major", ("mysql_enabled", "db_connections_warn_pct",
                                                            "db_connections_critical_pct",
                                                            "db_replication_lag_warn_seconds",
                                                            "db_replication_lag_critical_seconds"),
           """The local server is asked with the mysql client as root over the unix socket (no
           password on the command line): alive, connections against max_connections and, on a
           replica, whether replication runs and its lag. Not applicable when no server is
           installed; a server that is down fails as critical.""",
           """Start the server (systemctl start mariadb) and read its error log; raise max_connections
           or fix the clients holding connections; restart replication after fixing the error shown
           (SHOW SLAVE STATUS)."""),
    _check("HLTH-DB-003", "Redis health", "major", ("redis_enabled", "redis_memory_warn_pct",
                                                    "redis_memory_critical_pct"),
           """The local server named by /etc/redis/redis.conf must answer PING; memory used is held
           against maxmemory (a server without maxmemory passes with a note). The password of
           requirepass is sent over the socket only. Not applicable when Redis is not installed;
           a server that does not answer fails as critical.""",
           """Start redis-server and read its log; set maxmemory with an eviction policy, or give the
           server more memory."""),
    # Certificates in use, hardware and kernel, brute-force signs (issue 16, items 1, 3 and 4).
    _check("HLTH-CERT-002", "Certificates in use", "major",
           ("cert_discover_ports", "cert_discover_services", "cert_discover_dirs", "cert_probe_timeout",
            "cert_probe_max_ports", "cert_warn_days", "cert_critical_days"),
           """Certificates found without configuration: served on the host's own listening TLS ports
           (a handshake from the host to itself, SNI where a name is known), referenced by nginx,
           Apache, Postfix, Dovecot or HAProxy, and leaf certificates under /etc/ssl (the system CA
           store is left out). Each certificate lists where it was found and what serves it; the one
           that expires first names the finding. Fails as critical at the critical threshold.""",
           """Renew the certificate named in the evidence, install it where it was found and reload the
           service that serves it."""),
    _check("HLTH-RAID-001", "Software RAID state", "major", ("raid_mdstat_path",),
           """A degraded md array (a member failed or missing) runs without redundancy: the next disk
           failure loses data. An inactive array is critical.""",
           """Replace the failed disk and add it back (mdadm --manage /dev/mdX --add), then watch the
           rebuild in /proc/mdstat."""),
    _check("HLTH-SMART-001", "Disk SMART health", "critical", (),
           """The disk's own health assessment (smartctl -H) says it is failing. Not applicable in VMs
           and containers, whose disks are virtual, and without smartmontools.""",
           """Back up the data on the disk now and replace it."""),
    _check("HLTH-EDAC-001", "Memory errors (EDAC)", "major", ("edac_ce_warn_count",),
           """Corrected memory errors counted by the EDAC driver announce a failing module; an
           uncorrected one may have corrupted data or crashed a process (critical).""",
           """Find the module from the EDAC counters (edac-util -v) and replace it in a maintenance window."""),
    _check("HLTH-KERN-001", "Machine-check and I/O errors in the kernel log", "major",
           ("kernel_log_window_hours",),
           """Machine-check events (critical) and storage I/O errors (major) logged by the kernel in the
           window (the journal's kernel messages, else dmesg). Not applicable where the kernel log cannot
           be read, such as in a container.""",
           """Read the errors (journalctl -k -p warning), check the hardware they name (CPU, memory, disk,
           cabling) and replace what fails."""),
    _check("HLTH-FD-001", "File descriptors in use", "major", ("fd_warn_pct", "fd_critical_pct"),
           """Open files of the whole kernel against fs.file-max (/proc/sys/fs/file-nr): at the limit
           every process fails to open files and sockets. Fails as critical at the critical threshold.""",
           """Find the process holding most files (ls /proc/*/fd | wc -l per process), fix the leak or
           raise fs.file-max."""),
    _check("HLTH-CONN-001", "Connection tracking table use", "major", ("conntrack_warn_pct",
                                                                        "conntrack_critical_pct"),
           """When nf_conntrack_count reaches nf_conntrack_max the kernel drops new connections. Not
           applicable when connection tracking is not loaded.""",
           """Raise net.netfilter.nf_conntrack_max, shorten the tracking timeouts or exempt busy traffic
           from tracking (notrack)."""),
    _check("HLTH-PROC-001", "Zombie processes", "minor", ("zombie_warn_count",),
           """Processes that exited but were never reaped by their parent; many of them point at a
           faulty parent and end by exhausting the process table.""",
           """Restart or fix the parent process named in the evidence so it reaps its children."""),
    _check("HLTH-SSH-001", "Failed SSH logins per hour", "minor", ("ssh_window_minutes",
                                                                   "ssh_failed_warn_per_hour",
                                                                   "ssh_failed_critical_per_hour"),
           """Failed SSH authentications in the journal, per hour of the window: a high rate is a
           brute-force attempt. The busiest source addresses are listed. Fails as major at the critical
           rate.""",
           """Block the listed sources (firewall, fail2ban), allow only key authentication and limit who
           may reach port 22."""),
)

BY_ID = dict((record["id"], record) for record in CHECKS)

# Judged on the controller from history, not by the module (fleetcare/trends.py): the health
# module measures, the controller forecasts. ``fleetcare explain`` knows them like the others.
CONTROLLER_CHECKS = (
    _check("HLTH-CAP-001", "Filesystem full within the forecast threshold", "major", ("capacity_days",),
           """A least-squares line through each filesystem's free space over the recent inspections
           (at least 4 points over at least 1 day, R^2 at least 0.6, only since the filesystem last
           changed size) gives the days until it is full. Fails when a filesystem will be full within
           health_capacity_days (default 14); not applicable while no filesystem has enough history
           or a steady enough trend, with the reason. The trends section of the report shows every
           forecast.""",
           """Find what grows on the filesystem (du -xsh /mount/* over time, logs, databases), free
           space or grow the volume before the date in the evidence."""),
)

CONTROLLER_BY_ID = dict((record["id"], record) for record in CONTROLLER_CHECKS)
