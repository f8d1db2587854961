"""The service-level policy: how soon a failing finding must be answered and resolved, by severity,
how far off a waiver may expire, and when a fault counts as recurring.

The shipped defaults are ``fleetcare/data/policy.yml``; a customer's file (``--policy FILE``)
overrides any of their keys and keeps the rest. Both are read with the safe YAML loader of
:mod:`fleetcare.inputs` and checked here: an unknown key, a bad duration or a number out of range
is one :class:`~fleetcare.errors.InputError` naming the file and the key, before any host is
contacted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from fleetcare import inputs
from fleetcare.errors import InputError
from fleetcare.results import SEVERITIES

_DURATION = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_KEYS = {"service_levels": set(SEVERITIES), "waivers": {"max_days", "warn_days"},
         "recurring": {"times", "days"}}
_LEVEL_KEYS = ("respond", "resolve")


@dataclass(frozen=True, slots=True)
class ServiceLevel:
    """One severity's promise; None where the policy makes none."""

    respond: timedelta | None
    resolve: timedelta | None
    respond_text: str = "none"
    resolve_text: str = "none"


@dataclass(frozen=True, slots=True)
class Recurring:
    times: int
    days: int


@dataclass(frozen=True, slots=True)
class WaiverLimits:
    max_days: int
    warn_days: int


@dataclass(frozen=True, slots=True)
class Policy:
    service_levels: dict[str, ServiceLevel]
    waivers: WaiverLimits
    recurring: Recurring
    source: str  # the file it was read from, or "defaults"

    def level(self, severity: str) -> ServiceLevel:
        return self.service_levels.get(severity) or ServiceLevel(None, None)

    def describe(self) -> dict[str, dict[str, str]]:
        """The service levels as the reports print them: severity -> {respond, resolve}."""
        return {s: {"respond": lv.respond_text, "resolve": lv.resolve_text}
                for s, lv in self.service_levels.items()}


def parse_duration(value: Any, where: str) -> tuple[timedelta | None, str]:
    """``4h``, ``30d``, ``2w``, ``90m`` or ``none``; InputError naming ``where`` otherwise."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "none"):
        return None, "none"
    m = _DURATION.match(value) if isinstance(value, str) else None
    if m is None or int(m.group(1)) == 0:
        raise InputError(f"{where}: {value!r} is not a duration (a number above 0 and m, h, d or w, "
                         "e.g. 4h or 30d; or none)")
    return timedelta(**{_UNITS[m.group(2)]: int(m.group(1))}), f"{int(m.group(1))}{m.group(2)}"


def _count(value: Any, where: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise InputError(f"{where}: {value!r} must be a whole number of at least {low}")
    return value


def _mapping(value: Any, label: str, path: str, allowed: set[str] | tuple[str, ...]) -> dict[str, Any]:
    """``value`` as a mapping of ``allowed`` keys; ``path`` is its dotted key in the file ("" at the top)."""
    if not isinstance(value, dict):
        raise InputError(f"{label}: {path or 'the file'}: must be a mapping of {', '.join(sorted(allowed))}")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        raise InputError(f"{label}: {key}: unknown key (expected {', '.join(sorted(allowed))})")
    return value


def _merge(base: dict[str, Any], data: Any, label: str) -> dict[str, Any]:
    """``data`` (one policy file) checked key by key and laid over ``base``."""
    if data is None:
        return base
    top = _mapping(data, label, "", set(_KEYS))
    out = {k: dict(v) for k, v in base.items()}
    for section, values in top.items():
        if values is None:
            continue
        _mapping(values, label, section, _KEYS[section])
        for key, value in values.items():
            if section == "service_levels":
                if isinstance(value, str) and value.strip().lower() == "none":
                    value = {"respond": "none", "resolve": "none"}
                merged = dict(out[section].get(key) or {})
                merged.update(_mapping(value, label, f"{section}.{key}", _LEVEL_KEYS))
                value = merged
            out[section][key] = value
    return out


def _build(data: dict[str, Any], label: str, source: str) -> Policy:
    levels = {}
    for severity in SEVERITIES:
        raw = data["service_levels"].get(severity) or {}
        respond, respond_text = parse_duration(raw.get("respond"), f"{label}: service_levels.{severity}.respond")
        resolve, resolve_text = parse_duration(raw.get("resolve"), f"{label}: service_levels.{severity}.resolve")
        if respond and resolve and respond > resolve:
            raise InputError(f"{label}: service_levels.{severity}: respond ({respond_text}) is later than "
                             f"resolve ({resolve_text})")
        levels[severity] = ServiceLevel(respond, resolve, respond_text, resolve_text)
    w, r = data["waivers"], data["recurring"]
    limits = WaiverLimits(_count(w.get("max_days"), f"{label}: waivers.max_days", 1),
                          _count(w.get("warn_days"), f"{label}: waivers.warn_days", 0))
    if limits.warn_days > limits.max_days:
        raise InputError(f"{label}: waivers.warn_days ({limits.warn_days}) is above waivers.max_days "
                         f"({limits.max_days})")
    recurring = Recurring(_count(r.get("times"), f"{label}: recurring.times", 2),
                          _count(r.get("days"), f"{label}: recurring.days", 1))
    return Policy(levels, limits, recurring, source)


@cache
def _defaults_data() -> dict[str, Any]:
    text = resources.files("fleetcare").joinpath("data", "policy.yml").read_text(encoding="utf-8")
    empty: dict[str, Any] = {k: {} for k in _KEYS}
    return _merge(empty, inputs.load_yaml_text(text, "fleetcare/data/policy.yml"), "fleetcare/data/policy.yml")


def defaults() -> Policy:
    return _build(_defaults_data(), "fleetcare/data/policy.yml", "defaults")


def load(path: Path | str | None = None) -> Policy:
    """The policy: the shipped defaults, with the keys of ``path`` (a customer's file) over them."""
    if path is None:
        return defaults()
    path = Path(path).expanduser()
    label = f"--policy {path}"
    data = inputs.load_yaml(path, "policy file")
    return _build(_merge(_defaults_data(), data, label), label, str(path))
