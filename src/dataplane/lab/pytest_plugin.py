"""pytest fixtures for the lab; register with ``pytest_plugins = ["dataplane.lab.pytest_plugin"]``.

``lab`` is module-scoped: a module's tests share one lab, built from the
``lab_spec`` fixture, which a module overrides to get another topology.  The
fixture skips (with the reason) when the machine cannot host a lab.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dataplane.lab.lab import Lab
from dataplane.lab.netns import unavailable_reason
from dataplane.lab.spec import LabSpec


@pytest.fixture(scope="module")
def lab_spec() -> LabSpec:
    """Two nodes with two pods each, one client on the fabric, one behind the router."""
    return LabSpec.uniform(2, 2, fabric_clients=1, remote_clients=1)


@pytest.fixture(scope="module")
def lab(lab_spec: LabSpec) -> Iterator[Lab]:
    reason = unavailable_reason()
    if reason:
        pytest.skip(reason)
    with Lab(lab_spec) as running:
        yield running
