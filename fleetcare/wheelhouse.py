"""A wheelhouse: every wheel fleetcare needs, in one folder, so that another machine (a worker
node, a lab host, an air-gapped jump host) installs it with no index at all.

The controller builds it once (``pip wheel``, which reuses pip's cache) with every dependency
pinned to the version installed here, so a worker runs the same ansible-core, ansible-runner and
collection as the controller. The target installs with :func:`install_script`: a virtual
environment and ``pip install --no-index --find-links``. Nothing here contacts a host.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from fleetcare import __version__, data_dir
from fleetcare.errors import InputError

# where a worker keeps its environment, relative to its home directory
REMOTE_VENV = ".local/share/fleetcare-worker/venv"
STAMP = "fleetcare-wheelhouse.json"


def default_dir() -> Path:
    return data_dir() / "wheelhouse"


def pins() -> list[str]:
    """``name==version`` of fleetcare's runtime dependencies as installed in this environment."""
    found: dict[str, str] = {}
    todo = ["fleetcare"]
    while todo:
        name = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in found:
            continue
        found[key] = dist.version
        for req in dist.requires or ():
            if ";" in req and "extra ==" in req.split(";", 1)[1]:
                continue  # an optional extra (fleetcare[test]) is not needed to run
            head = req.split(";", 1)[0].strip()
            dep = ""
            for ch in head:
                if ch.isalnum() or ch in "-_.":
                    dep += ch
                else:
                    break
            if dep:
                todo.append(dep)
    found.pop("fleetcare", None)
    return sorted(f"{name}=={version}" for name, version in found.items())


def _project_dir() -> Path | None:
    """The checkout fleetcare runs from (a wheel of fleetcare is built from it), if any."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").is_file() else None


def build(dest: Path | None = None, python: str = sys.executable) -> Path:
    """Fill ``dest`` with a wheel of fleetcare (which carries the collection) and of every pinned
    dependency; return ``dest``. A wheelhouse already built for the same pins is reused."""
    dest = (dest or default_dir()).expanduser()
    wanted = {"fleetcare": __version__, "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
              "pins": pins(), "source": _source_digest()}
    stamp = dest / STAMP
    try:
        if json.loads(stamp.read_text(encoding="utf-8")) == wanted:
            return dest
    except (OSError, ValueError):
        pass
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("fleetcare-*.whl"):
        old.unlink()
    project = _project_dir()
    steps = [[python, "-m", "pip", "wheel", "-q", "--wheel-dir", str(dest), *wanted["pins"]]]
    if project is not None:
        steps.append([python, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                      "--wheel-dir", str(dest), str(project)])
    for argv in steps:
        proc = subprocess.run(argv, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
            raise InputError(f"{dest}: building the wheelhouse failed: {tail}")
    if not any(dest.glob("fleetcare-*.whl")):
        raise InputError(f"{dest}: no fleetcare wheel (fleetcare is not running from a checkout)")
    add_pip(dest, python)
    stamp.write_text(json.dumps(wanted), encoding="utf-8")
    return dest


def _source_digest() -> str:
    """Changes whenever a file of the checkout that goes into the wheel changes."""
    project = _project_dir()
    if project is None:
        return ""
    digest = hashlib.sha256()
    for top in ("fleetcare", "plugins", "roles", "playbooks", "meta", "galaxy.yml", "pyproject.toml"):
        base = project / top
        paths = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in paths:
            if "__pycache__" in path.parts:
                continue
            stat = path.stat()
            digest.update(f"{path.relative_to(project)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def install_script(wheelhouse: str, venv: str = REMOTE_VENV, packages: tuple[str, ...] = ("fleetcare",)) -> str:
    """A POSIX shell script that installs ``packages`` from the wheelhouse folder ``wheelhouse`` (on
    the target) into the virtual environment ``venv`` (both relative: under $HOME), with no index.
    Debian's python3 without python3-venv has no ensurepip: the venv is then made without pip and
    pip runs from its own wheel in the wheelhouse."""
    q = shlex.quote
    return "\n".join([
        "set -eu",
        f'venv={q(venv)}; case "$venv" in /*) ;; *) venv="$HOME/$venv" ;; esac',
        f'wh={q(wheelhouse)}; case "$wh" in /*) ;; *) wh="$HOME/$wh" ;; esac',
        'if [ ! -x "$venv/bin/python" ]; then',
        '  mkdir -p "$(dirname "$venv")"',
        '  python3 -m venv "$venv" 2>/dev/null || { rm -rf "$venv"; python3 -m venv --without-pip "$venv"; }',
        "fi",
        'if "$venv/bin/python" -m pip --version >/dev/null 2>&1; then',
        '  pip() { "$venv/bin/python" -m pip "$@"; }',
        "else",
        '  pipwhl=$(ls "$wh"/pip-*.whl 2>/dev/null | head -n 1)',
        '  [ -n "$pipwhl" ] || { echo "no pip wheel in $wh" >&2; exit 1; }',
        '  pip() { "$venv/bin/python" "$pipwhl/pip" "$@"; }',
        "fi",
        f'pip install -q --no-compile --no-index --find-links "$wh" {" ".join(q(p) for p in packages)}',
        'echo "$venv"',
    ]) + "\n"


def add_pip(dest: Path, python: str = sys.executable) -> None:
    """Put a wheel of pip itself in the wheelhouse (for targets without ensurepip)."""
    if any(dest.glob("pip-*.whl")):
        return
    proc = subprocess.run([python, "-m", "pip", "download", "-q", "--only-binary=:all:", "--no-deps",
                           "--dest", str(dest), f"pip=={metadata.version('pip')}"],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["pip failed"])[-1]
        raise InputError(f"{dest}: adding pip to the wheelhouse failed: {tail}")
