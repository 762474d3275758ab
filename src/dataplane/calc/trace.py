"""Trace one packet through one node's IR: hooks in order, NAT, then policy by path.

See :mod:`dataplane.calc.evaluate` for rule and chain semantics; this module
only decides which chains a packet meets, in which order.
"""

from __future__ import annotations

from dataplane.calc.evaluate import (
    CandidateTrace,
    Decision,
    Packet,
    TraceResult,
    Verdict,
    evaluate_chain,
)
from dataplane.calc.ir import (
    Backend,
    Chain,
    DataplaneIR,
    Frontend,
    HostProgram,
    NoEndpoints,
    SourceClass,
    WorkloadProgram,
)
from dataplane.model import EndpointToHostAction, IPAddress, ProtoPort

ALLOWED = Decision(Verdict.ALLOW, "allowed")


class _Walk:
    """One candidate's walk: chains in order, the first decision that is not ALLOW ends it."""

    def __init__(self, ir: DataplaneIR, pkt: Packet, dst: IPAddress, dport: int | None) -> None:
        self.ir, self.pkt, self.dst, self.dport = ir, pkt, dst, dport
        self.steps: list[str] = []

    def chain(self, name: str, chain: Chain) -> Decision | None:
        d = evaluate_chain(chain, self.pkt, self.dst, self.dport, self.ir.ip_sets)
        self.steps.append(f"{name}: {d.verdict.value + ' by ' + d.reason if d else 'no verdict'}")
        return d


def _failsafe(
    entries: tuple[ProtoPort, ...], pkt: Packet, peer: IPAddress, port: int | None
) -> bool:
    return any(
        e.protocol == pkt.protocol and e.port == port and (e.net is None or peer in e.net)
        for e in entries
    )


def _local_workload(
    ir: DataplaneIR, *, addr: IPAddress | None = None, iface: str | None = None
) -> WorkloadProgram | None:
    for w in ir.workloads.values():
        if (iface is not None and w.interface == iface) or (
            addr is not None and addr in w.addresses
        ):
            return w
    return None


def _heps(ir: DataplaneIR, iface: str | None) -> list[HostProgram]:
    """Host endpoints covering ``iface``: the one named after it, else the ``*`` ones."""
    named = [h for h in ir.hosts.values() if iface is not None and h.interface == iface]
    return named or [h for h in ir.hosts.values() if h.interface == "*"]


def _source_classes(ir: DataplaneIR, src: IPAddress) -> frozenset[SourceClass]:
    classes = {SourceClass.ANY}
    if any(src in c for c in ir.settings.cluster_cidrs):
        classes.add(SourceClass.POD)
    if src in ir.settings.local_addresses:
        classes.add(SourceClass.HOST)
    return frozenset(classes)


def trace(ir: DataplaneIR, pkt: Packet) -> TraceResult:
    """Where ``pkt`` goes on this node and whether it is allowed."""
    src_wl = (
        _local_workload(ir, iface=pkt.ingress_interface)
        if pkt.ingress_interface
        else (_local_workload(ir, addr=pkt.src))
    )
    from_host_process = src_wl is None and pkt.ingress_interface is None
    from_outside = src_wl is None and not from_host_process
    pre: list[str] = []
    early: str | None = None  # the untracked/preDNAT chain whose explicit allow skips normal policy
    failsafe_in = (
        from_outside
        and pkt.dst in ir.settings.local_addresses
        and _failsafe(ir.settings.failsafe_inbound, pkt, pkt.src, pkt.dst_port)
    )
    if from_outside and not failsafe_in:
        walk = _Walk(ir, pkt, pkt.dst, pkt.dst_port)
        for hep in _heps(ir, pkt.ingress_interface):
            name = f"untracked ingress {hep.key.name}"
            d = walk.chain(name, hep.untracked_ingress)
            if d is None:
                name = f"preDNAT ingress {hep.key.name}"
                d = walk.chain(name, hep.pre_dnat_ingress)
            if d is not None and d.verdict is not Verdict.ALLOW:
                return _final(d, None, False, (), walk.steps)
            if d is not None:
                early = name  # an explicit allow there skips normal (and forward) ingress
            break
        pre = walk.steps
    elif failsafe_in:
        pre = ["failsafe inbound port: host endpoint policy skipped"]

    fe = ir.frontends.get((pkt.dst, pkt.protocol, pkt.dst_port or 0))
    if fe is None:
        cand = _policy(
            ir, pkt, src_wl, from_host_process, None, pkt.dst, pkt.dst_port, failsafe_in, early
        )
        return _final(cand.decision, None, False, (cand,), [*pre, *cand.steps])
    return _service(ir, pkt, fe, src_wl, from_host_process, failsafe_in, early, pre)


