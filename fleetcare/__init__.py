"""fleetcare: keeps server fleets healthy, patched, hardened, backed up and consistent."""

__version__ = "0.1.0"
