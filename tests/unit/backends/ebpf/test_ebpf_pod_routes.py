"""Which remote pod CIDRs the programs forward themselves (``dp_route``), no kernel needed."""

from __future__ import annotations

import ipaddress

from dataplane.backends.ebpf import nodestate
from dataplane.backends.ebpf._rtnl import RouteOut
from dataplane.backends.ebpf.maps import route
from dataplane.backends.ebpf.maps._map import unpack_addr
from dataplane.calc.ir import DataplaneIR, IRSettings, RemoteNode
from dataplane.model import EndpointToHostAction, ExternalServiceMode

N = ipaddress.ip_network
A = ipaddress.ip_address


def _ir(*remotes: RemoteNode) -> DataplaneIR:
    settings = IRSettings(
        "n1",
        (A("10.99.0.11"),),
        (N("10.100.0.0/16"),),
        (),
        (),
        ExternalServiceMode.TUNNEL,
        EndpointToHostAction.ACCEPT,
        "^eth",
        "dpw",
    )
    return DataplaneIR(settings, remote_nodes={r.name: r for r in remotes})


def test_each_remote_pod_cidr_is_probed_by_its_first_address() -> None:
    ir = _ir(
        RemoteNode("n2", (A("10.99.0.12"),), (N("10.100.1.0/24"), N("fd00::/64"))),
        RemoteNode("n3", (A("10.99.0.13"),), (N("10.100.2.7/32"),)),
    )
    assert nodestate.route_probes(ir) == {
        N("10.100.1.0/24"): A("10.100.1.1"),
        N("10.100.2.7/32"): A("10.100.2.7"),
    }


def test_only_routes_through_attached_host_interfaces_get_an_entry() -> None:
    probes = {N("10.100.1.0/24"): A("10.100.1.1"), N("10.100.2.0/24"): A("10.100.2.1")}
    found = {
        A("10.100.1.1"): RouteOut(2, "10.99.0.12"),
        A("10.100.2.1"): RouteOut(9, None),  # 9: an overlay device, say
    }
    routes = nodestate.host_routes(probes, found, host_ifindexes=[2, 3])
    assert {net: v.ifindex for net, v in routes.items()} == {N("10.100.1.0/24"): 2}
    assert nodestate.host_routes(probes, {}, host_ifindexes=[2]) == {}


def test_the_gateway_is_the_next_hop_and_on_link_routes_have_none() -> None:
    probes = {N("10.100.1.0/24"): A("10.100.1.1"), N("10.100.2.0/24"): A("10.100.2.1")}
    found = {A("10.100.1.1"): RouteOut(2, "10.99.0.12"), A("10.100.2.1"): RouteOut(2, None)}
    routes = nodestate.host_routes(probes, found, host_ifindexes=[2])
    hops = {net: v.nexthop and unpack_addr(v.nexthop) for net, v in routes.items()}
    assert hops == {N("10.100.1.0/24"): A("10.99.0.12"), N("10.100.2.0/24"): 0}
    assert {v.flags for v in routes.values()} == {0}


def test_other_nodes_addresses_are_their_own_next_hop_when_on_link() -> None:
    ir = _ir(
        RemoteNode("n2", (A("10.99.0.12"), A("fd00::12")), (N("10.100.1.0/24"),)),
        RemoteNode("n3", (A("10.98.0.13"),), ()),
    )
    probes = nodestate.node_probes(ir)
    assert probes == {N("10.99.0.12/32"): A("10.99.0.12"), N("10.98.0.13/32"): A("10.98.0.13")}
    found = {A("10.99.0.12"): RouteOut(2, None), A("10.98.0.13"): RouteOut(2, "10.99.0.1")}
    routes = nodestate.host_routes(probes, found, host_ifindexes=[2], nodes=True)
    assert {net: (unpack_addr(v.nexthop), v.flags) for net, v in routes.items()} == {
        N("10.99.0.12/32"): (A("10.99.0.12"), route.F_NODE),
        N("10.98.0.13/32"): (A("10.99.0.1"), route.F_NODE),
    }


def test_a_route_change_moves_only_the_probes_inside_its_destination() -> None:
    probes = {
        N("10.100.1.0/24"): A("10.100.1.1"),
        N("10.100.2.0/24"): A("10.100.2.1"),
        N("10.99.0.12/32"): A("10.99.0.12"),
    }
    assert nodestate.probes_within(probes, [N("10.100.0.7/32")]) == {}  # a local pod's route
    assert nodestate.probes_within(probes, [N("10.100.2.0/24")]) == {
        N("10.100.2.0/24"): A("10.100.2.1")
    }
    assert nodestate.probes_within(probes, [N("10.99.0.0/16"), N("10.100.1.0/25")]) == {
        N("10.100.1.0/24"): A("10.100.1.1"),
        N("10.99.0.12/32"): A("10.99.0.12"),
    }
    assert nodestate.probes_within(probes, [N("0.0.0.0/0")]) == probes
