"""What a run means: which playbook, inventory, variables and checks.

The commands and their options are declared in :mod:`fleetcare.commands`; this module turns one
of them, with the user's arguments, into a :class:`Job`.

A :class:`Job` is plain data. Building one validates everything the user gave
(inventory, ``--limit``, role variables) so that bad input fails here, before
Ansible starts, with one line naming the file and the key.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from fleetcare import commands
from fleetcare.errors import InputError


def _collection_root() -> Path:
    """Where the collection fleetcare.ops and its Ansible project (ansible.cfg, playbooks, roles,
    inventories) are: in a checkout, the repository itself; installed from a wheel, the copy
    shipped beside this package as ``ansible_collections/fleetcare/ops`` (see pyproject.toml)."""
    here = Path(__file__).resolve().parent.parent
    installed = here / "ansible_collections" / "fleetcare" / "ops"
    return installed if (installed / "galaxy.yml").is_file() else here


ROOT = _collection_root()
LOCAL_INVENTORY = ROOT / "inventories" / "localhost.yml"


@dataclass(frozen=True)
class Job:
    command: str
    playbook: Path
    roles: tuple[str, ...]
    inventory: Path
    hosts: tuple[str, ...]
    limit: str | None = None
    extravars: Mapping[str, Any] = field(default_factory=dict)
    check: bool = False
    forks: int = 16
    local: bool = False

    @property
    def inventory_label(self) -> str | None:
        return None if self.local else str(self.inventory)


def build(command: str, inventory: str | None = None, limit: str | None = None,
          vars_files: tuple[str, ...] = (), var_pairs: tuple[str, ...] = (), forks: int = 16,
          **options: Any) -> Job:
    """Resolve and validate everything a run needs; raise InputError otherwise.

    ``options`` are the command's own options from its registry entry (fleetcare.commands), by
    their ``dest``: ``build("harden", check=True, controls=("HARD-SSH-*",))``.
    """
    spec = commands.get(command)
    if not spec.runs:
        raise ValueError(f"{command} runs no playbook")
    roles = spec.roles
    unknown = set(options) - {o.dest for o in spec.options}
    if unknown:
        raise TypeError(f"{command} has no option {', '.join(sorted(unknown))}")
    extravars: dict[str, Any] = {}
    for path in vars_files:
        extravars.update(load_vars_file(path, roles))
    for pair in var_pairs:
        key, value = parse_var(pair)
        check_role_vars({key: value}, roles, source="-e")
        extravars[key] = value
    fields: dict[str, Any] = {}
    for option in spec.options:
        value = options.get(option.dest)
        if not value:
            continue
        if option.job:
            fields[option.job] = bool(value)
            continue
        values = tuple(value)
        if option.check:
            try:
                option.check(values)
            except InputError as exc:
                raise InputError(f"{option.flag}: {exc}") from None
        extravars[option.var] = [*extravars.get(option.var, ()), *values]
    if inventory is None:
        if limit:
            raise InputError("--limit: needs an inventory (-i); without one fleetcare runs on this machine")
        inv, hosts, local = LOCAL_INVENTORY, ("localhost",), True
    else:
        inv, local = Path(inventory).expanduser().resolve(), False
        hosts = inventory_hosts(inv, limit)
    if forks < 1:
        raise InputError(f"--forks: must be at least 1, not {forks}")
    return Job(command, ROOT / spec.playbook, roles, inv, hosts, limit, extravars, forks=forks, local=local,
               **fields)


# -- role variables ---------------------------------------------------------------
def parse_var(pair: str) -> tuple[str, Any]:
    key, sep, raw = pair.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise InputError(f"-e {pair!r}: expected KEY=VALUE with a variable name as KEY")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def load_vars_file(path: str, roles: tuple[str, ...]) -> dict[str, Any]:
    data = _load_yaml(Path(path), "variables file")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"{path}: a variables file must be a mapping of variable names to values")
    check_role_vars(data, roles, source=path)
    return data


@cache
def argument_spec(role: str) -> dict[str, dict[str, Any]]:
    """The options of a role's entry point ``main`` from meta/argument_specs.yml."""
    path = ROOT / "roles" / role / "meta" / "argument_specs.yml"
    with open(path, encoding="utf-8") as fh:
        doc = yaml.safe_load(fh)
    return doc["argument_specs"]["main"].get("options") or {}


def check_role_vars(data: Mapping[str, Any], roles: tuple[str, ...], source: str) -> None:
    """Variables named after a role (``health_*``) must exist in that role's
    argument spec and have the right type. Other variables pass through."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    for role in roles:
        spec = argument_spec(role)
        mine = {k: v for k, v in data.items() if k.startswith(role + "_")}
        for key in mine:
            if key not in spec:
                near = difflib.get_close_matches(key, list(spec), n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                raise InputError(f"{source}: {key}: not a variable of role {role}{hint}")
        if not mine:
            continue
        sub = {k: {kk: vv for kk, vv in spec[k].items() if kk not in ("description", "default")}
               for k in mine}
        result = ArgumentSpecValidator(sub).validate(dict(mine))
        if result.error_messages:
            key = next((k for k in mine if k in result.error_messages[0]), next(iter(mine)))
            raise InputError(f"{source}: {key}: {result.error_messages[0]}")
        for key, value in result.validated_parameters.items():
            _check_range(source, key, value)


# Ranges follow from the variable's name, the convention every role keeps:
# *_pct is a percentage, *_days/_minutes/_seconds/_per_core are never negative.
_RANGES = {"_pct": (0.0, 100.0), "_days": (0.0, None), "_minutes": (0.0, None),
           "_seconds": (0.0, None), "_per_core": (0.0, None)}


def _check_range(source: str, key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return
    for suffix, (low, high) in _RANGES.items():
        if key.endswith(suffix) and (value < low or (high is not None and value > high)):
            span = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise InputError(f"{source}: {key}: must be {span}, not {value:g}")


# -- inventories --------------------------------------------------------------------
def _load_yaml(path: Path, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise InputError(f"{path}: {what} not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: {what} is a directory, expected a file") from None
    except PermissionError:
        raise InputError(f"{path}: {what} is not readable") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "?"
        raise InputError(f"{path}: {where}: YAML error: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: YAML error: {exc}") from None


def inventory_hosts(path: Path, limit: str | None) -> tuple[str, ...]:
    """Parse an inventory the way Ansible will, and return the hosts a run covers."""
    if not path.exists():
        raise InputError(f"{path}: inventory not found")
    if path.is_file() and path.suffix in (".yml", ".yaml"):
        data = _load_yaml(path, "inventory")
        if not isinstance(data, dict):
            raise InputError(f"{path}: an inventory must be a mapping of groups (e.g. 'all:')")
    os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    os.environ["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "true"
    from ansible.errors import AnsibleError
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.utils.display import Display

    # Ansible prints inventory problems as warnings; keep them for our one line.
    display, warnings = Display(), []
    saved = display.warning
    display.warning = lambda msg, *a, **kw: warnings.append(" ".join(str(msg).split()))
    try:
        manager = InventoryManager(loader=DataLoader(), sources=[str(path)])
        if limit:
            manager.subset(limit)
        hosts = tuple(h.name for h in manager.get_hosts("all"))
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
    return hosts
