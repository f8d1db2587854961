"""Reading what the user hands fleetcare, with limits, before Ansible sees it.

Inventories, variables files and the ``group_vars``/``host_vars`` beside an
inventory are read here first. A file that is binary, not UTF-8, larger than
:data:`MAX_BYTES`, nested deeper than :data:`MAX_DEPTH`, built to explode
through YAML aliases (more than :data:`MAX_NODES` nodes once aliases are
expanded, or an alias that contains itself) or holding a mapping key that is
not a string ends in one :class:`InputError` naming the file and the line.

A dynamic inventory (an executable script or a ``plugin:`` file) is parsed in
a child process in a session of its own, bounded by
``FLEETCARE_INVENTORY_TIMEOUT`` seconds (default :data:`INVENTORY_TIMEOUT`);
on a timeout, Ctrl-C or SIGTERM the whole session is killed, so no inventory
script outlives the wrapper.
"""

from __future__ import annotations

import contextlib
import json
import locale
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from fleetcare.errors import InputError

MAX_BYTES = 8 * 1024 * 1024  # 8 MiB: a 10,000-host inventory with vars is well below 2 MiB
MAX_NODES = 1_000_000  # YAML nodes once every alias is expanded
MAX_DEPTH = 64  # nesting of lists and mappings
INVENTORY_TIMEOUT = 60.0  # seconds for a dynamic inventory to answer
TIMEOUT_ENV = "FLEETCARE_INVENTORY_TIMEOUT"

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_YAML_SUFFIXES = (".yml", ".yaml", ".json")
# what Ansible skips in inventory directories (INVENTORY_IGNORE_EXTS) and in group_vars/host_vars
_IGNORED_SUFFIXES = ("~", ".orig", ".bak", ".cfg", ".retry", ".pyc", ".pyo", ".swp", ".rpm", ".md", ".txt", ".rst")
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# -- files ----------------------------------------------------------------------------
def read_text(path: Path, what: str) -> str:
    """The file's text, or InputError: missing, a directory, unreadable, too large, binary, not UTF-8."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise InputError(f"{path}: {what} is a directory, expected a file")
        if size > MAX_BYTES:
            raise InputError(f"{path}: {what} is {size:,} bytes, over the limit of {MAX_BYTES // 2**20} MiB")
        with open(path, "rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except PermissionError:
        raise InputError(f"{path}: {what} is not readable") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(raw) > MAX_BYTES:  # grew while we looked, or a device
        raise InputError(f"{path}: {what} is over the limit of {MAX_BYTES // 2**20} MiB")
    return decode(raw, str(path), what)


def decode(raw: bytes, label: str, what: str) -> str:
    if b"\0" in raw:
        line = raw[: raw.index(b"\0")].count(b"\n") + 1
        raise InputError(f"{label}: line {line}: {what} is binary (a NUL byte), expected UTF-8 text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"{label}: line {line}: {what} is not UTF-8 text "
                         f"(byte 0x{raw[exc.start]:02x}); save it as UTF-8") from None


# -- YAML -------------------------------------------------------------------------------
def _where(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"


def compose(text: str, label: str) -> yaml.Node | None:
    """The YAML node graph of ``text`` (aliases not expanded), checked against the limits."""
    try:
        node = yaml.compose(text, Loader=YAML_LOADER)
    except yaml.MarkedYAMLError as exc:
        raise InputError(f"{label}: {_where(exc.problem_mark)}: YAML error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{label}: YAML error: {' '.join(str(exc).split())}") from None
    if node is not None:
        _check_tree(node, label)
    return node


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_tree(root: yaml.Node, label: str) -> None:
    """Expanded size, depth, self-containing aliases and key types, without expanding anything:
    a node shared through aliases is counted once per use but walked once."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[key] > MAX_NODES:
                raise InputError(f"{label}: {_where(node.start_mark)}: YAML aliases expand to more than "
                                 f"{MAX_NODES:,} nodes (an alias bomb?)")
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise InputError(f"{label}: {_where(node.start_mark)}: a YAML alias refers to itself")
        if depth > MAX_DEPTH:
            raise InputError(f"{label}: {_where(node.start_mark)}: nested deeper than {MAX_DEPTH} levels")
        if isinstance(node, yaml.MappingNode):
            for k, _ in node.value:
                if k.tag not in (_STR_TAG, _MERGE_TAG):
                    shown = k.value if isinstance(k, yaml.ScalarNode) else k.tag.rsplit(":", 1)[-1]
                    raise InputError(f"{label}: {_where(k.start_mark)}: mapping key {shown!r} is not a "
                                     "string (quote it)")
        on_path.add(key)
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in _children(node) if id(c) not in sizes)


