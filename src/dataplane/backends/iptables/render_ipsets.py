"""IR IP sets → ipset definitions and members, written as ``ipset save`` prints them.

Selector and CIDR sets are ``hash:net``; named-port sets are ``hash:net,port``
(``addr,proto:port``), matched as ``dst,dst`` (or ``src,src``) so one lookup
checks address, protocol and port. Members are spelled the way ``ipset save``
spells them (a /32 without its prefix) so read-back compares exactly, and a
``/0`` — which hash:net cannot hold — becomes two /1 halves, as Felix does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Iterator

from dataplane.backends.iptables.naming import Names
from dataplane.backends.iptables.store import Piece, SetSpec
from dataplane.calc.ir import IpSet
from dataplane.model import IPNetwork

_PORT_PROTOCOLS = {6: "tcp", 17: "udp", 132: "sctp", 136: "udplite"}


def _spell(net: IPNetwork) -> Iterator[str]:
    if net.prefixlen == 0:
        yield from ("0.0.0.0/1", "128.0.0.0/1")
    elif net.prefixlen == net.max_prefixlen:
        yield str(net.network_address)
    else:
        yield str(net)


def net_members(nets: Iterable[IPNetwork]) -> Iterator[str]:
    """IPv4 networks as hash:net members (IPv6 ones are skipped: this backend is IPv4)."""
    for net in nets:
        if net.version == 4:
            yield from _spell(ipaddress.IPv4Network(net))


def set_name(names: Names, set_id: str) -> str:
    return names.hashed("S", set_id)


def ipset_piece(names: Names, ip_set: IpSet) -> Piece:
    """The kernel set for one IR set: ``hash:net,port`` when it holds named-port members."""
    name = set_name(names, ip_set.id)
    if ip_set.has_ports:
        members = {
            f"{m},{_PORT_PROTOCOLS[int(proto)]}:{port}"
            for net, proto, port in ip_set.ports
            if net.version == 4 and int(proto) in _PORT_PROTOCOLS
            for m in _spell(net)
        }
        spec = SetSpec(name, "hash:net,port")
    else:
        members = set(net_members(ip_set.nets))
        spec = SetSpec(name, "hash:net")
    return Piece(sets=(spec,), members={name: frozenset(members)})
