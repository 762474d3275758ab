"""The reference outcome of a probe: fake backends on every node, traced hop by hop.

A probe's packet is traced on the node it enters (its own node for pods and
node processes, the ``via`` node or the addressed node for external
clients). If NAT sends it to a pod on another node, the packet as it leaves
(masqueraded or not) is traced again on that node. The outcome is what the
fake backends answer; kernel backends must observe the same.
"""

from __future__ import annotations

import ipaddress

import attrs

from dataplane.backends.base import Capabilities
from dataplane.backends.fake import FakeBackend
from dataplane.calc.evaluate import Packet, Verdict
from dataplane.engine import Dataplane, DataplaneConfig
from dataplane.lab.plan import ClientInfo, LabPlan, NodeInfo, PodInfo
from dataplane.model import DesiredState, IPAddress
from dataplane.scenarios.cluster import base_objects, cluster_facts
from dataplane.scenarios.types import Expect, Outcome, Probe, Scenario


@attrs.frozen
class Observed:
    """What the reference predicts for one probe."""

    outcome: Outcome
    backends: frozenset[str]
    source: str  # "client" or "node"
    trace: tuple[str, ...]


class ReferenceCluster:
    """One fake data plane per node, all given the same desired state."""

    def __init__(self, plan: LabPlan, caps: Capabilities) -> None:
        self.plan = plan
        self.caps = caps
        self.planes: dict[str, Dataplane] = {}
        for node in plan.nodes:
            cfg = DataplaneConfig(backend="fake", node_name=node.name, resync_period=0)
            self.planes[node.name] = Dataplane(cfg, backend=FakeBackend(cfg, caps)).start()

    def apply(self, scenario: Scenario) -> None:
        objs = [*base_objects(self.plan), *scenario.objects(cluster_facts(self.plan))]
        state = DesiredState(objs)
        for dp in self.planes.values():
            dp.apply(state)

    def fake(self, node: str) -> FakeBackend:
        backend = self.planes[node].backend
        assert isinstance(backend, FakeBackend)
        return backend

    # ---------------------------------------------------------------- probing
    def _entry(self, probe: Probe) -> tuple[NodeInfo, str, str | None]:
        """(node the packet enters, source address, ingress interface)."""
        src = self.plan.host(probe.src)
        if isinstance(src, PodInfo):
            return self._node(src.node), src.ip, src.interface
        if isinstance(src, NodeInfo):
            return src, src.ip, None
        assert isinstance(src, ClientInfo)
        target = probe.via or self._owner(probe.dst)
        return self._node(target), src.ip, self._node(target).uplink

    def _node(self, name: str) -> NodeInfo:
        return next(n for n in self.plan.nodes if n.name == name)

    def _owner(self, dst: str) -> str:
        node = self._owner_of(ipaddress.ip_address(self._address(dst)))
        if node is None:
            raise ValueError(f"probe to {dst}: say which node it is routed via")
        return node.name

    def _address(self, ref: str) -> str:
        try:
            return str(ipaddress.ip_address(ref))
        except ValueError:
            return self.plan.host(ref).ip

    def _pod_at(self, address: str) -> PodInfo | None:
        return next((p for n in self.plan.nodes for p in n.pods if p.ip == address), None)

    def observe(self, probe: Probe) -> Observed:
        node, src, iface = self._entry(probe)
        pkt = Packet(
            src=src,
            dst=self._address(probe.dst),
            protocol=probe.protocol,
            dst_port=probe.port,
            ingress_interface=iface,
        )
        steps: list[str] = []
        return self._hop(node, pkt, steps, masqueraded=False)

    def _hop(self, node: NodeInfo, pkt: Packet, steps: list[str], masqueraded: bool) -> Observed:
        """Trace ``pkt`` on ``node``; follow it to the node owning the destination."""
        result = self.fake(node.name).trace(pkt)
        steps += [f"{node.name}: {s}" for s in result.steps]
        masq = masqueraded or result.masquerade
        if result.verdict is Verdict.REJECT:
            return Observed(Outcome.REFUSED, frozenset(), "client", tuple(steps))
        if result.verdict in (Verdict.DENY, Verdict.DROP):
            steps.append(f"{node.name}: {result.verdict.value}: {result.reason}")
            return Observed(Outcome.TIMEOUT, frozenset(), "client", tuple(steps))
        targets: list[tuple[IPAddress, int | None, Verdict]] = [
            (c.backend.address, c.backend.port, c.decision.verdict)
            for c in result.candidates
            if c.backend
        ] or [(pkt.dst, pkt.dst_port, result.verdict)]
        reached: set[str] = set()
        for addr, port, verdict in targets:
            if verdict is not Verdict.ALLOW:
                continue
            owner = self._owner_of(addr)
            if owner is None or owner.name == node.name:
                pod = self._pod_at(str(addr))
                reached.add(pod.key if pod else node.name)
                continue
            src = node.ip if result.masquerade else str(pkt.src)
            hop = Packet(
                src=src,
                dst=addr,
                protocol=pkt.protocol,
                dst_port=port,
                ingress_interface=owner.uplink,
            )
            sub = self._hop(owner, hop, steps, masq)
            if sub.outcome is Outcome.CONNECTED:
                reached |= sub.backends
                masq = masq or sub.source == "node"
        if not reached:
            return Observed(Outcome.TIMEOUT, frozenset(), "client", tuple(steps))
        return Observed(
            Outcome.CONNECTED, frozenset(reached), "node" if masq else "client", tuple(steps)
        )

    def _owner_of(self, addr: IPAddress) -> NodeInfo | None:
        for node in self.plan.nodes:
            if addr == ipaddress.ip_address(node.ip) or addr in ipaddress.ip_network(node.pod_cidr):
                return node
        return None


def matches(observed: Observed, expect: Expect) -> bool:
    if observed.outcome is not expect.outcome:
        return False
    if expect.backends is not None and observed.backends != expect.backends:
        return False
    return expect.source is None or observed.source == expect.source