def construct(node: yaml.Node | None, label: str) -> Any:
    if node is None:
        return None
    try:
        return yaml.SafeLoader("").construct_document(node)
    except yaml.MarkedYAMLError as exc:
        raise InputError(f"{label}: {_where(exc.problem_mark)}: YAML error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{label}: YAML error: {' '.join(str(exc).split())}") from None
    except ValueError as exc:
        # a value YAML reads as a date that does not exist (2026-13-45): PyYAML raises a bare ValueError
        raise InputError(f"{label}: {_where(_bad_timestamp(node))}: YAML error: {exc} (quote the value "
                         "to keep it as text)") from None


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def _bad_timestamp(root: yaml.Node) -> Any:
    """Where the first date or time YAML cannot build stands (its start mark), or None."""
    loader = yaml.SafeLoader("")
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.ScalarNode) and node.tag == _TIMESTAMP_TAG:
            try:
                loader.construct_yaml_timestamp(node)
            except ValueError:
                return node.start_mark
        stack.extend(reversed(_children(node)))
    return None


def load_yaml_text(text: str, label: str) -> Any:
    return construct(compose(text, label), label)


def load_value(text: str, label: str) -> Any:
    """A value given on the command line: its YAML value when it is YAML within the limits above,
    the text itself when it is not YAML at all (Ansible takes ``-e k=v`` the same way)."""
    try:
        node = yaml.compose(text, Loader=YAML_LOADER)
    except yaml.YAMLError:
        return text
    if node is None:
        return None
    _check_tree(node, label)
    try:
        return yaml.SafeLoader("").construct_document(node)
    except (yaml.YAMLError, ValueError):  # ValueError: a date that does not exist, kept as text
        return text


def load_yaml(path: Path, what: str) -> Any:
    """safe_load with the limits above; InputError names the file and the line."""
    return _load_yaml_cached(path, what, _signature(path))


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


@lru_cache(maxsize=32)
def _load_yaml_cached(path: Path, what: str, signature: tuple[int, int] | None) -> Any:
    return load_yaml_text(read_text(path, what), str(path))


# -- inventories ------------------------------------------------------------------------
def _ignored(path: Path) -> bool:
    return path.name.startswith(".") or path.name.endswith(_IGNORED_SUFFIXES)


def _walk(directory: Path) -> Iterator[Path]:
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise InputError(f"{directory}: cannot list the directory ({exc.strerror or exc})") from None
    for entry in entries:
        if _ignored(entry):
            continue
        if entry.is_dir():
            yield from _walk(entry)
        elif entry.is_file():
            yield entry


def _executable(path: Path) -> bool:
    try:
        return bool(path.stat().st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))
    except OSError:
        return False


def scan_inventory(path: Path) -> bool:
    """Check every file Ansible will read for this inventory (the inventory itself, the files of an
    inventory directory, the group_vars and host_vars beside it); True when it is dynamic (a script
    or an inventory plugin's configuration), so that parsing it can hang."""
    if not path.exists():
        raise InputError(f"{path}: inventory not found")
    sources = list(_walk(path)) if path.is_dir() else [path]
    base = path if path.is_dir() else path.parent
    dynamic = False
    for source in sources:
        if source.parent.name in ("group_vars", "host_vars") or any(
                p.name in ("group_vars", "host_vars") for p in source.relative_to(base).parents):
            continue  # scanned below as variables
        if _executable(source):
            dynamic = True
            continue
        if source.suffix in (".yml", ".yaml", ".json") or source == path:
            text = read_text(source, "inventory")
            node = compose(text, str(source)) if source.suffix in _YAML_SUFFIXES else None
            if node is not None and _plugin_config(node):
                dynamic = True
            elif source == path and source.suffix in (".yml", ".yaml") and not isinstance(node, yaml.MappingNode):
                raise InputError(f"{path}: an inventory must be a mapping of groups (e.g. 'all:')")
        else:
            read_text(source, "inventory")
    for folder in ("group_vars", "host_vars"):
        if (base / folder).is_dir():
            for vars_file in _walk(base / folder):
                if vars_file.suffix in ("", *_YAML_SUFFIXES):
                    _check_vars_root(compose(read_text(vars_file, "variables file"), str(vars_file)), vars_file)
    return dynamic


