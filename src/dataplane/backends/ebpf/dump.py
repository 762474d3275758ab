"""What the maps hold, for humans (``dataplane dump``), read from the kernel.

Shaped after ``cilium bpf lb list`` / ``calico-node -bpf nat dump``: one line
of text per frontend route, backend, affinity and conntrack entry, grouped by
map, so a dump is greppable and JSON-serialisable at once.
"""

from __future__ import annotations

import socket
from typing import Any

from dataplane.backends.ebpf.loader import Loaded
from dataplane.backends.ebpf.maps import (
    affinity,
    backend,
    conntrack,
    counters,
    frontend,
    ifstate,
    node,
    source_class,
    source_range,
)
from dataplane.backends.ebpf.maps._map import U32, unpack_addr

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
        "interfaces": [
            {
                "ifindex": k.value,
                "name": v.name.decode(),
                "kind": ifstate.KIND_NAMES.get(v.kind, str(v.kind)),
            }
            for k, v in loaded.map(ifstate.SPEC).entries()
        ],
        "counters": {
            name: sum(c.packets for c in loaded.map(counters.SPEC).lookup_percpu(U32(i)))
            for i, name in enumerate(counters.NAMES)
        },
    }


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
