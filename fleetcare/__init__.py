"""fleetcare: keeps server fleets healthy, patched, hardened, backed up and consistent."""

__version__ = "0.1.0"


def data_dir():
    """Where fleetcare keeps its history and run directories ($XDG_DATA_HOME/fleetcare)."""
    import os
    from pathlib import Path

    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "fleetcare"
