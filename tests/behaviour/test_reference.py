"""Every scenario against the reference (fake backends on every node)."""

from __future__ import annotations

import pytest

from dataplane.backends.base import Capabilities
from dataplane.backends.fake import FULL_CAPABILITIES
from dataplane.scenarios.cluster import reference_plan
from dataplane.scenarios.reference import ReferenceCluster, matches
from dataplane.scenarios.types import Scenario

from .scenarios_policy import POLICY_SCENARIOS
from .scenarios_services import SERVICE_SCENARIOS

KUBE_PROXY_LIKE = FULL_CAPABILITIES
SOURCE_PRESERVING = Capabilities(dsr=True, source_ip_preservation=True)

ALL = [*SERVICE_SCENARIOS, *POLICY_SCENARIOS]


def test_enough_scenarios() -> None:
    assert len(SERVICE_SCENARIOS) >= 40
    assert len(POLICY_SCENARIOS) >= 25
    assert len({s.name for s in ALL}) == len(ALL), "scenario names must be unique"


@pytest.mark.parametrize(
    "caps", [KUBE_PROXY_LIKE, SOURCE_PRESERVING], ids=["masquerading", "source-preserving"]
)
@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.name)
def test_scenario_reference(scenario: Scenario, caps: Capabilities) -> None:
    cluster = ReferenceCluster(reference_plan(), caps)
    cluster.apply(scenario)
    for probe in scenario.probes:
        expect = probe.expectation(caps)
        observed = cluster.observe(probe)
        assert matches(observed, expect), (
            f"{probe}: expected {expect}, reference says {observed.outcome.value} "
            f"backends={sorted(observed.backends)} source={observed.source}\n  "
            + "\n  ".join(observed.trace)
        )
