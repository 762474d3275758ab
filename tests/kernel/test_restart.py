"""Agent restarts and program reloads do not break established connections.

For every kernel backend: long-lived TCP connections through a ClusterIP
(pod on another node) and a NodePort (external client) keep echoing,
with zero failures, while every node's agent is stopped and a new one adopts
what the old one installed.
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
from dataplane.scenarios.types import Probe, Scenario, connected

pytestmark = pytest.mark.kernel

VIP = "10.96.0.80"


def _objects(f: dict[str, str]) -> list[object]:
    from dataplane.model import Endpoint, EndpointPort, EndpointSet, Service, ServicePort

    return [
        Service(
            "default",
            "long",
            [ServicePort(80, target_port=8080, node_port=30180)],
            type="NodePort",
            cluster_ips=[VIP],
        ),
        EndpointSet(
            "default", "long", [EndpointPort(8080)], [Endpoint([f["default/web-2"]], node="n2")]
        ),
    ]


SCENARIO = Scenario(
    "long-lived",
    _objects,  # type: ignore[arg-type]
    (
        Probe("default/cli-1", VIP, 80, connected("default/web-2")),
        Probe("ext", "n1", 30180, connected("default/web-2")),
    ),
)


def _reason(name: str) -> str | None:
    try:
        return unavailable_reason() or backend_class(name).unavailable_reason()
    except DataplaneError as exc:
        return str(exc)


@pytest.fixture(params=["ebpf", "iptables"])
def cluster(request: pytest.FixtureRequest) -> Iterator[LabCluster]:
    reason = _reason(request.param)
    if reason:
        pytest.skip(f"{request.param}: {reason}")
    with Lab(STANDARD_SPEC) as lab:
        running = LabCluster(lab, request.param)
        try:
            yield running
        finally:
            running.cleanup()


def test_connections_survive_agent_restart(cluster: LabCluster) -> None:
    reports = cluster.run(SCENARIO)
    assert all(r.ok for r in reports), reports
    lab = cluster.lab
    conns = [
        lab.open_connection("default/cli-1", VIP, 80, interval=0.05),
        lab.open_connection("ext", "n1", 30180, interval=0.05),
    ]
    try:
        for _ in range(2):
            cluster.restart()
            for conn in conns:
                assert conn.ping(), conn.status()
        for conn in conns:
            status = conn.status()
            assert status.healthy and status.pings > 0, status
    finally:
        for conn in conns:
            conn.close()
