"""Short constructors for scenario data, so each scenario reads as a sentence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from dataplane.model import Endpoint, EndpointPort, EndpointSet, Service, ServicePort
from dataplane.scenarios.types import TIMEOUT, Expect, Probe

Facts = dict[str, str]


def ep(facts: Facts, pod: str, state: str = "ready") -> Endpoint:
    """An endpoint for lab pod ``ns/name``; state: ready, terminating, serving-terminating,
    not-ready."""
    node = {"web-1": "n1", "cli-1": "n1", "db-1": "n1"}.get(pod.split("/")[1], "n2")
    return Endpoint(
        [facts[pod]],
        node=node,
        ready=state == "ready",
        serving=state in ("ready", "serving-terminating"),
        terminating=state in ("terminating", "serving-terminating"),
    )


def service(
    facts: Facts,
    name: str,
    vip: str,
    pods: Sequence[str | tuple[str, str]] = (),
    *,
    ns: str = "default",
    ports: Sequence[tuple[str, int, str]] = (("", 80, "TCP"),),
    node_ports: Sequence[int | None] = (),
    target: int | str = 8080,
    **kwargs: Any,
) -> list[Service | EndpointSet]:
    """A service whose ports forward to the pods' echo port 8080 (same port per protocol)."""
    svc_ports = [
        ServicePort(
            port,
            proto,
            pname,
            target_port=target,
            node_port=node_ports[i] if i < len(node_ports) else None,
        )
        for i, (pname, port, proto) in enumerate(ports)
    ]
    endpoints = [ep(facts, p) if isinstance(p, str) else ep(facts, *p) for p in pods]
    ep_ports = [EndpointPort(8080, proto, pname) for pname, _, proto in ports]
    return [
        Service(ns, name, svc_ports, cluster_ips=[vip] if vip else [], **kwargs),
        EndpointSet(ns, name, ep_ports, endpoints),
    ]


def unless(capability: str, probe: Probe, expect: Expect = TIMEOUT) -> Probe:
    """``probe``, expecting ``expect`` instead on backends without ``capability``."""
    return attrs.evolve(probe, overrides={**probe.overrides, "!" + capability: expect})