def _check_vars_root(node: yaml.Node | None, path: Path) -> None:
    # empty, a mapping, or a whole file encrypted with ansible-vault (a scalar Ansible decrypts)
    if node is None or isinstance(node, yaml.MappingNode) or (
            isinstance(node, yaml.ScalarNode) and str(node.value).startswith("$ANSIBLE_VAULT;")):
        return
    raise InputError(f"{path}: a variables file must be a mapping of variable names to values")


def _plugin_config(node: yaml.Node) -> bool:
    return isinstance(node, yaml.MappingNode) and any(
        isinstance(k, yaml.ScalarNode) and k.value == "plugin" for k, _ in node.value)


def inventory_view(path: str, limit: str | None, keep: Callable[[str], bool]) -> dict[str, Any]:
    """What a run will cover, the way Ansible parses it: the hosts, and the variables for which
    ``keep(name)`` is true as layers in Ansible's order of precedence (inventory vars of all,
    then of each group, group_vars of all, then of each group, then the host's own and host_vars).
    Returns plain JSON data: ``{"hosts": [...], "layers": {label: vars}, "order": {host: [label]}}``."""
    os.environ["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "true"
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.utils.display import Display
    from ansible.utils.vars import combine_vars
    from ansible.vars.plugins import get_vars_from_inventory_sources

    # Ansible prints inventory problems as warnings; keep them for our one line.
    display, warnings = Display(), []
    saved = display.warning
    display.warning = lambda msg, *a, **kw: warnings.append(" ".join(str(msg).split()))
    loader = DataLoader()
    layers: dict[str, dict[str, Any]] = {}
    order: dict[str, list[str]] = {}

    def layer(label: str, data: dict[str, Any]) -> str | None:
        if label not in layers:
            layers[label] = {k: _unvaulted(v) for k, v in data.items() if isinstance(k, str) and keep(k)}
        return label if layers[label] else None

    try:
        manager = InventoryManager(loader=loader, sources=[path])
        if limit:
            manager.subset(limit)
        hosts = manager.get_hosts("all")

        def plugins(entity: Any) -> dict[str, Any]:
            return get_vars_from_inventory_sources(loader, [path], [entity], "all") or {}

        for host in hosts:
            groups = sorted(host.get_groups(), key=lambda g: (g.depth, g.priority, g.name))
            labels = [layer(f"group {g.name}", g.get_vars()) for g in groups]
            labels += [layer(f"group_vars/{g.name}", plugins(g)) for g in groups]
            labels.append(layer(f"host {host.name}", combine_vars({}, host.get_vars())))
            labels.append(layer(f"host_vars/{host.name}", plugins(host)))
            order[host.name] = [lb for lb in labels if lb]
    except AnsibleError as exc:
        first = " ".join(str(exc).split())
        raise InputError(f"{path}: not a usable inventory: {first[:300]}") from None
    finally:
        display.warning = saved
    if not hosts:
        if limit:
            raise InputError(f"--limit {limit!r}: matches no host of {path}")
        why = f" ({warnings[0]})" if warnings else ""
        raise InputError(f"{path}: the inventory has no hosts{why}")
    view = {"hosts": [h.name for h in hosts], "layers": {k: v for k, v in layers.items() if v},
            "order": order}
    # the same plain data whether it was parsed here or in a child process
    return json.loads(json.dumps(view, default=str))


# What stands for a vault-encrypted value: the wrapper never decrypts a secret to judge it (and
# has no vault password of its own before Ansible runs); like a template, Ansible resolves it at
# run time and the module's own validation judges the result.
VAULTED = "{{ vault-encrypted value }}"


def _unvaulted(value: Any) -> Any:
    from ansible.parsing.vault import EncryptedString

    if isinstance(value, EncryptedString):
        return VAULTED
    if isinstance(value, dict):
        return {k: _unvaulted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unvaulted(v) for v in value]
    return value


def inventory_timeout() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "")
    if not raw:
        return INVENTORY_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < float("inf"):
        raise InputError(f"{TIMEOUT_ENV}={raw!r}: must be a number of seconds above 0")
    return value


