"""What a run means: which playbook, inventory, variables and checks.

The commands and their options are declared in :mod:`fleetcare.commands`; this module turns one
of them, with the user's arguments, into a :class:`Job`.

A :class:`Job` is plain data. Building one validates everything the user gave
(inventory, ``--limit``, role variables) so that bad input fails here, before
Ansible starts, with one line naming the file and the key.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from fleetcare import collection, commands, inputs
from fleetcare.errors import InputError

ROOT = collection.ROOT  # the collection root and Ansible project
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
        if not option.metavar:  # a switch that sets a boolean role variable
            extravars[option.var] = True
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
    if forks < 1:
        raise InputError(f"--forks: must be at least 1, not {forks}")
    if local:
        check_job_vars(roles, extravars, vars_files, var_pairs, None, limit)
    else:
        hosts = _judged_inventory(command, roles, inv, limit, extravars, vars_files, var_pairs)
    return Job(command, ROOT / spec.playbook, roles, inv, hosts, limit, extravars, forks=forks, local=local,
               **fields)


# -- role variables ---------------------------------------------------------------
def parse_var(pair: str) -> tuple[str, Any]:
    key, sep, raw = pair.partition("=")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise InputError(f"-e {pair!r}: expected KEY=VALUE with a variable name as KEY")
    value = inputs.load_value(raw, f"-e {key}") if raw.strip() else ""
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
        doc = yaml.load(fh, Loader=inputs.YAML_LOADER)
    return doc["argument_specs"]["main"].get("options") or {}


@cache
def _unprefixed_match(key: str, role: str) -> str | None:
    """The role variable an unprefixed name stands for (``disk_warn_pct``), if it is that name
    or very close to it (``disk_wran_pct``); other names are the user's own and pass."""
    if key.startswith(role + "_"):
        return None
    spec = argument_spec(role)
    near = difflib.get_close_matches(f"{role}_{key}", list(spec), n=1, cutoff=0.9)
    return near[0] if near else None


@cache
def roles_with_spec() -> tuple[str, ...]:
    return tuple(sorted(p.name for p in (ROOT / "roles").iterdir() if (p / "meta" / "argument_specs.yml").is_file()))


def role_var_candidate(key: str, roles: tuple[str, ...] | None = None) -> bool:
    """True for a name that :func:`check_role_vars` judges: a role's variable or a near miss."""
    return any(key.startswith(r + "_") or _unprefixed_match(key, r) for r in roles or roles_with_spec())


def _templated(value: Any) -> bool:
    # Ansible renders it at run time; only the module can judge the result
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def check_role_vars(data: Mapping[str, Any], roles: tuple[str, ...], source: str) -> None:
    """Variables named after a role (``health_*``) must exist in that role's argument spec and have
    the right type, and numbers must be finite; a role's variable without its prefix is refused with
    the right name. Other variables pass through."""
    _typed(data, roles, source)


