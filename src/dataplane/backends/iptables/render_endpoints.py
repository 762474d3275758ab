"""Workload and host endpoints → their hook chains and the interface dispatch chains.

Workload endpoints (pods) are policed in filter FORWARD: egress on packets
*from* the pod's host-side interface, ingress on packets *to* it; pod → host
traffic goes through the pod's egress program too and then the configured
endpoint-to-host action (Felix's DefaultEndpointToHostAction). Host → local
pod traffic is not policed (Calico's rule, so kubelet probes always work).

Host endpoints get one chain per hook: filter INPUT/OUTPUT (normal policy,
after the failsafe ports, which always win), filter FORWARD (applyOnForward,
only when some policy applies), mangle PREROUTING (preDNAT) and raw
PREROUTING/OUTPUT (doNotTrack: allowed packets get ``CT --notrack``). An
interface ``*`` covers every interface that is neither loopback nor a
workload's; named host endpoints are matched before it.
"""

from __future__ import annotations

from collections.abc import Iterable

from dataplane.backends.iptables.layout import (
    EARLY,
    FROMWL,
    HFE,
    HFI,
    HIN,
    HOUT,
    NOTRACK,
    OUT,
    PRE,
    TOWL,
    WL2H,
)
from dataplane.backends.iptables.naming import Names
from dataplane.backends.iptables.render_policy import (
    PolicyNames,
    ProgramRenderer,
    failsafe_rules,
)
from dataplane.backends.iptables.store import ChainKey, Piece, Rules
from dataplane.calc.ir import (
    ALLOW_ALL,
    NO_VERDICT,
    Chain,
    HostProgram,
    IRSettings,
    WorkloadProgram,
)
from dataplane.model import EndpointToHostAction, ObjectKey

ESTABLISHED = "-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
INVALID = "-m conntrack --ctstate INVALID -j DROP"


def _key_text(key: ObjectKey) -> str:
    return f"{key.kind}|{key.namespace}|{key.name}"


def workload_chain(names: Names, key: ObjectKey, direction: str) -> str:
    return names.hashed("W" + direction, _key_text(key))


def host_chain(names: Names, key: ObjectKey, hook: str) -> str:
    return names.hashed("H" + hook, _key_text(key))


def workload_piece(wp: WorkloadProgram, pn: PolicyNames) -> Piece:
    """A pod's ingress and egress chains (filter; RETURN with ``accept`` when allowed)."""
    r = ProgramRenderer(pn, "filter")
    prologue = (ESTABLISHED, INVALID)
    r.endpoint(workload_chain(pn.names, wp.key, "I"), wp.ingress, prologue, "RETURN")
    r.endpoint(workload_chain(pn.names, wp.key, "E"), wp.egress, prologue, "RETURN")
    return Piece(chains=r.chains)


def host_piece(hp: HostProgram, pn: PolicyNames, settings: IRSettings) -> Piece:
    """A host endpoint's chains in every hook where it has a program."""
    names, marks = pn.names, pn.marks
    early_accept = f"{marks.has(marks.early)} -j ACCEPT"
    fs_in, fs_out = settings.failsafe_inbound, settings.failsafe_outbound
    chains: dict[ChainKey, Rules] = {}

    def render(table: str, hook: str, chain: Chain, prologue: list[str], allowed: str) -> None:
        r = ProgramRenderer(pn, table)
        r.endpoint(host_chain(names, hp.key, hook), chain, prologue, allowed)
        chains.update(r.chains)

    render(
        "filter",
        "I",
        hp.ingress,
        [early_accept, ESTABLISHED, INVALID, *failsafe_rules(fs_in, inbound=True, reply=False)],
        "ACCEPT",
    )
    render(
        "filter",
        "O",
        hp.egress,
        [early_accept, ESTABLISHED, INVALID, *failsafe_rules(fs_out, inbound=False, reply=False)],
        "ACCEPT",
    )
    skip_early = [
        f"{marks.has(marks.early)} {marks.set(marks.accept)}",
        f"{marks.has(marks.early)} -j RETURN",
        ESTABLISHED,
        INVALID,
    ]
    if hp.forward_ingress != ALLOW_ALL:
        render("filter", "FI", hp.forward_ingress, skip_early, "RETURN")
    if hp.forward_egress != ALLOW_ALL:
        render("filter", "FE", hp.forward_egress, skip_early, "RETURN")
    if hp.pre_dnat_ingress != NO_VERDICT:
        render(
            "mangle",
            "PD",
            hp.pre_dnat_ingress,
            [early_accept, ESTABLISHED, *failsafe_rules(fs_in, inbound=True, reply=False)],
            names.fixed(EARLY),
        )
    raw_in = failsafe_rules(fs_in, inbound=True, reply=False) + failsafe_rules(
        fs_out, inbound=False, reply=True
    )
    raw_out = failsafe_rules(fs_out, inbound=False, reply=False) + failsafe_rules(
        fs_in, inbound=True, reply=True
    )
    if hp.untracked_ingress != NO_VERDICT:
        render("raw", "UI", hp.untracked_ingress, raw_in, names.fixed(NOTRACK))
    if hp.untracked_egress != NO_VERDICT:
        render("raw", "UE", hp.untracked_egress, raw_out, names.fixed(NOTRACK))
    return Piece(chains=chains)


