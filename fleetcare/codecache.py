"""Code fleetcare generates and compiles on every run, kept between runs.

Two things cost a run more than a third of a second of CPU before this cache, on every run and
every host count alike: compiling the HTML report's template and generating and compiling the
report schema's validator. Both are pure functions of text fleetcare ships, so the compiled code
is kept under ``$XDG_CACHE_HOME/fleetcare`` (``~/.cache/fleetcare``), keyed by a hash of that
text, the Python version and the generator's version. The cache holds no run data: no host name,
no finding, no variable. Losing it costs only the time it saves; a directory that cannot be
written, or that another user could write, is not used, and the code is compiled as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import marshal
import os
import stat
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import CodeType
from typing import Any

from fleetcare import cache_dir


def private_dir(name: str) -> Path | None:
    """``cache_dir()/name``, made 0700, or None when it cannot be made or is not ours alone
    (code loaded from a folder another user can write would run as us)."""
    path = cache_dir() / name
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError:
        return None
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None
    return path


def python_code(key: str, build: Callable[[], str], filename: str) -> CodeType:
    """The compiled code of the Python source ``build()`` returns, for a source that depends only
    on ``key``: read from the cache when ``key`` (with this Python's version) was seen before."""
    digest = hashlib.sha256(b"\0".join(
        (importlib.util.MAGIC_NUMBER, sys.version.encode(), key.encode()))).hexdigest()
    folder = private_dir("code")
    path = folder / f"{digest}.marshal" if folder else None
    if path is not None:
        try:
            code = marshal.loads(path.read_bytes())
            if isinstance(code, CodeType):
                return code
        except (OSError, EOFError, ValueError, TypeError):
            pass  # absent or damaged: compiled again and written over
    code = compile(build(), filename, "exec")
    if path is not None:
        write_atomic(path, marshal.dumps(code))
    return code


def write_atomic(path: Path, data: bytes) -> None:
    """Write atomically; a cache that cannot be written is only slower."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def jinja_bytecode_cache() -> Any:
    """A Jinja bytecode cache in ``cache_dir()/jinja`` (Jinja checks each template's source
    checksum itself), or None when the folder is not usable."""
    import jinja2

    folder = private_dir("jinja")
    return jinja2.FileSystemBytecodeCache(str(folder)) if folder else None
