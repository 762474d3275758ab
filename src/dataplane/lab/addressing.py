"""The lab's address plan: fixed, lab-private IPv4 ranges and the arithmetic on them.

=====================  ==================================================
10.99.0.0/24           fabric: nodes .11-.99, fabric clients .101-.200,
                       router .254
10.100.<node>.0/24     pod CIDR of node <node>; pods .2-.254 (.1 unused)
10.98.0.0/24           behind the router: router .1, clients .10-.209
169.254.1.1            every pod's next hop (answered by the host-side veth)
10.96.0.0/16           reserved for service VIPs: the lab never assigns it
=====================  ==================================================

IPv6 is left room for, not built: the plan is meant to grow ``fd99::/64``
(fabric), ``fd00:100:<node>::/80`` (pods) and ``fd98::/64`` (behind the
router) alongside, with the same host numbers.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

FABRIC_CIDR = IPv4Network("10.99.0.0/24")
POD_SUPERNET = IPv4Network("10.100.0.0/16")
REMOTE_CIDR = IPv4Network("10.98.0.0/24")
SERVICE_CIDR = IPv4Network("10.96.0.0/16")

POD_GATEWAY = "169.254.1.1"
"""Link-local next hop of every pod (Calico style): it never exists as an address."""

HOST_VETH_MAC = "ee:ee:ee:ee:ee:ee"
"""MAC of every host-side pod veth; pods have a permanent neighbour entry for it."""

ROUTER_FABRIC_IP = str(FABRIC_CIDR[254])
ROUTER_REMOTE_IP = str(REMOTE_CIDR[1])

_NODE_BASE = 11
_FABRIC_CLIENT_BASE = 101
_REMOTE_CLIENT_BASE = 10
_POD_BASE = 2

MAX_NODES = 99 - _NODE_BASE + 1
MAX_FABRIC_CLIENTS = 200 - _FABRIC_CLIENT_BASE + 1
MAX_REMOTE_CLIENTS = 209 - _REMOTE_CLIENT_BASE + 1
MAX_PODS_PER_NODE = 254 - _POD_BASE + 1

_RANGES = (FABRIC_CIDR, POD_SUPERNET, REMOTE_CIDR)
assert not any(r.overlaps(SERVICE_CIDR) for r in _RANGES), "lab ranges must avoid service VIPs"


def _check(index: int, limit: int, what: str) -> int:
    if not 0 <= index < limit:
        raise ValueError(f"{what} index {index} outside 0..{limit - 1}")
    return index


def node_ip(node: int) -> str:
    """Fabric address of node ``node`` (0-based)."""
    return str(FABRIC_CIDR[_NODE_BASE + _check(node, MAX_NODES, "node")])


def pod_cidr(node: int) -> str:
    """Pod CIDR of node ``node``: ``10.100.<node>.0/24``."""
    base = int(POD_SUPERNET.network_address) + (_check(node, MAX_NODES, "node") << 8)
    return str(IPv4Network((base, 24)))


def pod_ip(node: int, pod: int) -> str:
    """Address of pod ``pod`` (0-based) on node ``node``."""
    network = IPv4Network(pod_cidr(node))
    return str(network[_POD_BASE + _check(pod, MAX_PODS_PER_NODE, "pod")])


def fabric_client_ip(client: int) -> str:
    """Fabric address of the ``client``-th client on the fabric."""
    return str(FABRIC_CIDR[_FABRIC_CLIENT_BASE + _check(client, MAX_FABRIC_CLIENTS, "client")])


def remote_client_ip(client: int) -> str:
    """Address of the ``client``-th client behind the router."""
    return str(REMOTE_CIDR[_REMOTE_CLIENT_BASE + _check(client, MAX_REMOTE_CLIENTS, "client")])


def is_lab_address(address: str) -> bool:
    """Tell whether ``address`` belongs to a lab range (service VIPs included)."""
    ip = IPv4Address(address)
    return any(ip in r for r in (*_RANGES, SERVICE_CIDR))
