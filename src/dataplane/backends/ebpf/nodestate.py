"""Node-wide tables: source classes, run-time globals, local workload addresses.

Each is small and rewritten as a whole diff whenever the IR part it comes
from changes (settings; workloads), so there is no incremental bookkeeping
to get wrong.
"""

from __future__ import annotations

import ctypes
import ipaddress
from collections.abc import Collection, Iterable, Mapping
from typing import TypeVar

from dataplane.backends.ebpf._rtnl import RouteOut
from dataplane.backends.ebpf.maps import frontend as fe_map
from dataplane.backends.ebpf.maps import node, route, source_class
from dataplane.backends.ebpf.maps._map import U32, Map, pack_addr
from dataplane.calc.ir import DataplaneIR
from dataplane.model import ExternalServiceMode

IPv4Net = ipaddress.IPv4Network
V = TypeVar("V", bound=ctypes.Structure)


def source_classes(ir: DataplaneIR) -> dict[IPv4Net, int]:
    """Cluster CIDRs are POD, the node's own addresses HOST (as /32: longest prefix wins)."""
    classes: dict[IPv4Net, int] = {}
    for net in ir.settings.cluster_cidrs:
        if isinstance(net, IPv4Net):
            classes[net] = fe_map.CLASS_POD
    for addr in ir.settings.local_addresses:
        if isinstance(addr, ipaddress.IPv4Address):
            classes[IPv4Net(addr)] = fe_map.CLASS_HOST
    return classes


def sync_prefixes(
    table: Map[source_class.Lpm4Key, V],
    wanted: Mapping[IPv4Net, V],
    within: Collection[IPv4Net] | None = None,
) -> None:
    """Make an LPM trie of IPv4 prefixes hold exactly ``wanted`` (values
    compared as bytes); ``within``: only these prefixes are in question, the
    table's others stay as they are."""
    current = {source_class.network_of(k): bytes(v) for k, v in table.entries()}
    if within is not None:
        current = {net: v for net, v in current.items() if net in within}
    for net in current.keys() - wanted.keys():
        table.delete(source_class.make_key(net))
    for net, value in wanted.items():
        if current.get(net) != bytes(value):
            table.update(source_class.make_key(net), value)


def class_values(classes: Mapping[IPv4Net, int]) -> dict[IPv4Net, source_class.ClassValue]:
    return {net: source_class.ClassValue(cls) for net, cls in classes.items()}


def route_probes(ir: DataplaneIR) -> dict[IPv4Net, ipaddress.IPv4Address]:
    """Other nodes' IPv4 pod CIDRs, each with the address whose route stands for it."""
    probes = {}
    for remote in ir.remote_nodes.values():
        for net in remote.pod_cidrs:
            if isinstance(net, IPv4Net):
                probes[net] = net.network_address + (1 if net.num_addresses > 1 else 0)
    return probes


def node_probes(ir: DataplaneIR) -> dict[IPv4Net, ipaddress.IPv4Address]:
    """Other nodes' own IPv4 addresses, each a /32 that stands for itself."""
    return {
        IPv4Net(addr): addr
        for remote in ir.remote_nodes.values()
        for addr in remote.addresses
        if isinstance(addr, ipaddress.IPv4Address)
    }


def probes_within(
    probes: Mapping[IPv4Net, ipaddress.IPv4Address], destinations: Iterable[IPv4Net]
) -> dict[IPv4Net, ipaddress.IPv4Address]:
    """The probes whose address lies inside one of ``destinations``: the only
    ones a change to the routes to those destinations can move."""
    destinations = list(destinations)
    return {net: addr for net, addr in probes.items() if any(addr in d for d in destinations)}


def host_routes(
    probes: Mapping[IPv4Net, ipaddress.IPv4Address],
    routes: Mapping[ipaddress.IPv4Address, RouteOut],
    host_ifindexes: Iterable[int],
    *,
    nodes: bool = False,
) -> dict[IPv4Net, route.RouteValue]:
    """``dp_route`` entries for the probed networks the kernel routes out of a
    host interface the programs are attached to, with the route's gateway.

    ``nodes``: the networks are other nodes' own addresses (``route.F_NODE``),
    whose next hop on an on-link route is the node itself; an on-link pod
    CIDR has no single next hop (0: the kernel looks it up per packet).
    Anything else (a route through a tunnel or overlay device, none at all)
    gets no entry, so the stack keeps routing it."""
    hosts = set(host_ifindexes)
    wanted = {}
    for net, addr in probes.items():
        found = routes.get(addr)
        if found is None or found.ifindex not in hosts:
            continue
        gateway = found.gateway or (str(addr) if nodes else None)
        nexthop = pack_addr(gateway) if gateway else 0
        wanted[net] = route.RouteValue(found.ifindex, nexthop, route.F_NODE if nodes else 0)
    return wanted


def write_globals(
    table: Map[U32, node.Globals],
    ir: DataplaneIR,
    tunnel_ifindex: int,
    mtu: int,
    *,
    vxlan_port: int = 0,
    bpf_tunnel: bool = False,
) -> None:
    """``mtu``: the tunnel's underlay MTU (:func:`uplink_mtu`), 0 if unknown.

    ``bpf_tunnel``: the programs encapsulate and decapsulate VXLAN (to
    ``vxlan_port``) themselves instead of going through the VXLAN device.
    """
    flags = node.G_PASS_ON
    if ir.settings.external_service_mode is ExternalServiceMode.DSR:
        flags |= node.G_DSR
    if bpf_tunnel:
        flags |= node.G_BPF_TUN
    table.update(U32(0), node.Globals(tunnel_ifindex, flags, mtu, vxlan_port))


def set_pass_on(table: Map[U32, node.Globals], on: bool) -> None:
    """Turn ``G_PASS_ON`` on or off, the other globals unchanged.

    Off while interfaces move between TCX and clsact: during a move both
    attachments are there, the new one first, and only a verdict that ends
    the hook keeps the old one from acting on the same packet.
    """
    current = table.lookup(U32(0)) or node.Globals()
    flags = (current.flags | node.G_PASS_ON) if on else (current.flags & ~node.G_PASS_ON)
    table.update(
        U32(0), node.Globals(current.tunnel_ifindex, flags, current.mtu, current.vxlan_port)
    )


def uplink_mtu(host_mtus: Iterable[int]) -> int:
    """The MTU encapsulated packets must fit: the smallest host interface's (0: none known).

    The outer packets of the VXLAN tunnel leave through a host interface;
    which one depends on routing, so the smallest is the safe bound.
    """
    return min((m for m in host_mtus if m > 0), default=0)


def workload_addresses(ir: DataplaneIR, links: Mapping[str, int]) -> dict[int, int]:
    """Packed local workload address → ifindex of its host-side interface (if it exists yet)."""
    out = {}
    for wl in ir.workloads.values():
        ifindex = links.get(wl.interface)
        if ifindex is None:
            continue
        for addr in wl.addresses:
            if isinstance(addr, ipaddress.IPv4Address):
                out[pack_addr(addr)] = ifindex
    return out


def sync_workloads(
    table: Map[node.WorkloadKey, node.WorkloadValue], wanted: Mapping[int, int]
) -> None:
    current = {k.addr: v.ifindex for k, v in table.entries()}
    for addr in current.keys() - wanted.keys():
        table.delete(node.WorkloadKey(addr))
    table.update_many(
        (node.WorkloadKey(addr), node.WorkloadValue(ifindex, 0))
        for addr, ifindex in wanted.items()
        if current.get(addr) != ifindex
    )
