"""Every scenario with real packets: a lab cluster programmed by a kernel backend.

The expectations are the ones the reference checks (``test_reference.py``);
a backend that cannot run here is skipped with its reason, and so is any
scenario that needs a capability the backend lacks or a protocol the kernel
lacks (SCTP on kernels without CONFIG_IP_SCTP).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dataplane.backends.registry import backend_class
from dataplane.errors import DataplaneError
from dataplane.lab.lab import Lab
from dataplane.lab.netns import unavailable_reason
from dataplane.scenarios.cluster import STANDARD_SPEC
from dataplane.scenarios.run import LabCluster
from dataplane.scenarios.types import Scenario

from .scenarios_policy import POLICY_SCENARIOS
from .scenarios_services import SERVICE_SCENARIOS

pytestmark = pytest.mark.kernel

KERNEL_BACKENDS = {  # id: (backend, config)
    "iptables": ("iptables", {"options": {"iptables_nat": "iptables"}}),
    "iptables-nftables-nat": ("iptables", {"options": {"iptables_nat": "nftables"}}),
    "ebpf": ("ebpf", {}),
}
ALL = [*SERVICE_SCENARIOS, *POLICY_SCENARIOS]


def _backend_reason(name: str) -> str | None:
    try:
        return backend_class(name).unavailable_reason()
    except DataplaneError as exc:
        return str(exc)


@pytest.fixture(scope="module", params=list(KERNEL_BACKENDS))
def cluster(request: pytest.FixtureRequest) -> Iterator[LabCluster]:
    backend, config = KERNEL_BACKENDS[request.param]
    reason = unavailable_reason() or _backend_reason(backend)
    if reason:
        pytest.skip(f"{backend}: {reason}")
    with Lab(STANDARD_SPEC) as lab:
        running = LabCluster(lab, backend, **config)
        try:
            yield running
        finally:
            running.cleanup()


@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.name)
def test_scenario_in_lab(cluster: LabCluster, scenario: Scenario) -> None:
    caps = cluster.capabilities
    needs = (*scenario.requires, *(("policy",) if scenario in POLICY_SCENARIOS else ()))
    missing = [c for c in needs if not getattr(caps, c)]
    if missing:
        pytest.skip(f"backend lacks {', '.join(missing)}")
    if any(p.protocol == "sctp" for p in scenario.probes) and not cluster.lab.sctp_supported:
        pytest.skip("kernel without SCTP")
    reports = cluster.run(scenario)
    failures = [
        f"{r.probe}: expected {r.expect.outcome.value} {sorted(r.expect.backends or [])} "
        f"source={r.expect.source}; got {r.result.outcome} from {r.answered_by} "
        f"seen_source={r.result.seen_source} ({r.source})"
        for r in reports
        if not r.ok
    ]
    assert not failures, "\n".join(failures)