def load_inventory(path: Path, limit: str | None) -> dict[str, Any]:
    """:func:`inventory_view` after :func:`scan_inventory`; a dynamic inventory is parsed in a
    child process bounded by :func:`inventory_timeout`. Cached per process while no file changes."""
    files = inventory_files(path)
    return _load_inventory_cached(path, limit, tuple((str(p), _signature(p)) for p in files))


def inventory_files(path: Path) -> list[Path]:
    """Every file Ansible reads for an inventory: a directory's files (its group_vars and
    host_vars among them), or a file and the group_vars and host_vars beside it."""
    if not path.exists():
        raise InputError(f"{path}: inventory not found")
    folders = [path] if path.is_dir() else [d for d in (path.parent / "group_vars", path.parent / "host_vars")
                                            if d.is_dir()]
    return [path, *(p for d in folders for p in _walk(d))]


@lru_cache(maxsize=8)
def _load_inventory_cached(path: Path, limit: str | None, signature: tuple[Any, ...]) -> dict[str, Any]:
    """The view, with ``dynamic``: whether the inventory is a script's or a plugin's answer."""
    if scan_inventory(path):
        return dict(_view_in_child(path, limit), dynamic=True)
    from fleetcare.jobs import role_var_candidate

    return dict(inventory_view(str(path), limit, role_var_candidate), dynamic=False)


def _view_in_child(path: Path, limit: str | None) -> dict[str, Any]:
    timeout = inventory_timeout()
    package_parent = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (package_parent, os.environ.get("PYTHONPATH")) if p))
    argv = [sys.executable, "-m", "fleetcare.inputs", str(path), limit or ""]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                             env=env, start_new_session=True)
    try:
        with _sigterm_interrupts():
            out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise InputError(f"{path}: the inventory did not answer within {timeout:g} seconds "
                         f"(set {TIMEOUT_ENV} to wait longer)") from None
    finally:
        _kill_session(child)
    if child.returncode == 2 and err.strip():
        raise InputError(err.decode("utf-8", "replace").strip().splitlines()[-1])
    if child.returncode != 0:
        lines = [ln.strip() for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
        tail = (lines[-1] if any(ln.startswith("Traceback") for ln in lines) else " ".join(lines))[-300:]
        raise InputError(f"{path}: not a usable inventory: {tail or f'exit {child.returncode}'}")
    try:
        return json.loads(out)
    except ValueError:
        raise InputError(f"{path}: not a usable inventory (no answer from the parser)") from None


def _kill_session(child: subprocess.Popen) -> None:
    """The parser and everything the inventory script started share one session: end them all."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        child.wait(timeout=5)
    for stream in (child.stdout, child.stderr):
        if stream:
            stream.close()


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM while waiting raises KeyboardInterrupt, so the cleanup above runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    saved = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, saved)


# -- the environment ------------------------------------------------------------------
def check_locale() -> None:
    """ansible-core refuses to start in a locale whose encoding is not UTF-8 (``LANG=C``). Use
    C.UTF-8 (always present with glibc 2.35+) for this process and Ansible then, or say what to set."""
    saved = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "")
        encoding = locale.getlocale(locale.LC_CTYPE)[1]
    except (locale.Error, ValueError):
        encoding = None
    finally:
        locale.setlocale(locale.LC_CTYPE, saved)
    if encoding and encoding.lower().replace("-", "") == "utf8":
        return
    for candidate in ("C.UTF-8", "C.utf8", "en_US.UTF-8"):
        try:
            locale.setlocale(locale.LC_CTYPE, candidate)
        except locale.Error:
            continue
        locale.setlocale(locale.LC_CTYPE, saved)
        os.environ["LC_ALL"] = candidate
        return
    raise InputError("the locale's encoding is not UTF-8 and no UTF-8 locale is installed; "
                     "Ansible needs one: set LC_ALL to a UTF-8 locale (see 'locale -a')")


def _child_main(argv: list[str]) -> int:
    """``python -m fleetcare.inputs PATH LIMIT``: the inventory view as JSON on stdout."""
    from fleetcare.jobs import role_var_candidate

    try:
        view = inventory_view(argv[0], argv[1] or None, role_var_candidate)
    except InputError as exc:
        print(exc, file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps(view))
    return 0


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1:]))
