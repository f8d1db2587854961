"""A local APT repository for the patching tests, built from nothing on this machine.

Tiny packages in two versions (``dpkg-deb --build``), indexed with ``apt-ftparchive``, in two
suites: ``fc-stable`` (label ``fleetcare``) and ``fc-security`` (label ``fleetcare-Security``,
which APT and the patching audit take for a security suite). Served from a file path copied
into the lab hosts (``deb [trusted=yes] file:/srv/fc-repo SUITE main``: unsigned, the
repository never leaves the test machine).

What is pending on a host that installed the 1.0 versions and holds ``fc-held``:
``fc-sec`` (security), ``fc-other`` (other), ``fc-held`` (security, held).

Run as ``python -m fleetcare_lab.aptrepo DIR`` (the repository, and debsecan's data for it in
``DIR/debsecan``); Molecule's prepare and the tests call :func:`build` and :func:`debsecan_data`.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

SECURITY_SUITE = "fc-security"
STABLE_SUITE = "fc-stable"
LABELS = {STABLE_SUITE: "fleetcare", SECURITY_SUITE: "fleetcare-Security"}
# (package, version, suite)
PACKAGES = (
    ("fc-sec", "1.0", STABLE_SUITE), ("fc-sec", "1.1", SECURITY_SUITE),
    ("fc-other", "1.0", STABLE_SUITE), ("fc-other", "1.1", STABLE_SUITE),
    ("fc-held", "1.0", STABLE_SUITE), ("fc-held", "1.1", SECURITY_SUITE),
)
INITIAL = {name: "1.0" for name, _, _ in PACKAGES}
HELD = ("fc-held",)
SOURCES_LINE = "deb [trusted=yes] file:{path} {suite} main"
# The vulnerabilities the security versions fix, for debsecan's data file (debsecan_data).
CVES = {"fc-sec": ("CVE-2026-10001", "CVE-2026-10002"), "fc-held": ("CVE-2026-10003",)}


def _run(argv: list[str], cwd: Path) -> str:
    return subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True).stdout


def _deb(name: str, version: str, out: Path, work: Path) -> None:
    tree = work / f"{name}_{version}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\nMaintainer: fleetcare <dev@fleetcare.invalid>\n"
        f"Section: misc\nPriority: optional\nDescription: fleetcare patching test package\n"
        f" Installs one file naming its version.\n")
    doc = tree / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True)
    (doc / "VERSION").write_text(version + "\n")
    _run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(tree), str(out)], work)


def build(dest: Path) -> Path:
    """Build the repository under ``dest`` (created); returns it. Takes about a second."""
    dest = Path(dest)
    with tempfile.TemporaryDirectory() as tmp:
        for name, version, suite in PACKAGES:
            pool = dest / "pool" / suite
            pool.mkdir(parents=True, exist_ok=True)
            _deb(name, version, pool / f"{name}_{version}_all.deb", Path(tmp))
    for suite, label in LABELS.items():
        binary = dest / "dists" / suite / "main" / "binary-amd64"
        binary.mkdir(parents=True, exist_ok=True)
        (binary / "Packages").write_text(_run(["apt-ftparchive", "packages", f"pool/{suite}"], dest))
        options = [f"-oAPT::FTPArchive::Release::{key}={value}" for key, value in (
            ("Origin", "fleetcare"), ("Label", label), ("Suite", suite), ("Codename", suite),
            ("Architectures", "amd64"), ("Components", "main"))]
        release = _run(["apt-ftparchive", *options, "release", f"dists/{suite}"], dest)
        (dest / "dists" / suite / "Release").write_text(release)
    return dest


def debsecan_data(dest: Path, suites: tuple[str, ...] = ("GENERIC",)) -> Path:
    """Write debsecan's vulnerability data for the test packages under ``dest``, one file per
    suite name (debsecan fetches ``SOURCE/SUITE``, ``GENERIC`` when no suite is set).

    The format, as debsecan 0.4 reads it: a zlib-compressed text, ``VERSION 1``, then three
    blocks ended by an empty line: vulnerabilities ``NAME,FLAGS,DESCRIPTION`` (numbered from 0
    in order); affected packages ``PACKAGE,VULN-NUMBER,FLAGS,FIXED-VERSION,OTHER-FIXED-VERSIONS``
    where FLAGS is four characters (S source or B binary package; urgency ' ', L, M or H;
    remote '?', R or ' '; F when a fix is available in the suite) and a version below
    FIXED-VERSION is vulnerable; and source to binary packages ``SOURCE,BINARY BINARY``."""
    import zlib

    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    names, affected = [], []
    for package, cves in sorted(CVES.items()):
        fixed = max(v for n, v, s in PACKAGES if n == package and s == SECURITY_SUITE)
        for cve in cves:
            affected.append(f"{package},{len(names)},SHRF,{fixed},")
            names.append(f"{cve},,{package}: fleetcare test vulnerability")
    binaries = [f"{name},{name}" for name in sorted({n for n, _, _ in PACKAGES})]
    text = "VERSION 1\n" + "".join(line + "\n" for block in (names, affected, binaries)
                                   for line in [*block, ""])
    for suite in suites:
        (dest / suite).write_bytes(zlib.compress(text.encode()))
    return dest


def sources(path: str = "/srv/fc-repo") -> str:
    """The sources.list lines of the repository copied to ``path`` on a host."""
    return "".join(SOURCES_LINE.format(path=path, suite=suite) + "\n" for suite in LABELS)


DEBSECAN_SUITES = ("GENERIC", "bullseye", "bookworm", "trixie")


if __name__ == "__main__":
    # the repository, and debsecan's data for it in DIR/debsecan (one file per Debian codename)
    built = build(Path(sys.argv[1]))
    debsecan_data(built / "debsecan", DEBSECAN_SUITES)
    print(built)
