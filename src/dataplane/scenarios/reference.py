"""The reference outcome of a probe: fake backends on every node, traced hop by hop.

A probe's packet is traced on the node it enters (its own node for pods and
node processes, the ``via`` node or the addressed node for external
clients). If NAT sends it to a pod on another node, the packet as it leaves
(masqueraded or not) is traced again on that node. The outcome is what the
fake backends answer; kernel backends must observe the same.

Following hops is the same for every backend that can answer traffic
questions without packets (the fake, the HNS emulator), so it lives in
:class:`TracedCluster`; a subclass only says what one node does to one
packet (:meth:`TracedCluster.trace_on`).
"""

from __future__ import annotations

import abc
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


@attrs.frozen
class Target:
    """Where one node sends a packet (after NAT, if any) and whether it lets it go there."""

    address: IPAddress
    port: int | None
    allowed: bool


@attrs.frozen
class Hop:
    """One node's answer for one packet, in the terms hop-following needs.

    ``end``: REFUSED or TIMEOUT when the packet goes no further on this node;
    None to follow ``targets``. ``masquerade``: the node rewrites the source
    to its own address before sending the packet on.
    """

    end: Outcome | None
    targets: tuple[Target, ...] = ()
    masquerade: bool = False
    steps: tuple[str, ...] = ()


class TracedCluster(abc.ABC):
    """One data plane per node of ``plan``, a probe followed from node to node.

    Subclasses fill ``planes`` and implement :meth:`trace_on`; applying a
    scenario and following a probe through the cluster are common.
    """

    def __init__(self, plan: LabPlan, caps: Capabilities) -> None:
        self.plan = plan
        self.caps = caps
        self.planes: dict[str, Dataplane] = {}

    def apply(self, scenario: Scenario) -> None:
        objs = [*base_objects(self.plan), *scenario.objects(cluster_facts(self.plan))]
        state = DesiredState(objs)
        for dp in self.planes.values():
            dp.apply(state)

    @abc.abstractmethod
    def trace_on(self, node: NodeInfo, pkt: Packet) -> Hop:
        """What ``node`` does with ``pkt``; targets on ``node`` itself are decided here."""

    # ---------------------------------------------------------------- probing
    def _entry(self, probe: Probe) -> tuple[NodeInfo, str, str | None]:
        """(node the packet enters, source address, ingress interface)."""
        src = self.plan.host(probe.src)
        if isinstance(src, PodInfo):
            return self.node(src.node), src.ip, src.interface
        if isinstance(src, NodeInfo):
            return src, src.ip, None
        assert isinstance(src, ClientInfo)
        target = probe.via or self._owner(probe.dst)
        return self.node(target), src.ip, self.node(target).uplink

    def node(self, name: str) -> NodeInfo:
        return next(n for n in self.plan.nodes if n.name == name)

    def _owner(self, dst: str) -> str:
        node = self.owner_of(ipaddress.ip_address(self._address(dst)))
        if node is None:
            raise ValueError(f"probe to {dst}: say which node it is routed via")
        return node.name

    def _address(self, ref: str) -> str:
        try:
            return str(ipaddress.ip_address(ref))
        except ValueError:
            return self.plan.host(ref).ip

    def pod_at(self, address: IPAddress | str) -> PodInfo | None:
        return next((p for n in self.plan.nodes for p in n.pods if p.ip == str(address)), None)

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
        hop = self.trace_on(node, pkt)
        steps += [f"{node.name}: {s}" for s in hop.steps]
        if hop.end is not None:
            return Observed(hop.end, frozenset(), "client", tuple(steps))
        masq = masqueraded or hop.masquerade
        reached: set[str] = set()
        for target in hop.targets:
            if not target.allowed:
                continue
            owner = self.owner_of(target.address)
            if owner is None or owner.name == node.name:
                reached.add(self._answerer(node, target.address))
                continue
            hop_pkt = Packet(
                src=node.ip if hop.masquerade else str(pkt.src),
                dst=target.address,
                protocol=pkt.protocol,
                dst_port=target.port,
                ingress_interface=owner.uplink,
            )
            sub = self._hop(owner, hop_pkt, steps, masq)
            if sub.outcome is Outcome.CONNECTED:
                reached |= sub.backends
                masq = masq or sub.source == "node"
        if not reached:
            return Observed(Outcome.TIMEOUT, frozenset(), "client", tuple(steps))
        return Observed(
            Outcome.CONNECTED, frozenset(reached), "node" if masq else "client", tuple(steps)
        )

    def _answerer(self, node: NodeInfo, address: IPAddress) -> str:
        """Who answers at ``address`` on ``node``: the pod there, else the node itself."""
        pod = self.pod_at(address)
        return pod.key if pod else node.name

    def owner_of(self, addr: IPAddress) -> NodeInfo | None:
        for node in self.plan.nodes:
            if addr == ipaddress.ip_address(node.ip) or addr in ipaddress.ip_network(node.pod_cidr):
                return node
        return None


class ReferenceCluster(TracedCluster):
    """One fake data plane per node, all given the same desired state."""

    def __init__(self, plan: LabPlan, caps: Capabilities) -> None:
        super().__init__(plan, caps)
        for node in plan.nodes:
            cfg = DataplaneConfig(backend="fake", node_name=node.name, resync_period=0)
            self.planes[node.name] = Dataplane(cfg, backend=FakeBackend(cfg, caps)).start()

    def fake(self, node: str) -> FakeBackend:
        backend = self.planes[node].backend
        assert isinstance(backend, FakeBackend)
        return backend

    def trace_on(self, node: NodeInfo, pkt: Packet) -> Hop:
        """The fake's trace: it decides egress and ingress of local candidates at once."""
        result = self.fake(node.name).trace(pkt)
        if result.verdict is Verdict.REJECT:
            return Hop(Outcome.REFUSED, steps=result.steps)
        if result.verdict in (Verdict.DENY, Verdict.DROP):
            reason = f"{result.verdict.value}: {result.reason}"
            return Hop(Outcome.TIMEOUT, steps=(*result.steps, reason))
        targets = tuple(
            Target(c.backend.address, c.backend.port, c.decision.verdict is Verdict.ALLOW)
            for c in result.candidates
            if c.backend
        ) or (Target(pkt.dst, pkt.dst_port, result.verdict is Verdict.ALLOW),)
        return Hop(None, targets, result.masquerade, result.steps)


def matches(observed: Observed, expect: Expect) -> bool:
    if observed.outcome is not expect.outcome:
        return False
    if expect.backends is not None and observed.backends != expect.backends:
        return False
    return expect.source is None or observed.source == expect.source
