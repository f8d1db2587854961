"""Shared by the plugin tests: the host probe is cached per root for one module run; a test is one run."""

from __future__ import annotations

import pytest

import fleetcare.collection  # noqa: F401  (puts the checkout's collection on the import path)


@pytest.fixture(autouse=True)
def _fresh_probe():
    from ansible_collections.fleetcare.ops.plugins.module_utils import host

    host._PROBES.clear()
    yield
    host._PROBES.clear()
