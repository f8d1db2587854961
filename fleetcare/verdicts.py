"""What a run's checks of its inputs concluded, kept between runs so that the same inputs are not
judged twice.

Before any host is contacted, every run parses its inventory the way Ansible will and checks each
role variable every host gets (fleetcare.jobs.build). Parsing an inventory needs Ansible's
inventory code, and importing it costs about 0.35 s of CPU, the largest part of what the wrapper
adds to a run. A scheduled run, or an engineer's second run, usually judges exactly the inputs
the run before it judged. So a run that passed its checks leaves its verdict under
``$XDG_CACHE_HOME/fleetcare/verdicts``: the hosts it covers, in a file named by a keyed hash of
everything the checks read (see :func:`key`). A later run whose inputs hash the same takes the
hosts from there and skips the parse and the checks; any change (one byte of an inventory or
variables file, a new file beside it, another limit, option, environment variable or version of
fleetcare or Ansible) makes another key, and the inputs are judged again.

Only static inventories are kept (a script's or a plugin's answer can change without any file
changing), and only verdicts that passed. The files hold host names and nothing else: no
variable, no value. The hash is keyed with a random key of this cache (``key``, mode 0600), so
the name of a file says nothing about the content it was made from, not even to someone who can
guess a short secret in it. Losing the folder only costs the time it saves.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from fleetcare.codecache import private_dir, write_atomic

FOLDER = "verdicts"
KEEP = 64  # the newest verdicts kept; older ones are removed when a new one is written
VERSION = b"fleetcare inventory verdict 1"
ROOT = Path(__file__).resolve().parents[1]
# what the checks are made of: a change here is another key
# what fleetcare sets itself while it parses, whatever the user's environment said
FORCED = frozenset(("ANSIBLE_INVENTORY_UNPARSED_FAILED",))
CODE_GLOBS = ("fleetcare/*.py", "plugins/module_utils/*.py", "roles/*/meta/argument_specs.yml",
              "roles/*/defaults/main.yml", "ansible.cfg")


def _secret(folder: Path) -> bytes | None:
    path = folder / "key"
    with contextlib.suppress(OSError):
        data = path.read_bytes()
        if len(data) == 32:
            return data
    data = os.urandom(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another run made it first: use that one
        with contextlib.suppress(OSError):
            data = path.read_bytes()
            return data if len(data) == 32 else None
        return None
    except OSError:
        return None
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return data


def _code_signature() -> list[Any]:
    import ansible.release

    out: list[Any] = [sys.version, ansible.release.__version__]
    for pattern in CODE_GLOBS:
        for path in sorted(ROOT.glob(pattern)):
            st = path.stat()
            out.append((str(path), st.st_mtime_ns, st.st_size))
    return out


def key(files: Iterable[Path], **inputs: Any) -> bytes:
    """The material of a verdict's key: the content of every file the checks read, the other
    ``inputs`` (as JSON), the ANSIBLE_* environment, and what the checks are made of."""
    digest = hashlib.sha256(VERSION)
    for path in files:
        digest.update(b"\0file\0" + str(path).encode())
        try:
            digest.update(b"%o" % path.stat().st_mode)  # an executable file is a script
            digest.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            digest.update(b"\0unreadable")
    environment = sorted((k, v) for k, v in os.environ.items() if k.startswith("ANSIBLE_") and k not in FORCED)
    digest.update(json.dumps([inputs, environment, _code_signature()], sort_keys=True, default=str).encode())
    return digest.digest()


def _path(material: bytes) -> Path | None:
    folder = private_dir(FOLDER)
    secret = folder and _secret(folder)
    if not secret:
        return None
    return folder / (hmac.new(secret, material, hashlib.sha256).hexdigest() + ".json")


def hosts(material: bytes) -> tuple[str, ...] | None:
    """The hosts of a verdict kept for this key, or None."""
    path = _path(material)
    try:
        data = json.loads(path.read_text()) if path else None
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), list) or not data["hosts"] \
            or not all(isinstance(h, str) for h in data["hosts"]):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # recently used: pruned last
    return tuple(data["hosts"])


def keep(material: bytes, covered: Iterable[str]) -> None:
    """Keep a passed verdict, and prune the folder to its :data:`KEEP` newest."""
    path = _path(material)
    if path is None:
        return
    write_atomic(path, json.dumps({"hosts": list(covered)}).encode())
    with contextlib.suppress(OSError):
        kept = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in kept[KEEP:]:
            old.unlink()


def cacheable(extravars: Mapping[str, Any]) -> bool:
    """Inputs JSON can hash faithfully (the variables are plain data)."""
    try:
        json.dumps(extravars, sort_keys=True)
    except (TypeError, ValueError):
        return False
    return True
