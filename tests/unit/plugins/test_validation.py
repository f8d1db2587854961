"""plugins/module_utils/validation.py: the module and the wrapper judge role variables with the
same function, so whatever the module would refuse on every host the wrapper refuses first."""

from __future__ import annotations

import importlib
import math

import pytest

from fleetcare import jobs
from fleetcare.collection import PACKAGE, module_utils
from fleetcare.errors import InputError

validation = module_utils("validation")  # also puts the collection on sys.path for the module
hi = importlib.import_module(f"{PACKAGE}.plugins.module_utils.health_inspection")
PARAMS = {name: opt.get("default") for name, opt in hi.ARGUMENT_SPEC.items()}


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_the_module_refuses_numbers_that_are_not_finite(value):
    errors = hi.validate(dict(PARAMS, disk_warn_pct=value))
    assert len(errors) == 1
    assert "health_disk_warn_pct" in errors[0] and "finite" in errors[0]


def test_defaults_are_valid_for_module_and_wrapper():
    assert hi.validate(PARAMS) == []
    jobs.check_job_vars(("health",), {}, (), (), None, None)


CHANGES = [
    {}, {"disk_warn_pct": 96.0}, {"disk_critical_pct": 80.0}, {"disk_warn_pct": 95.0},
    {"sample_seconds": 10.0}, {"sample_seconds": 5.0}, {"sample_seconds": -0.5},
    {"mem_warn_pct": 98.0, "mem_critical_pct": 99.0}, {"mem_warn_pct": 99.0, "mem_critical_pct": 98.0},
    {"cert_critical_days": 31}, {"cert_warn_days": 5}, {"cert_critical_days": -1, "cert_warn_days": -1},
    {"log_window_minutes": 0}, {"log_warn_count": 600}, {"oom_warn_count": -3},
    {"net_error_warn_pct": 100.5}, {"load_warn_per_core": 3.0}, {"load_critical_per_core": math.nan},
    {"inode_critical_pct": math.inf}, {"backup_max_age_hours": -1}, {"disk_io_warn_pct": 0.0},
]


@pytest.mark.parametrize("change", CHANGES, ids=[",".join(f"{k}={v}" for k, v in c.items()) or "defaults"
                                                   for c in CHANGES])
def test_the_wrapper_refuses_exactly_what_the_module_refuses(change):
    module_says = hi.validate(dict(PARAMS, **change))
    extravars = {f"health_{k}": v for k, v in change.items()}
    try:
        jobs.check_role_vars(extravars, ("health",), "-e")
        jobs.check_job_vars(("health",), extravars, (), (), None, None)
    except InputError as exc:
        assert module_says, f"the wrapper refused what the module accepts: {exc}"
        named = str(exc).split(": ")[1]
        assert any(named in msg for msg in module_says), (named, module_says)
    else:
        assert not module_says, f"the wrapper let through what the module refuses: {module_says}"


def test_every_numeric_option_of_the_module_is_judged():
    """A new threshold without a check would pass NaN to the module: every int/float option is in a
    pair or a bound of its role's check."""
    judged = {o for pair in validation.HEALTH_PAIRS for o in pair[:2] if o} | {
        b[0] for b in validation.HEALTH_BOUNDS}
    numeric = {k for k, v in hi.ARGUMENT_SPEC.items() if v["type"] in ("int", "float")}
    assert numeric == judged
