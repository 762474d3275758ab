"""Program a :class:`LabPlan` into namespaces with pyroute2: links, addresses, routes.

Every netlink socket here is opened *inside* a lab namespace (by
:func:`netns.create_all`, or ``IPRoute(netns=..., flags=0)``, which fails
rather than create a namespace by accident), and every veth is created in one
lab namespace with its peer born directly in another
(``peer={"net_ns_fd": ...}``), so no interface ever exists in the machine's
root namespace, not even for a moment.  One socket per namespace serves the
whole build.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from typing import Any

from dataplane.lab import addressing, netns
from dataplane.lab.naming import FABRIC_BRIDGE, HOST_UPLINK
from dataplane.lab.plan import ClientInfo, LabPlan, NodeInfo, PodInfo

_SCOPE_LINK = 253
_NUD_PERMANENT = 0x80
_LOOPBACK_INDEX = 1  # the kernel gives every namespace's lo ifindex 1

IPRoute = Any  # pyroute2.IPRoute: untyped


@contextmanager
def _sockets(fds: Mapping[str, int]) -> Iterator[dict[str, IPRoute]]:
    """Wrap netlink socket fds (one per namespace) in pyroute2 ``IPRoute`` objects,
    which own and close them."""
    from pyroute2 import IPRoute as _IPRoute

    pending = dict(fds)
    with ExitStack() as stack:
        sockets = {}
        try:
            for name in list(pending):
                sockets[name] = stack.enter_context(_IPRoute(fileno=pending.pop(name)))
        finally:
            for fd in pending.values():
                os.close(fd)
        yield sockets


def _index(ipr: IPRoute, ifname: str) -> int:
    return int(ipr.link_lookup(ifname=ifname)[0])


def _bridge(ipr: IPRoute, address: str | None = None, prefixlen: int = 0) -> int:
    ipr.link("add", ifname=FABRIC_BRIDGE, kind="bridge", state="up")
    index = _index(ipr, FABRIC_BRIDGE)
    if address is not None:
        ipr.addr("add", index=index, address=address, prefixlen=prefixlen)
    return index


def _uplink(
    ipr: IPRoute, bridge: int, port: str, peer: IPRoute, peer_netns: str, address: str, plen: int
) -> int:
    """Plug a host into a bridge: the port stays here, ``eth0`` is born in the host."""
    ipr.link(
        "add",
        ifname=port,
        kind="veth",
        master=bridge,
        state="up",
        peer={"ifname": HOST_UPLINK, "net_ns_fd": peer_netns},
    )
    index = _index(peer, HOST_UPLINK)
    peer.addr("add", index=index, address=address, prefixlen=plen)
    peer.link("set", index=index, state="up")
    return index


def _routes(ipr: IPRoute, routes: Mapping[str, str]) -> None:
    for dst, gateway in routes.items():
        ipr.route("add", dst=dst, gateway=gateway)


def _pod(node: IPRoute, pod_ipr: IPRoute, pod: PodInfo) -> None:
    """Calico-style pod wiring: /32 on eth0, default via 169.254.1.1, which is
    pinned to the host-side veth's MAC; the node routes the /32 to the veth."""
    node.link(
        "add",
        ifname=pod.interface,
        kind="veth",
        address=addressing.HOST_VETH_MAC,
        state="up",
        peer={"ifname": HOST_UPLINK, "net_ns_fd": pod.netns},
    )
    host_side = _index(node, pod.interface)
    node.route("add", dst=f"{pod.ip}/32", oif=host_side, scope=_SCOPE_LINK)
    eth0 = _index(pod_ipr, HOST_UPLINK)
    pod_ipr.addr("add", index=eth0, address=pod.ip, prefixlen=32)
    pod_ipr.link("set", index=eth0, state="up")
    pod_ipr.route("add", dst=f"{addressing.POD_GATEWAY}/32", oif=eth0, scope=_SCOPE_LINK)
    pod_ipr.route("add", dst="0.0.0.0/0", gateway=addressing.POD_GATEWAY, oif=eth0)
    pod_ipr.neigh(
        "add",
        dst=addressing.POD_GATEWAY,
        lladdr=addressing.HOST_VETH_MAC,
        ifindex=eth0,
        state=_NUD_PERMANENT,
    )


def _fabric_routes(plan: LabPlan, exclude: NodeInfo | None = None) -> dict[str, str]:
    """What a CNI (or BGP to the top-of-rack) would give a host on the fabric:
    every other node's pod CIDR via that node, and the remote subnet via the router."""
    routes = {n.pod_cidr: n.ip for n in plan.nodes if n is not exclude}
    if plan.router is not None:
        routes[str(addressing.REMOTE_CIDR)] = plan.router.ip
    return routes


