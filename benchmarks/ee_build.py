#!/usr/bin/env python3
"""Build the execution environment (execution-environment.yml) with podman, offline, and run the
inspect playbook inside it against a lab host, as an AWX execution node would; then read the
run back with `fleetcare import`. It takes minutes (an image build), so it lives here and not in
CI; tests/unit/test_awx_project.py checks the build context on every run.

    .venv/bin/python benchmarks/ee_build.py [--keep]

Offline: the base image comes from the lab's local image (localhost/fleetcare-debian:12) plus
Debian's python3-venv/openssh-client (a venv in /opt/ee) (apt, as the lab images are built); every Python
package comes from a wheelhouse built here (pip's cache), installed with PIP_NO_INDEX; no Galaxy,
no registry pull. Prints the time of each step.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fleetcare_lab as lab  # noqa: E402

BIN = Path(sys.executable).parent
BASE = "localhost/fleetcare-ee-base:12"
EE = "localhost/fleetcare-ee:latest"
BASE_FILE = """FROM localhost/fleetcare-debian:12
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
    python3-venv openssh-client sshpass >/dev/null && python3 -m venv /opt/ee
ENV PATH=/opt/ee/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
"""
WHEELS = ["ansible>=12,<13", "ansible-runner>=2.4,<3", "PyYAML>=6", "fastjsonschema>=2.19", "bindep", "packaging",
          "dumb-init==1.2.5", "setuptools", "wheel"]


def step(name: str, argv: list[str], ok: tuple[int, ...] = (0,), **kw) -> subprocess.CompletedProcess[str]:
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, **kw)
    print(f"{name}: {time.monotonic() - started:.1f}s (exit {proc.returncode})", flush=True)
    if proc.returncode not in ok:
        sys.exit(f"{name} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the lab host and the work folder")
    parser.add_argument("--reuse", action="store_true", help=f"use the {EE} image already built")
    args = parser.parse_args()
    env = lab._env()  # podman with the project's containers.conf
    work = Path(tempfile.mkdtemp(prefix="fleetcare-ee-"))
    state = work / "lab"
    try:
        if not args.reuse:
            build(work, env)
        inspect(work, state, env)
        return 0
    finally:
        if not args.keep:
            lab.down(state)
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


def build(work: Path, env: dict[str, str]) -> None:
    (work / "base").mkdir()
    (work / "base" / "Containerfile").write_text(BASE_FILE)
    step("base image", ["podman", "build", "-q", "-t", BASE, str(work / "base")], env=env)

    ee = work / "ee"
    files = ee / "context-files"
    files.mkdir(parents=True)
    no_cfg = {**os.environ, "ANSIBLE_CONFIG": str(work / "none.cfg")}
    step("collection tarball", [str(BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(files),
                                str(ROOT)], env=no_cfg)
    (tarball,) = files.glob("fleetcare-ops-*.tar.gz")
    tarball.rename(files / "fleetcare-ops.tar.gz")
    step("wheelhouse", [sys.executable, "-m", "pip", "wheel", "-q", "--wheel-dir", str(files / "wheels"),
                        *WHEELS])
    # the same definition, made offline: pip may read nothing but the wheelhouse
    definition = (ROOT / "execution-environment.yml").read_text()
    definition = definition.replace("    - ENV PIP_FIND_LINKS=/build/context-files/wheels",
                                    "    - ENV PIP_FIND_LINKS=/build/context-files/wheels PIP_NO_INDEX=1")
    assert "PIP_NO_INDEX=1" in definition
    (ee / "execution-environment.yml").write_text(definition)
    step("ansible-builder build", [str(BIN / "ansible-builder"), "build", "-f", "execution-environment.yml",
                                   "-c", "context", "-t", EE, "--container-runtime", "podman", "-v", "1"],
         cwd=ee, env={**env, "PATH": f"{BIN}:{env.get('PATH', os.environ['PATH'])}"})
    size = step("image size", ["podman", "image", "inspect", EE, "--format", "{{.Size}}"], env=env).stdout
    print(f"image {EE}: {int(size) / 1e6:.0f} MB")
    listed = step("collections in the EE", ["podman", "run", "--rm", EE, "ansible-galaxy", "collection", "list",
                                            "--format", "json"], env=env).stdout
    found = {name for path in json.loads(listed).values() for name in path}
    for name in ("fleetcare.ops", "ansible.posix", "community.general"):
        assert name in found, f"{name} is not in the EE: {sorted(found)[:20]}"
    step("fastjsonschema in the EE", ["podman", "run", "--rm", EE, "python3", "-c", "import fastjsonschema"],
         env=env)


def inspect(work: Path, state: Path, env: dict[str, str]) -> None:
    """The inspect playbook inside the EE against a lab host (SSH on 127.0.0.1: host network)."""
    inventory = lab.up(1, "12", state_dir=state)
    private = work / "pdd"
    (private / "inventory").mkdir(parents=True)
    shutil.copy(inventory, private / "inventory" / "hosts.yml")
    shutil.copy(state / "id_ed25519", private / "id_ed25519")
    text = (private / "inventory" / "hosts.yml").read_text().replace(str(state / "id_ed25519"),
                                                                       "/runner/id_ed25519")
    (private / "inventory" / "hosts.yml").write_text(text)
    os.chmod(private, 0o777)  # the EE runs as uid 1000
    for path in private.rglob("*"):
        os.chmod(path, 0o777 if path.is_dir() else 0o644)
    os.chmod(private / "id_ed25519", 0o600)
    os.chown(private / "id_ed25519", 1000, 0)
    step("inspect inside the EE", ["podman", "run", "--rm", "--network", "host", "-v", f"{private}:/runner:Z",
                                   EE, "ansible-runner", "run", "/runner", "--ident", "ee1", "-p",
                                   "fleetcare.ops.inspect"], env=env)
    artifacts = private / "artifacts" / "ee1"
    print("runner status:", (artifacts / "status").read_text().strip())
    db = work / "history.db"
    out = step("fleetcare import", [str(BIN / "fleetcare"), "import", str(artifacts), "--db", str(db),
                                    "--output-dir", str(work / "runs"), "-q"], ok=(0, 1),
               env={**os.environ, "XDG_DATA_HOME": str(work / "data")})
    print(out.stdout.strip())
    hist = step("fleetcare history", [str(BIN / "fleetcare"), "history", "--db", str(db)]).stdout
    print(hist.strip())
    assert " inspect " in hist and "1 hosts" in hist


if __name__ == "__main__":
    sys.exit(main())
