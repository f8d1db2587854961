"""Reports of a finished run: JSON (the source of truth), HTML and a Markdown summary.

Every format is rendered from a :class:`~fleetcare.results.Run` and nothing else;
reports never read events or history. :func:`write_all` renders every format in
memory first, so a run that breaks the JSON schema writes no report at all, and
then puts each file in place with a rename, so a crash never leaves half a report.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from importlib import import_module
from pathlib import Path

from fleetcare.results import Run, bulk

FORMATS = ("json", "html", "md")  # written into every run directory
EXPORTS = ("junit",)  # on demand: `fleetcare report --format` and a run's --junit FILE
_CHUNK = 1 << 20

# format -> module in this package holding ``render(run) -> str``; imported on first use,
# so asking for the Markdown summary never pays for Jinja2
_MODULES = {"json": "json_report", "html": "html", "md": "markdown", "junit": "junit"}


def renderer(fmt: str) -> Callable[[Run], str]:
    if fmt not in _MODULES:
        raise ValueError(f"unknown report format {fmt!r}: expected one of {', '.join((*FORMATS, *EXPORTS))}")
    return import_module(f"{__name__}.{_MODULES[fmt]}").render


def render(run: Run, fmt: str) -> str:
    """The report of ``run`` in format ``fmt`` (one of :data:`FORMATS` or :data:`EXPORTS`).

    The JSON report is validated against the report schema and raises
    :class:`fleetcare.results.SchemaError` when the run breaks it.
    """
    with bulk():
        return renderer(fmt)(run)


def filename(fmt: str) -> str:
    renderer(fmt)  # refuse unknown formats here too
    return f"report.{fmt}"


def write_all(run: Run, directory: Path, formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    """Write ``report.<fmt>`` for every format into ``directory`` (mode 0600 files).

    Returns ``{fmt: path}``. JSON is rendered first: when it is refused by the
    schema nothing is written.
    """
    directory = Path(directory)
    ordered = sorted(formats, key=lambda f: f != "json")
    texts = {fmt: render(run, fmt) for fmt in ordered}
    directory.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for fmt in ordered:
        written[fmt] = atomic_write(directory / filename(fmt), texts[fmt])
    _fsync_dir(directory)
    return written


def atomic_write(path: Path, text: str, mode: int = 0o600) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same directory.

    The temporary file is created 0600 by mkstemp (the report holds host names and
    evidence), synced, then renamed over ``path``; readers see the old file or the
    new one, never a part.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            # in slices: the JSON report of a large fleet is ~100 MB, and one write()
            # would hold a second, encoded copy of all of it
            for start in range(0, len(text), _CHUNK):
                fh.write(text[start:start + _CHUNK])
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def replace_file(path: Path, text: str, new_mode: int = 0o600) -> Path:
    """:func:`atomic_write` to a path the user named: a file that exists keeps its mode
    (fleetcare never changes modes of what it did not create), a new one gets ``new_mode``."""
    try:
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = new_mode
    return atomic_write(Path(path), text, mode)


def _fsync_dir(directory: Path) -> None:
    # the renames are durable only once the directory entry is on disk
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
