"""The behaviour suite through the HNS emulator: what ``windows-hns`` would do, per node.

Each node gets its own :class:`~dataplane.backends.windows_hns.emulator.HcnEmulator`
(its HNS) and a ``windows-hns`` :class:`~dataplane.Dataplane` programming it,
with the node's pods pre-created as HNS endpoints, as the CNI plugin would
have made them. Probes are followed from node to node exactly as the
reference follows them (:class:`~dataplane.scenarios.reference.TracedCluster`);
only the answer of one node differs: it comes from the documents the backend
installed, never from the IR, so whatever the backend left out or could not
express shows in the outcome.

On one node a packet meets HNS twice: at the sending endpoint (its egress
ACLs and the load balancer, if one matches) and at the receiving local
endpoint (ingress ACLs, seeing the source after SNAT). The emulator answers
one endpoint per question, so both are asked.
"""

from __future__ import annotations

import ipaddress

from dataplane.backends.windows_hns import HnsBackend
from dataplane.backends.windows_hns.emulator import HcnEmulator
from dataplane.backends.windows_hns.trace import Trace
from dataplane.calc.evaluate import Packet
from dataplane.engine import Dataplane, DataplaneConfig
from dataplane.lab.plan import LabPlan, NodeInfo
from dataplane.model import IPAddress
from dataplane.scenarios.cluster import NODE_PORTS
from dataplane.scenarios.reference import Hop, Target, TracedCluster
from dataplane.scenarios.types import Outcome


class HnsEmulatorCluster(TracedCluster):
    """One HCN emulator and one ``windows-hns`` data plane per node of ``plan``."""

    def __init__(self, plan: LabPlan) -> None:
        super().__init__(plan, HnsBackend.capabilities)
        self.emulators: dict[str, HcnEmulator] = {}
        self.endpoints: dict[str, dict[IPAddress, str]] = {}
        for node in plan.nodes:
            emulator = HcnEmulator(host_addresses=[node.ip])
            self.emulators[node.name] = emulator
            self.endpoints[node.name] = {
                ipaddress.ip_address(pod.ip): emulator.add_endpoint(pod.ip, pod.key)
                for pod in node.pods
            }
            cfg = DataplaneConfig(
                backend="windows-hns",
                node_name=node.name,
                resync_period=0,
                options={"hns_transport": "emulator", "hns_emulator": emulator},
            )
            self.planes[node.name] = Dataplane(cfg).start()

    def trace_on(self, node: NodeInfo, pkt: Packet) -> Hop:
        emulator = self.emulators[node.name]
        protocol = int(pkt.protocol)
        sender = self.endpoints[node.name].get(pkt.src)
        out = emulator.trace(pkt.src, pkt.dst, protocol, pkt.dst_port, sender, pkt.src_port)
        steps = [_describe(out)]
        if out.verdict == "deny":
            return Hop(Outcome.TIMEOUT, steps=tuple(steps))
        destinations: tuple[tuple[IPAddress, int | None], ...]
        if out.load_balancer is not None:
            destinations = out.candidates
        elif self._reachable(node, pkt):
            destinations = ((pkt.dst, pkt.dst_port),)
        else:
            steps.append(f"nothing answers at {pkt.dst}:{pkt.dst_port}")
            return Hop(Outcome.TIMEOUT, steps=tuple(steps))
        source = ipaddress.ip_address(node.ip) if out.snat else pkt.src
        targets = tuple(
            Target(address, port, self._admitted(node, pkt, source, address, port, steps))
            for address, port in destinations
        )
        return Hop(None, targets, out.snat, tuple(steps))

    def _reachable(self, node: NodeInfo, pkt: Packet) -> bool:
        """Whether anything answers ``pkt`` when no load balancer claimed it.

        A service address without a load balancer (no endpoints, SCTP) leads
        nowhere: HNS cannot reject. A node's own address answers only on the
        ports its echo servers listen on (:data:`NODE_PORTS`); HNS programs
        nothing else there, and Windows Firewall drops unsolicited inbound
        traffic to closed ports (so an unprogrammed NodePort times out).
        """
        owner = self.owner_of(pkt.dst)
        if owner is None:
            return False
        if owner.name != node.name:
            return True  # the owning node decides
        if pkt.dst == ipaddress.ip_address(node.ip):
            return any(
                p.port == pkt.dst_port and p.protocol == pkt.protocol.name for p in NODE_PORTS
            )
        return self.pod_at(pkt.dst) is not None

    def _admitted(
        self,
        node: NodeInfo,
        pkt: Packet,
        source: IPAddress,
        address: IPAddress,
        port: int | None,
        steps: list[str],
    ) -> bool:
        """The ingress ACL verdict of the local endpoint at ``address`` (others decide later)."""
        receiver = self.endpoints[node.name].get(address)
        if receiver is None:
            return True
        emulator = self.emulators[node.name]
        seen = emulator.trace(source, address, int(pkt.protocol), port, receiver, pkt.src_port)
        steps.append(f"{self._answerer(node, address)}: {_describe(seen)}")
        return seen.verdict == "allow"


def _describe(trace: Trace) -> str:
    """One trace line: the load balancer's decision, then the ACL's."""
    parts = []
    if trace.load_balancer is not None:
        targets = ", ".join(f"{a}:{p}" for a, p in trace.candidates) or "none"
        source = "SNAT to SourceVIP" if trace.snat else "source kept"
        parts.append(f"load balancer {trace.load_balancer} -> {targets} ({source})")
    if trace.acl is not None:
        rule = trace.acl.rule or "no ACL matched"
        parts.append(f"ACL {trace.acl.direction}: {trace.acl.verdict} by {rule}")
    return "; ".join(parts) or "no load balancer, no ACL"