def _service(
    ir: DataplaneIR,
    pkt: Packet,
    fe: Frontend,
    src_wl: WorkloadProgram | None,
    from_host: bool,
    failsafe_in: bool,
    early: str | None,
    pre: list[str],
) -> TraceResult:
    steps = [*pre, f"service {fe.service} ({fe.kind.value} {fe.address}:{fe.port})"]
    if fe.source_ranges and not any(pkt.src in r for r in fe.source_ranges):
        return _final(
            Decision(Verdict.DROP, "source not in loadBalancerSourceRanges"), fe, False, (), steps
        )
    route = fe.route_for(_source_classes(ir, pkt.src))
    steps.append(f"route for {route.sources.value} sources: {len(route.backends)} backends")
    if not route.backends:
        verdict = Verdict.REJECT if route.if_empty is NoEndpoints.REJECT else Verdict.DROP
        return _final(
            Decision(verdict, f"no usable endpoints ({route.if_empty.value})"), fe, False, (), steps
        )
    cands = tuple(
        _policy(ir, pkt, src_wl, from_host, b, b.address, b.port, failsafe_in, early)
        for b in route.backends
    )
    verdicts = {c.decision.verdict for c in cands}
    if len(verdicts) == 1:
        decision = cands[0].decision
    else:
        decision = Decision(Verdict.MIXED, "backends disagree")
    hairpin = fe.hairpin_masquerade and any(b.address == pkt.src for b in route.backends)
    return _final(decision, fe, route.masquerade or hairpin, cands, steps)


def _final(
    d: Decision,
    fe: Frontend | None,
    masq: bool,
    cands: tuple[CandidateTrace, ...],
    steps: list[str],
) -> TraceResult:
    return TraceResult(d.verdict, d.reason, fe.service if fe else None, masq, cands, tuple(steps))


def _policy(
    ir: DataplaneIR,
    pkt: Packet,
    src_wl: WorkloadProgram | None,
    from_host: bool,
    backend: Backend | None,
    dst: IPAddress,
    dport: int | None,
    failsafe_in: bool,
    early: str | None,
) -> CandidateTrace:
    walk = _Walk(ir, pkt, dst, dport)
    dst_wl = _local_workload(ir, addr=dst)
    to_host = dst in ir.settings.local_addresses
    decision = _walk_path(ir, walk, pkt, src_wl, from_host, dst_wl, to_host, failsafe_in, early)
    return CandidateTrace(backend, decision, tuple(walk.steps))


def _walk_path(
    ir: DataplaneIR,
    walk: _Walk,
    pkt: Packet,
    src_wl: WorkloadProgram | None,
    from_host: bool,
    dst_wl: WorkloadProgram | None,
    to_host: bool,
    failsafe_in: bool,
    early: str | None,
) -> Decision:
    """The policy stages of one candidate path. ``early``: the untracked or preDNAT
    ingress chain that explicitly allowed the packet, which skips the normal and
    applyOnForward ingress policy of the host endpoint it arrived by (Calico)."""
    stages: list[tuple[str, Chain]] = []
    if src_wl is not None:
        stages.append((f"egress {src_wl.key.namespace}/{src_wl.key.name}", src_wl.egress))
    failsafe_out = _failsafe(ir.settings.failsafe_outbound, pkt, walk.dst, walk.dport)
    if from_host and dst_wl is None and not failsafe_out:
        for h in _heps(ir, pkt.egress_interface):
            stages += [
                (f"untracked egress {h.key.name}", h.untracked_egress),
                (f"host egress {h.key.name}", h.egress),
            ]
    for name, chain in stages:
        d = walk.chain(name, chain)
        if d is not None and d.verdict is not Verdict.ALLOW:
            return d
        if d is not None and name.startswith("untracked"):
            break  # an untracked allow skips the tracked policy of that direction
    if src_wl is not None and to_host and dst_wl is None:
        return _endpoint_to_host(ir, walk)
    tail: list[tuple[str, Chain]] = []
    from_outside = src_wl is None and not from_host
    if from_outside and to_host and dst_wl is None and not failsafe_in:
        tail += [
            (f"host ingress {h.key.name}", h.ingress) for h in _heps(ir, pkt.ingress_interface)
        ]
    if from_outside and (dst_wl is not None or not to_host):
        tail += [
            (f"forward ingress {h.key.name}", h.forward_ingress)
            for h in _heps(ir, pkt.ingress_interface)
        ]
    if early is not None:
        walk.steps += [f"{name}: skipped, {early} allowed it" for name, _ in tail]
        tail = []
    if src_wl is not None and dst_wl is None and not to_host:
        tail += [
            (f"forward egress {h.key.name}", h.forward_egress)
            for h in _heps(ir, pkt.egress_interface)
        ]
    if dst_wl is not None:
        tail.append((f"ingress {dst_wl.key.namespace}/{dst_wl.key.name}", dst_wl.ingress))
    for name, chain in tail:
        d = walk.chain(name, chain)
        if d is not None and d.verdict is not Verdict.ALLOW:
            return d
    return ALLOWED


def _endpoint_to_host(ir: DataplaneIR, walk: _Walk) -> Decision:
    action = ir.settings.endpoint_to_host_action
    walk.steps.append(f"workload to host: {action.value}")
    if action is EndpointToHostAction.DROP:
        return Decision(Verdict.DENY, "endpoint-to-host action Drop")
    if action is EndpointToHostAction.ACCEPT:
        return ALLOWED
    for hep in _heps(ir, None):
        d = walk.chain(f"host ingress {hep.key.name}", hep.ingress)
        if d is not None and d.verdict is not Verdict.ALLOW:
            return d
    return ALLOWED
