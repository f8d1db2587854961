#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: fleetcare engineers
# Apache-2.0

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: health_inspect
short_description: Inspect the health of a Linux host in one call and return findings
description:
  - Measures load, CPU steal and I/O wait, memory, swap, filesystem space and inodes, disk I/O
    utilisation, network interface errors, failed systemd units, clock synchronisation,
    certificate expiry, pending reboot, out-of-memory kills, the journal error rate and the age
    of the last backup, all in one module call, so a whole inspection costs one round trip.
  - Also certificates in use found without configuration, software RAID, SMART, EDAC memory
    errors, machine-check and I/O errors in the kernel log, file descriptors, conntrack, zombie
    processes and failed SSH logins (module utilities C(health_certs) and C(health_system)).
  - Rates (CPU, disk I/O, network) come from two samples of C(/proc/stat), C(/proc/diskstats)
    and C(/proc/net/dev) taken around one short window of O(sample_seconds) shared by all of them.
  - Every check yields exactly one finding per host with a stable ID (C(HLTH-DISK-001) and so on),
    following the fleetcare findings contract. Per-mount, per-device and per-interface checks name
    the worst item and list every item over the threshold in their evidence.
  - A check that cannot read what it needs (an unprivileged user, a container, a missing tool)
    returns status V(error) or V(not_applicable) with C(evidence.reason); the module itself does
    not fail because of one check.
  - Reads only. It never changes the host, so RV(ignore:changed) is always V(false).
