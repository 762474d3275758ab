"""Turn a :class:`LabSpec` and a prefix into a :class:`LabPlan`: every namespace,
interface name and address the lab will have.

The plan is pure data, so it is what unit tests check, what ``describe()``
renders, and what a backend reads to find the interfaces to attach to.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import attrs

from dataplane.lab import addressing, naming
from dataplane.lab.spec import ROUTER_HOST, LabSpec, PortSpec
from dataplane.model.naming import workload_interface_name


@attrs.frozen
class PodInfo:
    """A pod as built: ``interface`` is the host-side veth in the node namespace."""

    namespace: str
    name: str
    node: str
    netns: str
    ip: str
    interface: str
    labels: Mapping[str, str] = attrs.field(hash=False)
    ports: tuple[PortSpec, ...]

    @property
    def key(self) -> str:
        """Host key of the pod: ``namespace/name``."""
        return f"{self.namespace}/{self.name}"


@attrs.frozen
class NodeInfo:
    """A node as built: what a backend needs to attach to it."""

    name: str
    index: int
    netns: str
    ip: str
    uplink: str
    bridge_port: str
    pod_cidr: str
    pods: tuple[PodInfo, ...]
    ports: tuple[PortSpec, ...]

    @property
    def key(self) -> str:
        return self.name

    @property
    def pod_interfaces(self) -> tuple[str, ...]:
        """Host-side veth names of this node's pods."""
        return tuple(p.interface for p in self.pods)


@attrs.frozen
class ClientInfo:
    """An external client; ``gateway`` is the router's address when behind it."""

    name: str
    index: int
    netns: str
    ip: str
    prefixlen: int
    bridge_port: str
    behind_router: bool
    gateway: str | None
    ports: tuple[PortSpec, ...]

    @property
    def key(self) -> str:
        return self.name


@attrs.frozen
class RouterInfo:
    """The router between the fabric and the clients outside the node subnet."""

    netns: str
    ip: str
    remote_ip: str
    bridge_port: str

    @property
    def key(self) -> str:
        return ROUTER_HOST

    @property
    def ports(self) -> tuple[PortSpec, ...]:
        return ()


Host = NodeInfo | PodInfo | ClientInfo | RouterInfo


@attrs.frozen
class LabPlan:
    """Everything the lab builds, by name and address."""

    prefix: str
    fabric_netns: str
    nodes: tuple[NodeInfo, ...]
    clients: tuple[ClientInfo, ...]
    router: RouterInfo | None

    def hosts(self) -> Iterator[Host]:
        """Every namespace that is a host (everything but the fabric), nodes first."""
        for node in self.nodes:
            yield node
            yield from node.pods
        if self.router is not None:
            yield self.router
        yield from self.clients

    def namespaces(self) -> list[str]:
        """All namespace names, fabric first: the order they are created in."""
        return [self.fabric_netns, *(h.netns for h in self.hosts())]

    def host(self, key: str) -> Host:
        """Find a host by key: node or client name, ``router``, ``namespace/pod``, or a pod
        name alone when no other pod has it."""
        matches = [h for h in self.hosts() if h.key == key]
        if not matches:
            matches = [h for h in self.hosts() if isinstance(h, PodInfo) and h.name == key]
        if len(matches) != 1:
            known = ", ".join(h.key for h in self.hosts())
            raise KeyError(f"no single lab host {key!r} (hosts: {known})")
        return matches[0]


def make_plan(spec: LabSpec, prefix: str) -> LabPlan:
    """Assign namespaces, interfaces and addresses to every object of ``spec``."""
    nodes = tuple(
        NodeInfo(
            name=node.name,
            index=i,
            netns=naming.netns_name(prefix, "node", node.name),
            ip=addressing.node_ip(i),
            uplink=naming.HOST_UPLINK,
            bridge_port=naming.bridge_port_name("fn", i),
            pod_cidr=addressing.pod_cidr(i),
            pods=tuple(
                PodInfo(
                    namespace=pod.namespace,
                    name=pod.name,
                    node=node.name,
                    netns=naming.netns_name(prefix, "pod", f"{pod.namespace}_{pod.name}"),
                    ip=addressing.pod_ip(i, j),
                    interface=workload_interface_name(pod.namespace, pod.name),
                    labels=pod.labels,
                    ports=pod.ports,
                )
                for j, pod in enumerate(node.pods)
            ),
            ports=node.ports,
        )
        for i, node in enumerate(spec.nodes)
    )
    fabric = [c for c in spec.clients if not c.behind_router]
    remote = [c for c in spec.clients if c.behind_router]
    fabric_prefixlen = addressing.FABRIC_CIDR.prefixlen
    remote_prefixlen = addressing.REMOTE_CIDR.prefixlen
    clients = tuple(
        ClientInfo(
            name=c.name,
            index=k,
            netns=naming.netns_name(prefix, "client", c.name),
            ip=addressing.fabric_client_ip(k),
            prefixlen=fabric_prefixlen,
            bridge_port=naming.bridge_port_name("fc", k),
            behind_router=False,
            gateway=None,
            ports=c.ports,
        )
        for k, c in enumerate(fabric)
    ) + tuple(
        ClientInfo(
            name=c.name,
            index=k,
            netns=naming.netns_name(prefix, "client", c.name),
            ip=addressing.remote_client_ip(k),
            prefixlen=remote_prefixlen,
            bridge_port=naming.bridge_port_name("rc", k),
            behind_router=True,
            gateway=addressing.ROUTER_REMOTE_IP,
            ports=c.ports,
        )
        for k, c in enumerate(remote)
    )
    router = (
        RouterInfo(
            netns=naming.netns_name(prefix, "router"),
            ip=addressing.ROUTER_FABRIC_IP,
            remote_ip=addressing.ROUTER_REMOTE_IP,
            bridge_port=naming.bridge_port_name("fr", 0),
        )
        if spec.has_router
        else None
    )
    return LabPlan(
        prefix=prefix,
        fabric_netns=naming.netns_name(prefix, "fabric"),
        nodes=nodes,
        clients=clients,
        router=router,
    )
