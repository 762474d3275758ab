"""Node-wide inputs every part of calc needs, derived once per compile."""

from __future__ import annotations

import attrs

from dataplane.calc.ir import IRSettings, RemoteNode
from dataplane.model import DesiredState, IPAddress, IPNetwork, Node, NodeSettings


@attrs.frozen
class CalcContext:
    """What calc knows about the node it compiles for.

    ``preserve_source``: the backend can deliver external traffic to a pod on
    another node without SNAT (eBPF's tunnel/DSR), so calc does not ask for
    masquerade there. It is a backend capability, decided by the engine.
    """

    node: str
    local_addresses: tuple[IPAddress, ...]
    cluster_cidrs: tuple[IPNetwork, ...]
    preserve_source: bool
    masquerade_all: bool
    settings: NodeSettings

    @classmethod
    def from_state(cls, state: DesiredState, node: str, *, preserve_source: bool) -> CalcContext:
        settings = state.settings
        nodes = state.of_kind(Node)
        me = next((n for n in nodes if n.name == node), None)
        cidrs = settings.cluster_cidrs or tuple(c for n in nodes for c in n.pod_cidrs)
        return cls(
            node=node,
            local_addresses=me.addresses if me else (),
            cluster_cidrs=tuple(dict.fromkeys(cidrs)),
            preserve_source=preserve_source,
            masquerade_all=settings.masquerade_all,
            settings=settings,
        )

    def ir_settings(self) -> IRSettings:
        s = self.settings
        return IRSettings(
            node=self.node,
            local_addresses=self.local_addresses,
            cluster_cidrs=self.cluster_cidrs,
            failsafe_inbound=s.failsafe_inbound,
            failsafe_outbound=s.failsafe_outbound,
            external_service_mode=s.external_service_mode,
            endpoint_to_host_action=s.endpoint_to_host_action,
            host_interface_pattern=s.host_interface_pattern,
            workload_interface_prefix=s.workload_interface_prefix,
        )


def remote_nodes(state: DesiredState, node: str) -> dict[str, RemoteNode]:
    return {
        n.name: RemoteNode(n.name, n.addresses, n.pod_cidrs)
        for n in state.of_kind(Node)
        if n.name != node
    }
