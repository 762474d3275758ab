"""Every scenario through the HNS emulator: ``windows-hns`` on each node of the standard cluster.

Expectations are the scenario data's, resolved for ``HnsBackend.capabilities``:
where HNS differs by design the probe carries an override keyed by the
missing capability, and a scenario that needs what HNS cannot express at all
names it in ``requires`` and is skipped here with that reason.
"""

from __future__ import annotations

import pytest

from dataplane.backends.windows_hns import HnsBackend
from dataplane.scenarios.cluster import reference_plan
from dataplane.scenarios.hns import HnsEmulatorCluster
from dataplane.scenarios.reference import matches
from dataplane.scenarios.types import Scenario

from .scenarios_policy import POLICY_SCENARIOS
from .scenarios_services import SERVICE_SCENARIOS

CAPS = HnsBackend.capabilities
ALL = [*SERVICE_SCENARIOS, *POLICY_SCENARIOS]


# Documented HNS limitations that no Capabilities field names yet, so the
# scenario data cannot state them as overrides. Strict: once a flag exists and
# the data says it, the xfail must go (an unexpected pass fails the run).
@pytest.mark.parametrize("scenario", [pytest.param(s, id=s.name) for s in ALL])
def test_scenario_hns(scenario: Scenario) -> None:
    missing = [c for c in scenario.requires if not getattr(CAPS, c)]
    if missing:
        pytest.skip(f"windows-hns lacks {', '.join(missing)}")
    cluster = HnsEmulatorCluster(reference_plan())
    cluster.apply(scenario)
    failures = []
    for probe in scenario.probes:
        expect = probe.expectation(CAPS)
        observed = cluster.observe(probe)
        if not matches(observed, expect):
            failures.append(
                f"{probe}: expected {expect}, emulator says {observed.outcome.value} "
                f"backends={sorted(observed.backends)} source={observed.source}\n  "
                + "\n  ".join(observed.trace)
            )
    assert not failures, "\n".join(failures)
