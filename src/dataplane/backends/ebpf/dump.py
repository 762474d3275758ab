"""What the maps hold, for humans (``dataplane dump``), read from the kernel.

Shaped after ``cilium bpf lb list`` / ``calico-node -bpf nat dump``: one line
of text per frontend route, backend, affinity and conntrack entry, grouped by
map, so a dump is greppable and JSON-serialisable at once.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from typing import Any

from dataplane.backends.ebpf.loader import Loaded
from dataplane.backends.ebpf.maps import (
    affinity,
    backend,
    conntrack,
    counters,
    failsafe,
    frontend,
    ifpolicy,
    ifstate,
    ipset,
    node,
    policy_conntrack,
    route,
    source_class,
    source_range,
)
from dataplane.backends.ebpf.maps import rules as rmap
from dataplane.backends.ebpf.maps._map import U32, unpack_addr
from dataplane.backends.ebpf.policy import PolicyMaps

_PROTOS = {socket.IPPROTO_TCP: "tcp", socket.IPPROTO_UDP: "udp", socket.IPPROTO_SCTP: "sctp"}
_TCP = (
    (conntrack.TCP_SYN, "S"),
    (conntrack.TCP_ACK, "A"),
    (conntrack.TCP_FIN, "F"),
    (conntrack.TCP_RST, "R"),
)


def _ep(addr: int, port: int) -> str:
    return f"{unpack_addr(addr)}:{port}"


def _proto(proto: int) -> str:
    return _PROTOS.get(proto, str(proto))


def dump(loaded: Loaded, now_ns: int) -> dict[str, Any]:
    lists: dict[int, dict[int, backend.BackendValue]] = {}
    for bkey, bval in loaded.map(backend.SPEC).entries():
        lists.setdefault(bkey.route_id, {})[bkey.index] = bval

    frontends = []
    for key, val in sorted(
        loaded.map(frontend.SPEC).entries(),
        key=lambda kv: (kv[0].addr, kv[0].port, kv[0].proto, kv[0].src_class),
    ):
        found = lists.get(val.route_id, {})
        backends = []
        for i in range(val.count):
            b = found.get(i)
            if b is None:
                backends.append("<missing>")
            elif b.flags & backend.F_REMOTE:
                backends.append(f"{_ep(b.addr, b.port)} via {unpack_addr(b.node_addr)}")
            else:
                backends.append(_ep(b.addr, b.port))
        frontends.append(
            {
                "frontend": f"{_ep(key.addr, key.port)}/{_proto(key.proto)}",
                "sources": frontend.CLASS_NAMES.get(key.src_class, str(key.src_class)),
                "fe_id": val.fe_id,
                "route_id": val.route_id,
                "flags": frontend.flag_names(val.flags),
                "affinity_timeout": val.affinity_timeout,
                "backends": backends,
            }
        )

    ranges: dict[int, list[str]] = {}
    for rkey in loaded.map(source_range.SPEC).all_keys():
        ranges.setdefault(rkey.fe_id, []).append(str(source_range.network_of(rkey)))

    return {
        "frontends": frontends,
        "source_ranges": {str(k): sorted(v) for k, v in sorted(ranges.items())},
        "affinity": [_affinity(k, v, now_ns) for k, v in loaded.map(affinity.SPEC).entries()],
        "conntrack": sorted(_ct(k, v, now_ns) for k, v in loaded.map(conntrack.SPEC).entries()),
        "source_classes": {
            str(source_class.network_of(k)): frontend.CLASS_NAMES.get(v.class_id, "?")
            for k, v in loaded.map(source_class.SPEC).entries()
        },
        "workloads": {
            str(unpack_addr(k.addr)): v.ifindex for k, v in loaded.map(node.WORKLOADS).entries()
        },
        **_routes(loaded.map(route.SPEC).entries()),
        "interfaces": [
            {
                "ifindex": k.value,
                "name": v.name.decode(),
                "kind": ifstate.KIND_NAMES.get(v.kind, str(v.kind)),
                "attached": "tcx" if v.flags & ifstate.F_TCX else "tc",
            }
            for k, v in loaded.map(ifstate.SPEC).entries()
        ],
        "counters": {
            name: sum(c.packets for c in loaded.map(counters.SPEC).lookup_percpu(U32(i)))
            for i, name in enumerate(counters.NAMES)
        },
    }


def _routes(entries: Iterable[tuple[source_class.Lpm4Key, route.RouteValue]]) -> dict[str, Any]:
    """``dp_route``: pod CIDRs and, apart, other nodes' own addresses (the tunnel's next hops)."""
    out: dict[str, dict[str, Any]] = {"pod_routes": {}, "node_routes": {}}
    for k, v in entries:
        kind = "node_routes" if v.flags & route.F_NODE else "pod_routes"
        via = str(unpack_addr(v.nexthop)) if v.nexthop else None
        out[kind][str(source_class.network_of(k))] = {"ifindex": v.ifindex, "via": via}
    return out


def _affinity(k: affinity.AffinityKey, v: affinity.AffinityValue, now_ns: int) -> str:
    idle = (now_ns - v.last_used_ns) / 1e9
    return (
        f"{unpack_addr(k.client)} -> {_ep(k.addr, k.port)}/{_proto(k.proto)} => "
        f"{_ep(v.addr, v.port)} (idle {idle:.0f}s)"
    )


def _ct(k: conntrack.CtKey, v: conntrack.CtValue, now_ns: int) -> str:
    kind = {conntrack.TYPE_FWD: "fwd", conntrack.TYPE_REV: "rev"}.get(v.type, str(v.type))
    text = f"{kind} {_ep(k.src, k.sport)} -> {_ep(k.dst, k.dport)}/{_proto(k.proto)}"
    if v.nat_addr:
        side = "dst" if v.type == conntrack.TYPE_FWD else "src"
        text += f" {side}={_ep(v.nat_addr, v.nat_port)}"
    if v.tun_addr:
        text += f" node={unpack_addr(v.tun_addr)}"
    flags = [name for bit, name in conntrack.FLAG_NAMES.items() if v.flags & bit]
    if flags:
        text += " [" + ",".join(flags) + "]"
    if k.proto == socket.IPPROTO_TCP:
        text += " tcp=" + ("".join(c for bit, c in _TCP if v.tcp_seen & bit) or "-")
    return text + f" idle={(now_ns - v.last_seen_ns) / 1e9:.0f}s"


def dump_policy(loaded: Loaded, pol: PolicyMaps) -> dict[str, Any]:
    """Per-interface programs (one line per instruction, with its hits) and IP-set members."""
    names = {v: k for k, v in pol.set_ids.items()}
    interfaces = {}
    for key, val in sorted(loaded.map(ifpolicy.SPEC).entries(), key=lambda kv: kv[0].value):
        cur = pol.installed.get(key.value)
        chains = {}
        for chain in range(ifpolicy.CH_MAX):
            base, length = val.base[chain], val.len[chain]
            if not length:
                continue
            origins = [i.origin for i in cur.wanted.programs[chain]] if cur else ["?"] * length
            lines = []
            for i, hits in enumerate(pol.hits(base, length)):
                rule = loaded.map(rmap.SPEC).lookup(U32(base + i))
                text = _rule(rule, names) if rule is not None else "<missing>"
                lines.append(f"{i:4d} {text}  # {origins[i]} hits={hits}")
            chains[ifpolicy.CHAIN_NAMES[chain]] = lines
        interfaces[cur.wanted.name if cur else str(key.value)] = {
            "ifindex": key.value,
            "kind": ifstate.KIND_NAMES.get(val.kind, str(val.kind)),
            "generation": val.gen,
            "owner": cur.wanted.owner if cur else "?",
            "chains": chains,
        }
    members: dict[str, list[str]] = {}
    for k in loaded.map(ipset.SPEC).all_keys():
        net, proto, port = ipset.member_of(k)
        text = f"{net} {_proto(proto)}:{port}" if proto else str(net)
        members.setdefault(names.get(k.set_id, f"#{k.set_id}"), []).append(text)
    return {
        "policy": interfaces,
        "ip_sets": {name: sorted(m) for name, m in sorted(members.items())},
        "failsafes": sorted(
            f"{'in' if d == failsafe.IN else 'out'} {_proto(p)}:{port} {net}"
            for d, p, port, net in map(failsafe.entry_of, loaded.map(failsafe.SPEC).all_keys())
        ),
        "policy_conntrack": len(loaded.map(policy_conntrack.SPEC).all_keys()),
    }


def _rule(rule: rmap.Rule, names: dict[int, str]) -> str:
    parts = [rmap.ACTION_NAMES.get(rule.action, str(rule.action))]
    if rule.action in (rmap.ACT_ALLOW, rmap.ACT_PASS):
        parts.append(f"->{rule.jump}")
    if rule.flags & rmap.R_NEVER:
        parts.append("never")
    if rule.proto:
        parts.append(f"proto={_proto(rule.proto)}")
    if rule.not_proto:
        parts.append(f"!proto={_proto(rule.not_proto)}")
    if rule.flags & rmap.R_ICMP_TYPE:
        parts.append(
            f"icmp={rule.icmp_type}"
            + (f"/{rule.icmp_code}" if rule.flags & rmap.R_ICMP_CODE else "")
        )
    if rule.flags & rmap.R_NOT_ICMP_TYPE:
        parts.append(
            f"!icmp={rule.not_icmp_type}"
            + (f"/{rule.not_icmp_code}" if rule.flags & rmap.R_NOT_ICMP_CODE else "")
        )
    roles = {
        1: "src",
        2: "!src",
        3: "dst",
        4: "!dst",
        5: "sport",
        6: "!sport",
        7: "dport",
        8: "!dport",
    }
    for i in range(rmap.RULE_PORTS):
        if rule.port_role[i]:
            rng = f"{rule.port_first[i]}" + (
                f"-{rule.port_last[i]}" if rule.port_last[i] != rule.port_first[i] else ""
            )
            parts.append(f"{roles[4 + rule.port_role[i]]}={rng}")
    for i in range(rmap.RULE_SETS):
        if rule.set_role[i]:
            set_id = rule.set_id[i]
            parts.append(f"{roles[rule.set_role[i]]}@{names.get(set_id, f'#{set_id}')}")
    return " ".join(parts)