version_added: "0.1.0"
author:
  - fleetcare engineers
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; check mode runs every check as usual.
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Reads Linux C(/proc) and C(/sys); tested on Debian 11, 12 and 13.
options:
  sample_seconds:
    description:
      - Length of the one window between the two samples used by every rate check
        (CPU steal and I/O wait, disk I/O utilisation, network errors in the window).
      - Short windows are coarse (CPU time is counted in 10 ms ticks) but keep the call cheap.
      - The checks that mostly wait on another program or a socket (C(HLTH-UNIT-001),
        C(HLTH-TIME-001), C(HLTH-SVC-001), C(HLTH-SVC-002), C(HLTH-SVC-003), C(HLTH-SVC-005) and
        C(HLTH-DB-001) to C(HLTH-DB-003)) run in threads while the window is open.
    type: float
    default: 0.25
  load_warn_per_core:
    description: 5-minute load average per CPU core at which C(HLTH-LOAD-001) fails as V(minor).
    type: float
    default: 1.0
  load_critical_per_core:
    description: 5-minute load average per CPU core at which C(HLTH-LOAD-001) fails as V(major).
    type: float
    default: 2.0
  cpu_steal_warn_pct:
    description: CPU steal percentage in the window at which C(HLTH-CPU-001) fails as V(minor).
    type: float
    default: 10.0
  cpu_steal_critical_pct:
    description: CPU steal percentage in the window at which C(HLTH-CPU-001) fails as V(major).
    type: float
    default: 25.0
  cpu_iowait_warn_pct:
    description: CPU I/O wait percentage in the window at which C(HLTH-CPU-002) fails as V(minor).
    type: float
    default: 20.0
  cpu_iowait_critical_pct:
    description: CPU I/O wait percentage in the window at which C(HLTH-CPU-002) fails as V(major).
    type: float
    default: 50.0
  mem_warn_pct:
    description:
      - Memory used percentage (from C(MemAvailable)) at which C(HLTH-MEM-001) fails as V(major).
    type: float
    default: 90.0
  mem_critical_pct:
    description: Memory used percentage at which C(HLTH-MEM-001) fails as V(critical).
    type: float
    default: 97.0
  swap_warn_pct:
    description: Swap used percentage at which C(HLTH-SWAP-001) fails as V(minor).
    type: float
    default: 50.0
  swap_critical_pct:
    description: Swap used percentage at which C(HLTH-SWAP-001) fails as V(major).
    type: float
    default: 80.0
  disk_warn_pct:
    description: Filesystem space used percentage at which C(HLTH-DISK-001) fails as V(major).
    type: float
    default: 85.0
  disk_critical_pct:
    description: Filesystem space used percentage at which C(HLTH-DISK-001) fails as V(critical).
    type: float
    default: 95.0
  inode_warn_pct:
    description: Inodes used percentage at which C(HLTH-DISK-002) fails as V(major).
    type: float
    default: 85.0
  inode_critical_pct:
    description: Inodes used percentage at which C(HLTH-DISK-002) fails as V(critical).
    type: float
    default: 95.0
  disk_fstypes:
    description:
      - Filesystem types inspected by C(HLTH-DISK-001) and C(HLTH-DISK-002).
      - Network filesystems are left out on purpose, because C(statvfs) on a dead server hangs.
      - Memory-backed filesystems (C(tmpfs), C(ramfs)) are checked like disks; read-only ones are left out.
    type: list
    elements: str
    default: [ext2, ext3, ext4, xfs, btrfs, zfs, f2fs, jfs, reiserfs, vfat, overlay, tmpfs, ramfs]
  disk_exclude_mounts:
    description:
      - Mount points (shell globs, C(*) also matches C(/)) left out of the space and inode checks.
      - The default leaves out the root filesystems of containers running on the host, which are
        views of a filesystem already checked.
    type: list
    elements: str
    default: ['*/containers/storage/overlay*', '/var/lib/docker/*']
  disk_io_warn_pct:
    description: Device I/O utilisation percentage in the window at which C(HLTH-DISK-003) fails as V(minor).
    type: float
    default: 80.0
  disk_io_critical_pct:
    description: Device I/O utilisation percentage in the window at which C(HLTH-DISK-003) fails as V(major).
    type: float
    default: 95.0
  net_error_warn_pct:
    description:
      - Errors plus drops, as a percentage of packets since boot, at which C(HLTH-NET-001) fails as V(minor).
    type: float
    default: 1.0
  net_error_critical_pct:
    description:
      - Errors plus drops, as a percentage of the packets seen in the window, at which
        C(HLTH-NET-001) fails as V(major). Judged only when the window saw at least 100 packets.
    type: float
    default: 5.0
  net_exclude_ifaces:
    description:
      - Interfaces (shell globs) left out of C(HLTH-NET-001).
      - The default leaves out loopback and the host ends of container veth pairs.
    type: list
    elements: str
    default: [lo, 'veth*']
  units_ignore:
    description: Failed units (shell globs) that C(HLTH-UNIT-001) does not count, such as a known broken one.
    type: list
    elements: str
    default: []
  cert_paths:
    description:
      - Files or shell globs of PEM certificates checked by C(HLTH-CERT-001).
      - Every certificate in a file is read; the one that expires first stands for the file.
    type: list
    elements: str
    default: ['/etc/ssl/fleetcare/*.pem', '/etc/ssl/fleetcare/*.crt', '/etc/letsencrypt/live/*/cert.pem']
  cert_warn_days:
    description: Days before expiry at which C(HLTH-CERT-001) fails as V(major).
    type: int
    default: 30
  cert_critical_days:
    description:
      - Days before expiry at which C(HLTH-CERT-001) fails as V(critical).
      - An expired certificate is always V(critical).
    type: int
    default: 7
  oom_warn_count:
    description: Number of out-of-memory kills since boot above which C(HLTH-OOM-001) fails as V(major).
    type: int
    default: 0
  log_window_minutes:
    description: How far back C(HLTH-LOG-001) counts journal entries of priority C(err) and worse.
    type: int
    default: 60
  log_warn_count:
    description: Error entries in the window at which C(HLTH-LOG-001) fails as V(minor).
    type: int
    default: 50
  log_critical_count:
    description: Error entries in the window at which C(HLTH-LOG-001) fails as V(major).
    type: int
    default: 500
  backup_max_age_hours:
    description:
      - Age of the last successful backup above which C(HLTH-BKUP-001) fails.
      - The backup role does not exist yet, so the check is V(not_applicable) for now.
    type: int
    default: 26
  capacity_days:
    description:
      - Days within which a filesystem forecast to be full fails C(HLTH-CAP-001).
      - The forecast is made on the controller from the history of inspections; the module only
        returns this value to it (in the payload's C(data)).
    type: float
    default: 14.0
  services:
    description:
      - Declared service checks, each a mapping with one of the keys C(unit) (a systemd unit that
        must be active), C(tcp) (a port or C(host:port) that must accept), C(http) (a URL that must
        answer with C(status), default 200, within C(timeout) seconds), C(process) (a process name
        that must run, at least C(min_count) times) or C(tls) (a port or C(host:port) whose
        certificate must not expire within C(warn_days); C(server_name) is sent as SNI).
      - One finding per kind (C(HLTH-SVC-001) to C(HLTH-SVC-005)); each declared check is one entry
        of its C(evidence.checks). A kind with nothing declared is V(not_applicable).
    type: list
    elements: raw
    default: []
  services_timeout_seconds:
    description: Connection timeout of the C(tcp) and C(tls) checks and of the Redis probe.
    type: float
    default: 2.0
  services_http_max_seconds:
    description: Time within which a declared C(http) URL must answer (its C(timeout) overrides it).
    type: float
    default: 2.0
  services_tls_warn_days:
    description: Days before expiry at which a declared C(tls) endpoint fails C(HLTH-SVC-005) as V(major).
    type: int
    default: 30
  services_tls_critical_days:
    description: Days before expiry at which a declared C(tls) endpoint fails C(HLTH-SVC-005) as V(critical).
    type: int
    default: 7
  listening_enabled:
    description: Report every listening TCP socket and its process (C(HLTH-PORT-001)).
    type: bool
    default: true
  postgresql_enabled:
    description: Probe a local PostgreSQL (C(HLTH-DB-001)); V(not_applicable) when it is not installed.
    type: bool
    default: true
  mysql_enabled:
    description: Probe a local MariaDB or MySQL (C(HLTH-DB-002)); V(not_applicable) when it is not installed.
    type: bool
    default: true
  redis_enabled:
    description: Probe a local Redis (C(HLTH-DB-003)); V(not_applicable) when it is not installed.
    type: bool
    default: true
  db_connections_warn_pct:
    description: Connections used against C(max_connections) at which C(HLTH-DB-001)/C(HLTH-DB-002) fail as V(major).
    type: float
    default: 80.0
  db_connections_critical_pct:
    description: Connections used against C(max_connections) at which they fail as V(critical).
    type: float
    default: 95.0
  db_replication_lag_warn_seconds:
    description: Replication lag of a standby or replica at which the database check fails as V(major).
    type: float
    default: 300.0
  db_replication_lag_critical_seconds:
    description: Replication lag at which the database check fails as V(critical).
    type: float
    default: 1800.0
  redis_memory_warn_pct:
    description: Redis memory used against C(maxmemory) at which C(HLTH-DB-003) fails as V(major).
    type: float
    default: 85.0
  redis_memory_critical_pct:
    description: Redis memory used against C(maxmemory) at which C(HLTH-DB-003) fails as V(critical).
    type: float
    default: 95.0
  checks_skip:
    description:
      - Check IDs switched off (such as HLTH-SMART-001); each still gives its finding, not_applicable with
        reason switched off.
    type: list
    elements: str
    default: []
  cert_discover_ports:
    description:
      - For C(HLTH-CERT-002), a TLS handshake from the host to itself on each listening TCP port, to read the
        certificate it serves.
    type: bool
    default: true
  cert_discover_services:
    description:
      - For C(HLTH-CERT-002), read the certificate files referenced by the configuration of nginx, Apache, Postfix,
        Dovecot and HAProxy.
    type: bool
    default: true
  cert_discover_dirs:
    description:
      - For C(HLTH-CERT-002), directories searched for leaf (non-CA) certificates; the system CA store and files of
        cert_paths are left out. Empty to switch off.
    type: list
    elements: str
    default: [/etc/ssl]
  cert_probe_timeout:
    description:
      - For C(HLTH-CERT-002), seconds allowed to each port's handshake (0.05 to 10); the handshakes run in parallel
        inside the sampling window.
    type: float
    default: 0.3
  cert_probe_max_ports:
    description:
      - For C(HLTH-CERT-002), most listening ports probed (lowest first); the evidence counts those left out.
    type: int
    default: 64
  raid_mdstat_path:
    description:
      - For C(HLTH-RAID-001), the md status file read (another path for tests with a fixture).
    type: str
    default: /proc/mdstat
  edac_ce_warn_count:
    description:
      - For C(HLTH-EDAC-001), corrected memory errors since boot above which the check fails as major; any uncorrected
        one is critical.
    type: int
    default: 0
  kernel_log_window_hours:
    description:
      - For C(HLTH-KERN-001), hours of kernel log searched for machine-check and I/O errors; set it to the interval
        between inspections.
    type: float
    default: 24.0
  fd_warn_pct:
    description:
      - For C(HLTH-FD-001), file descriptors in use, % of fs.file-max, at which the check fails as major (0-100).
    type: float
    default: 80.0
  fd_critical_pct:
    description:
      - For C(HLTH-FD-001), file descriptors in use % at which the check fails as critical (0-100).
    type: float
    default: 95.0
  conntrack_warn_pct:
    description:
      - For C(HLTH-CONN-001), conntrack entries, % of nf_conntrack_max, at which the check fails as major (0-100).
    type: float
    default: 80.0
  conntrack_critical_pct:
    description:
      - For C(HLTH-CONN-001), conntrack entries % at which the check fails as critical (0-100).
    type: float
    default: 95.0
  zombie_warn_count:
    description:
      - For C(HLTH-PROC-001), zombie processes at which the check fails as minor.
    type: int
    default: 10
  perf_evidence:
    description:
      - Name the top processes (CPU, resident memory, I/O) and the busiest devices (with await) in failing load,
        CPU, memory, swap and disk I/O findings.
    type: bool
    default: true
  ssh_window_minutes:
    description:
      - For C(HLTH-SSH-001), minutes of sshd journal read.
    type: int
    default: 60
  ssh_failed_warn_per_hour:
    description:
      - For C(HLTH-SSH-001), failed SSH logins per hour at which the check fails as minor.
    type: float
    default: 30.0
  ssh_failed_critical_per_hour:
    description:
      - For C(HLTH-SSH-001), failed SSH logins per hour at which the check fails as major.
    type: float
    default: 300.0
notes:
  - Works as root and as an unprivileged user. Without root, the journal check needs the user in
    group C(adm) or C(systemd-journal), and certificates under unreadable directories are reported
    as unreadable.
  - In a container the load, the kernel clock and the running kernel belong to the container host;
    the evidence says so. C(HLTH-REBOOT-001) then judges only by C(/var/run/reboot-required).
seealso:
  - name: fleetcare findings contract
    description: The record every finding follows.
    link: https://example.invalid/fleetcare/docs/findings-contract.md
"""

EXAMPLES = r"""
- name: Inspect the host with the default thresholds
  fleetcare.ops.health_inspect:

- name: Inspect with tighter disk thresholds and a certificate of our own
  fleetcare.ops.health_inspect:
    disk_warn_pct: 75
    disk_critical_pct: 90
    cert_paths:
      - /etc/nginx/tls/*.crt
    cert_warn_days: 21
"""

RETURN = r"""
changed:
  description: Always V(false); the module only reads.
  returned: always
  type: bool
  sample: false
host:
  description:
    - The host probe of the C(host) module utility, the same answers every fleetcare module gets.
    - C(container) is the container engine, empty on a VM or bare metal.
  returned: always
  type: dict
  sample:
    container: ""
    container_detected_by: "systemd-detect-virt -c: none"
    systemd: true
    os_id: debian
    os_version_id: "12"
    os_codename: bookworm
    proc_sys_writable: true
fleetcare:
  description:
    - The findings contract payload, built by the C(findings) module utility.
    - The controller adds C(host) to every finding.
  returned: always
  type: dict
  contains:
    contract:
      description: Version of the findings contract.
      type: int
      sample: 1
    role:
      description: Role that produced the findings.
      type: str
      sample: health
    findings:
      description:
        - One record per check, always the same IDs in the same order (a switched-off check too).
        - C(evidence) holds the measured value and the threshold; C(error) and
          C(not_applicable) findings carry C(evidence.reason).
      type: list
      elements: dict
      sample:
        - id: HLTH-DISK-001
          title: Filesystem space
          severity: critical
          status: fail
          evidence:
            mount: /var
            used_pct: 97.1
            threshold_pct: 85.0
            critical_pct: 95.0
            over_threshold: [{mount: /var, used_pct: 97.1}]
          remediation: Free space on the listed filesystems or grow them.
          references: []
    metrics:
      description: Numbers kept for trends, with labels such as C(mount), C(device) or C(iface).
      type: list
      elements: dict
      sample:
        - name: disk_used_pct
          value: 97.1
          unit: percent
          labels: {mount: /var}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fleetcare.ops.plugins.module_utils.health_inspection import ARGUMENT_SPEC, inspect, validate
from ansible_collections.fleetcare.ops.plugins.module_utils.host import probe


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    errors = validate(module.params)
    if errors:
        module.fail_json(msg="; ".join(errors))
    module.exit_json(changed=False, host=probe().as_dict(), **inspect(module.params))


if __name__ == "__main__":
    main()
