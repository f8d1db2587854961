"""fleetcare: keeps server fleets healthy, patched, hardened, backed up and consistent."""

__version__ = "0.1.0"


def _xdg_dir(variable: str, *default: str):
    """``$variable/fleetcare``, or ``~/<default...>/fleetcare`` when it is unset or empty."""
    import os
    from pathlib import Path

    return Path(os.environ.get(variable) or os.path.join(os.path.expanduser("~"), *default)) / "fleetcare"


def data_dir():
    """Where fleetcare keeps its history and run directories ($XDG_DATA_HOME/fleetcare)."""
    return _xdg_dir("XDG_DATA_HOME", ".local", "share")


def cache_dir():
    """Where fleetcare keeps code it compiled, no run data ($XDG_CACHE_HOME/fleetcare,
    fleetcare.codecache)."""
    return _xdg_dir("XDG_CACHE_HOME", ".cache")
