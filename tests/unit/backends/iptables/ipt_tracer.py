"""A packet tracer over rendered chains (like kube-proxy's ``tracePacket``), for unit tests.

It interprets the subset of iptables the renderers emit. As in kube-proxy's
tracer, a ``statistic`` rule records its outcome and carries on, so a trace
lists *every* endpoint a packet could reach; ``--ctstate NEW`` is true,
``DNAT`` true only after a DNAT, and the walk counts every rule it looked at.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

import attrs

from dataplane.backends.iptables.store import ChainKey, Rules

PROTO = {"tcp": 6, "udp": 17, "sctp": 132, "icmp": 1}


@attrs.frozen
class Packet:
    src: str
    dst: str
    proto: str = "tcp"
    dport: int = 80
    local_src: bool = False  # addrtype --src-type LOCAL


@attrs.define
class Trace:
    dnat: set[str] = attrs.field(factory=set)
    verdict: str | None = None
    mark: int = 0
    rules_seen: int = 0


class Tracer:
    def __init__(self, chains: Mapping[ChainKey, Rules], members: Mapping[str, frozenset[str]]):
        self.chains = chains
        self.members = members

    def run(self, table: str, chain: str, pkt: Packet, trace: Trace | None = None) -> Trace:
        trace = trace or Trace()
        self._chain(table, chain, pkt, trace)
        return trace

    def _chain(self, table: str, chain: str, pkt: Packet, trace: Trace) -> str | None:
        """Returns "stop" when a terminal target ended the walk."""
        for rule in self.chains[(table, chain)]:
            trace.rules_seen += 1
            words = rule.split()
            jump = words.index("-j") if "-j" in words else words.index("-g")
            if not self._matches(words[:jump], pkt, trace):
                continue
            target, args = words[jump + 1], words[jump + 2 :]
            if target == "RETURN":
                return None
            if target == "MARK":
                value, mask = (int(v, 16) for v in args[1].split("/"))
                trace.mark = (trace.mark & ~mask) ^ value
            elif target == "DNAT":
                trace.dnat.add(args[1])
                if "statistic" not in words:
                    return "stop"
            elif target in ("ACCEPT", "DROP", "REJECT", "MASQUERADE"):
                trace.verdict = target
                return "stop"
            elif target in ("SET", "LOG", "CT"):
                continue
            elif (table, target) in self.chains:
                if self._chain(table, target, pkt, trace) == "stop":
                    if "statistic" in words:
                        continue
                    return "stop"
                if words[jump] == "-g":
                    return None
        return None

    def _matches(self, words: list[str], pkt: Packet, trace: Trace) -> bool:
        i, negate = 0, False
        while i < len(words):
            w = words[i]
            if w == "!":
                negate, i = True, i + 1
                continue
            ok, used = self._one(words, i, pkt, trace)
            if ok == negate:
                return False
            negate, i = False, i + used
        return True

    def _one(self, words: list[str], i: int, pkt: Packet, trace: Trace) -> tuple[bool, int]:
        w = words[i]
        if w in ("-s", "-d"):
            net = ipaddress.ip_network(words[i + 1])
            return ipaddress.ip_address(pkt.src if w == "-s" else pkt.dst) in net, 2
        if w == "-p":
            return PROTO.get(words[i + 1], -1) == PROTO[pkt.proto], 2
        if w == "-m":
            return True, 2
        if w == "--dport":
            lo, _, hi = words[i + 1].partition(":")
            return int(lo) <= pkt.dport <= int(hi or lo), 2
        if w == "--match-set":
            return self._in_set(words[i + 1], words[i + 2], pkt), 3
        if w == "--src-type":
            return pkt.local_src, 2
        if w == "--ctstate":
            states = words[i + 1].split(",")
            return "NEW" in states or ("DNAT" in states and bool(trace.dnat)), 2
        if w == "--mark":
            value, mask = (int(v, 16) for v in words[i + 1].split("/"))
            return trace.mark & mask == value, 2
        if w in ("--mode", "--probability"):
            return True, 2
        raise ValueError(f"tracer does not know {w!r} in {words}")

    def _in_set(self, name: str, flags: str, pkt: Packet) -> bool:
        members = self.members.get(name, frozenset())
        addr = pkt.src if flags.startswith("src") else pkt.dst
        if flags.count(",") == 1:
            return f"{addr},{pkt.proto}:{pkt.dport}" in members
        if flags.count(",") == 2:
            return f"{pkt.src},{pkt.proto}:{pkt.dport},{pkt.dst}" in members
        ip = ipaddress.ip_address(addr)
        return any(ip in ipaddress.ip_network(m) for m in members)