def _interface_dispatch(flag: str, targets: Iterable[tuple[str, str]], wl_prefix: str) -> Rules:
    """``-i/-o IFACE -g chain`` per endpoint; ``*`` last, skipping loopback and workloads."""
    rules, star = [], None
    for iface, chain in sorted(targets):
        if iface == "*":
            star = chain
        else:
            rules.append(f"{flag} {iface} -g {chain}")
    if star:
        rules += [f"{flag} lo -j RETURN", f"{flag} {wl_prefix}+ -j RETURN", f"-g {star}"]
    return tuple(rules)


def dispatch_piece(
    workloads: Iterable[WorkloadProgram],
    hosts: Iterable[HostProgram],
    names: Names,
    settings: IRSettings,
) -> Piece:
    """The dispatch chains from hooks to endpoint chains (rebuilt when endpoints come or go)."""
    wls, heps = list(workloads), list(hosts)

    def heps_with(hook: str, program: str | None = None, skip: Chain | None = None) -> Rules:
        targets = [
            (h.interface, host_chain(names, h.key, hook))
            for h in heps
            if program is None or getattr(h, program) != skip
        ]
        return _interface_dispatch(
            "-i" if hook in ("I", "FI", "PD", "UI") else "-o",
            targets,
            settings.workload_interface_prefix,
        )

    def by_interface(w: WorkloadProgram) -> str:
        return w.interface

    action = settings.endpoint_to_host_action
    wl2h = [f"-j {names.fixed(FROMWL)}"]
    if action is EndpointToHostAction.DROP:
        wl2h.append("-j DROP")
    elif action is EndpointToHostAction.ACCEPT:
        wl2h.append("-j ACCEPT")
    f = names.fixed
    chains: dict[ChainKey, Rules] = {
        ("filter", f(FROMWL)): tuple(
            f"-i {w.interface} -g {workload_chain(names, w.key, 'E')}"
            for w in sorted(wls, key=by_interface)
        ),
        ("filter", f(TOWL)): tuple(
            f"-o {w.interface} -g {workload_chain(names, w.key, 'I')}"
            for w in sorted(wls, key=by_interface)
        ),
        ("filter", f(WL2H)): tuple(wl2h),
        ("filter", f(HIN)): heps_with("I"),
        ("filter", f(HOUT)): heps_with("O"),
        ("filter", f(HFI)): heps_with("FI", "forward_ingress", ALLOW_ALL),
        ("filter", f(HFE)): heps_with("FE", "forward_egress", ALLOW_ALL),
        ("mangle", f(PRE)): heps_with("PD", "pre_dnat_ingress", NO_VERDICT),
        ("raw", f(PRE)): heps_with("UI", "untracked_ingress", NO_VERDICT),
        ("raw", f(OUT)): heps_with("UE", "untracked_egress", NO_VERDICT),
    }
    return Piece(chains=chains)
