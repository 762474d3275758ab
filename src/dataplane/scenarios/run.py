"""Run scenarios with real packets: a lab, a backend per node, probes, comparisons.

The same :class:`~dataplane.scenarios.types.Scenario` values the reference
checks are applied here to every node's real data plane, and each probe's
observation (connected/refused/timeout, who answered, which source the
server saw) is compared with the expectation.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import attrs

from dataplane.backends.base import Capabilities
from dataplane.lab.addressing import SERVICE_CIDR
from dataplane.lab.lab import Lab
from dataplane.lab.plan import ClientInfo
from dataplane.lab.results import ProbeResult
from dataplane.lab.spec import ROUTER_HOST
from dataplane.model import DesiredState
from dataplane.scenarios.cluster import base_objects, cluster_facts
from dataplane.scenarios.types import Expect, Outcome, Probe, Scenario

PROBE_TIMEOUT = 1.0


@attrs.frozen
class ProbeReport:
    probe: Probe
    expect: Expect
    result: ProbeResult
    source: str  # "client", "node" or the address the server saw

    @property
    def ok(self) -> bool:
        exp = self.expect
        outcome = {"connected": Outcome.CONNECTED, "refused": Outcome.REFUSED}.get(
            self.result.outcome, Outcome.TIMEOUT
        )
        if outcome is not exp.outcome:
            return False
        if exp.backends is not None and self.answered_by not in exp.backends:
            return False
        return exp.source is None or exp.source == self.source

    @property
    def answered_by(self) -> str | None:
        return self.result.server_pod or self.result.server_node


class LabCluster:
    """One data plane per lab node, all fed the same desired state."""

    def __init__(self, lab: Lab, backend: str, **config: Any) -> None:
        self.lab = lab
        self._backend = backend
        self._config = config
        self._scenario: Scenario | None = None
        self.planes = self._start_planes()
        self._routes: dict[tuple[str, str], str] = {}
        # Nodes send service traffic they originate towards their gateway, as a
        # real node's default route would (the lab gives them none).
        if lab.plan.router is not None:
            for name in lab.nodes:
                self._route(name, str(SERVICE_CIDR), ROUTER_HOST)

    def _start_planes(self) -> dict[str, Any]:
        return {
            name: self.lab.dataplane(
                name, backend=self._backend, resync_period=0, **self._config
            ).start()
            for name in self.lab.nodes
        }

    def restart(self) -> None:
        """Stop every agent (the kernel stays programmed), start new ones, re-apply.

        This is what an agent upgrade does; established connections must survive it.
        """
        for dp in self.planes.values():
            dp.close()
        self.planes = self._start_planes()
        if self._scenario is not None:
            self.apply(self._scenario)

    @property
    def capabilities(self) -> Capabilities:
        plane = next(iter(self.planes.values()))
        caps: Capabilities = plane.backend.capabilities
        return caps

    def apply(self, scenario: Scenario) -> None:
        self._scenario = scenario
        objs = [*base_objects(self.lab.plan), *scenario.objects(cluster_facts(self.lab.plan))]
        state = DesiredState(objs)
        for dp in self.planes.values():
            dp.apply(state)

    def probe(self, probe: Probe) -> ProbeReport:
        if probe.via is not None:
            self._route(probe.src, f"{self._address(probe.dst)}/32", probe.via)
        proto: Any = probe.protocol  # validated by the lab
        result = self.lab.probe(
            probe.src, self._address(probe.dst), probe.port, proto, PROBE_TIMEOUT
        )
        return ProbeReport(
            probe, probe.expectation(self.capabilities), result, self._source(probe, result)
        )

    def _route(self, host: str, dst: str, via: str) -> None:
        """Route ``dst`` from ``host`` via node ``via`` (through the router if behind it)."""
        info = self.lab.plan.host(host)
        hops = [(host, via)]
        if isinstance(info, ClientInfo) and info.gateway is not None:
            hops = [(ROUTER_HOST, via), (host, info.gateway)]
        for src, gw in hops:
            known = self._routes.get((src, dst))
            if known is None:
                self.lab.add_route(src, dst, gw)
                self._routes[(src, dst)] = gw
            elif known != gw:
                raise ValueError(
                    f"{src}: {dst} is already routed via {known}, not {gw}; "
                    "give scenarios that route it elsewhere another address"
                )

    def run(self, scenario: Scenario) -> list[ProbeReport]:
        self.apply(scenario)
        return [self.probe(p) for p in scenario.probes]

    def cleanup(self) -> None:
        for dp in self.planes.values():
            dp.cleanup()
            dp.close()

    def _address(self, ref: str) -> str:
        try:
            return str(ipaddress.ip_address(ref))
        except ValueError:
            return self.lab.plan.host(ref).ip

    def _source(self, probe: Probe, result: ProbeResult) -> str:
        client = self.lab.plan.host(probe.src).ip
        if result.seen_source is None or result.seen_source == client:
            return "client"
        if result.seen_source in {n.ip for n in self.lab.plan.nodes}:
            return "node"
        return result.seen_source