def create_namespaces(plan: LabPlan) -> dict[str, int]:
    """Create every namespace of ``plan``; return a netlink socket fd for each, for
    :func:`wire`.  Helpers can be started as soon as this returns."""
    return netns.create_all(plan.namespaces())


def release(sockets: Mapping[str, int]) -> None:
    """Close the sockets of :func:`create_namespaces` when :func:`wire` will not run."""
    for fd in sockets.values():
        os.close(fd)


def wire(plan: LabPlan, sockets: Mapping[str, int]) -> None:
    """Build links, addresses, routes and sysctls into the namespaces of ``plan``,
    through ``sockets`` (from :func:`create_namespaces`, consumed and closed).

    On failure, whatever was created stays for the caller's teardown, which
    removes the plan's namespaces whether or not they exist.
    """
    with _sockets(sockets) as ipr:
        for sock in ipr.values():
            sock.link("set", index=_LOOPBACK_INDEX, state="up")
        fabric = ipr[plan.fabric_netns]
        fabric_bridge = _bridge(fabric)
        fabric_plen = addressing.FABRIC_CIDR.prefixlen
        for node in plan.nodes:
            node_ipr = ipr[node.netns]
            _uplink(
                fabric, fabric_bridge, node.bridge_port, node_ipr, node.netns, node.ip, fabric_plen
            )
            for pod in node.pods:
                _pod(node_ipr, ipr[pod.netns], pod)
            _routes(node_ipr, _fabric_routes(plan, exclude=node))
        remote_bridge = 0
        if plan.router is not None:
            router = plan.router
            router_ipr = ipr[router.netns]
            _uplink(
                fabric,
                fabric_bridge,
                router.bridge_port,
                router_ipr,
                router.netns,
                router.ip,
                fabric_plen,
            )
            remote_bridge = _bridge(router_ipr, router.remote_ip, addressing.REMOTE_CIDR.prefixlen)
            _routes(router_ipr, {n.pod_cidr: n.ip for n in plan.nodes})
        for client in plan.clients:
            _client(
                plan,
                client,
                ipr,
                fabric,
                fabric_bridge,
                remote_bridge if client.behind_router else 0,
            )
    for node in plan.nodes:
        netns.write_sysctls(node.netns, _forwarding(node))
    netns.write_sysctls(plan.fabric_netns, PLAIN_SWITCH, missing_ok=True)
    if plan.router is not None:
        netns.write_sysctls(plan.router.netns, {"net.ipv4.ip_forward": "1"})
        netns.write_sysctls(plan.router.netns, PLAIN_SWITCH, missing_ok=True)


def _client(
    plan: LabPlan,
    client: ClientInfo,
    ipr: Mapping[str, IPRoute],
    fabric: IPRoute,
    fabric_bridge: int,
    remote_bridge: int,
) -> None:
    client_ipr = ipr[client.netns]
    if client.behind_router:
        assert plan.router is not None
        router_ipr = ipr[plan.router.netns]
        _uplink(
            router_ipr,
            remote_bridge,
            client.bridge_port,
            client_ipr,
            client.netns,
            client.ip,
            client.prefixlen,
        )
        _routes(client_ipr, {"0.0.0.0/0": plan.router.remote_ip})
    else:
        _uplink(
            fabric,
            fabric_bridge,
            client.bridge_port,
            client_ipr,
            client.netns,
            client.ip,
            client.prefixlen,
        )
        _routes(client_ipr, _fabric_routes(plan))


PLAIN_SWITCH = {
    f"net.bridge.bridge-nf-call-{table}": "0" for table in ("iptables", "ip6tables", "arptables")
}
"""The lab's bridges stand for switches.  Where ``br_netfilter`` is loaded, a new
namespace passes bridged packets through its netfilter hooks: CPU that no real
switch takes from the nodes, spent once more for every extra crossing of the
fabric (an ingress node's tunnel, say), so benchmarks would charge it to the
data plane under test.  The keys are absent where the module is not loaded."""


def _forwarding(node: NodeInfo) -> dict[str, str]:
    """A node routes for its pods like a CNI node does (Calico's sysctls).

    ICMP errors are not rate limited: the behaviour suite sends many probes to
    services without endpoints in a row and must see every REJECT. Pod veths
    send no redirects (hairpin traffic would otherwise spend the ICMP budget).
    """
    values = {"net.ipv4.ip_forward": "1", "net.ipv4.icmp_ratelimit": "0"}
    for pod in node.pods:
        values[f"net.ipv4.conf.{pod.interface}.proxy_arp"] = "1"
        values[f"net.ipv4.conf.{pod.interface}.send_redirects"] = "0"
    return values


def add_route(name: str, dst: str, gateway: str) -> None:
    """Add a route inside lab namespace ``name`` (e.g. service VIPs towards a node)."""
    from pyroute2 import IPRoute as _IPRoute

    with _IPRoute(netns=name, flags=0) as ipr:
        _routes(ipr, {dst: gateway})
