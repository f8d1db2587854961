#!/usr/bin/env python3
"""Run fleetcare from a checkout: the same entry point as the `fleetcare` command."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleetcare.cli import main

if __name__ == "__main__":
    sys.exit(main())