def _typed(data: Mapping[str, Any], roles: tuple[str, ...], source: str) -> dict[str, dict[str, Any]]:
    """role -> its variables in ``data`` converted to their spec types (templated ones left out)."""
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    typed: dict[str, dict[str, Any]] = {}
    for role in roles:
        spec = argument_spec(role)
        for key in data:
            meant = _unprefixed_match(str(key), role)
            if meant:
                raise InputError(f"{source}: {key}: not a variable of role {role} (did you mean {meant}?)")
        mine = {k: v for k, v in data.items() if k.startswith(role + "_")}
        for key in mine:
            if key not in spec:
                near = difflib.get_close_matches(key, list(spec), n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                raise InputError(f"{source}: {key}: not a variable of role {role}{hint}")
        mine = {k: v for k, v in mine.items() if not _templated(v)}
        typed[role] = {}
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
        typed[role] = dict(result.validated_parameters)
    return typed


def _check_range(source: str, key: str, value: Any) -> None:
    """Every number is finite, for every role (ranges and pairs are the role's own checks)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"{source}: {key}: must be a finite number, not {value}")


def check_job_vars(roles: tuple[str, ...], extravars: Mapping[str, Any], vars_files: tuple[str, ...],
                   var_pairs: tuple[str, ...], inventory: Path | None, limit: str | None) -> None:
    """Run each role's own checks (plugins/module_utils/validation.py, as its module does) on the
    values every host will get: role defaults, then the inventory's vars for that host, then the
    extra variables. One line names where the offending key was set."""
    from fleetcare.collection import module_utils

    checks = module_utils("validation").CHECKS
    where: dict[str, str] = {}  # extra variable -> the source that set it last
    for path in vars_files:
        where.update(dict.fromkeys(load_vars_file(path, ()), path))
    for pair in var_pairs:
        where[parse_var(pair)[0]] = "-e"
    extra = _typed(extravars, roles, "-e")
    view: dict[str, Any] = {"layers": {}}
    layers: dict[str, dict[str, dict[str, Any]]] = {}
    if inventory is None:
        per_host: list[tuple[dict[str, str], tuple[str, ...]]] = [({}, ())]
    else:
        view = inputs.load_inventory(inventory, limit)
        layers = {label: _typed(data, roles, f"{inventory}: {label}") for label, data in view["layers"].items()}
        per_host = []
        for labels in {tuple(v) for v in view["order"].values()}:
            origin = {k: label for label in labels for k in view["layers"][label]}  # the last one wins
            per_host.append((origin, labels))
    for role in (r for r in roles if r in checks):
        prefix = role + "_"
        defaults = {k[len(prefix):]: v.get("default") for k, v in argument_spec(role).items()}
        for origin, labels in per_host:
            params, unknown = dict(defaults), set()
            for raw, layer in [*((view["layers"][lb], layers[lb]) for lb in labels), (extravars, extra)]:
                params.update((k[len(prefix):], v) for k, v in layer[role].items())
                unknown = (unknown | {k for k, v in raw.items() if _templated(v)}) - set(layer[role])
            problems = [(options, message) for options, message in
                        checks[role](params, name=lambda option, p=prefix: p + option)
                        if not unknown.intersection(prefix + o for o in options)]
            if not problems:
                continue
            options, message = problems[0]
            named = [prefix + o for o in options]
            # the key to name: one the user set, from the most specific place
            key = next((k for k in named if k in extra[role]), None) or max(
                (k for k in named if k in origin), key=lambda k: labels.index(origin[k]), default=named[0])
            source = where.get(key, "-e") if key in extra[role] else (
                f"{inventory}: {origin[key]}" if key in origin else f"roles/{role}/defaults/main.yml")
            unset = [k for k in named if k != key and k not in extra[role] and k not in origin]
            note = f"; {', '.join(unset)} is the role default" if unset else ""
            if message.startswith(key + ": "):  # a message that names its option first says it once
                message = message[len(key) + 2:]
            raise InputError(f"{source}: {key}: {message}{note}")


# -- inventories --------------------------------------------------------------------
def _load_yaml(path: Path, what: str) -> Any:
    return inputs.load_yaml(path, what)


def _judged_inventory(command: str, roles: tuple[str, ...], inv: Path, limit: str | None,
                      extravars: dict[str, Any], vars_files: tuple[str, ...], var_pairs: tuple[str, ...]
                      ) -> tuple[str, ...]:
    """The hosts of the run, once the inventory and every host's role variables passed their
    checks; a static inventory's passed verdict is kept for the same inputs (fleetcare.verdicts)."""
    from fleetcare import verdicts

    os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))  # before the key: it hashes ANSIBLE_*
    material = None
    if not (limit or "").startswith("@") and verdicts.cacheable(extravars):  # @file: a list of hosts
        material = verdicts.key(inputs.inventory_files(inv), command=command, roles=roles, inventory=str(inv),
                                limit=limit, extravars=extravars)
        kept = verdicts.hosts(material)
        if kept is not None:
            return kept
    view = inputs.load_inventory(inv, limit)
    check_job_vars(roles, extravars, vars_files, var_pairs, inv, limit)
    hosts = tuple(view["hosts"])
    if material is not None and not view["dynamic"]:
        verdicts.keep(material, hosts)
    return hosts


def inventory_hosts(path: Path, limit: str | None) -> tuple[str, ...]:
    """Parse an inventory the way Ansible will (a dynamic one in a bounded child process; see
    fleetcare.inputs), and return the hosts a run covers."""
    os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    return tuple(inputs.load_inventory(path, limit)["hosts"])
