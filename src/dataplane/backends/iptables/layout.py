"""The fixed skeleton: which builtin chains jump where, and the chains that never move.

::

    raw     PREROUTING → PRE  (-i hep → untracked ingress)     OUTPUT → OUT (untracked egress)
    mangle  PREROUTING → PRE  (-i hep → preDNAT)
    nat     PREROUTING, OUTPUT → PRE/OUT: FE set? → NT (dispatch tree) → F-<frontend>
            POSTROUTING → POST: hairpin set → mark; mark → MASQUERADE
    filter  INPUT   → IN:  service filter (FEF set → FT tree → G-<frontend>), HC, WL2H, HIN
            FORWARD → FWD: service filter, HFI, FROMWL, TOWL, HFE, accept mark → ACCEPT
            OUTPUT  → OUT: service filter, host → pod allowed, HOUT
            (IN/FWD/OUT hold only the jumps the IR needs: they see every packet)

Every chain here exists whenever the backend is started (possibly empty),
so the hooks never point at a missing chain and an update only rewrites the
pieces that changed.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from dataplane.backends.iptables.naming import Marks, Names
from dataplane.backends.iptables.render_ipsets import net_members
from dataplane.backends.iptables.render_services import ServiceNames
from dataplane.backends.iptables.store import ChainKey, Piece, Rules, SetSpec
from dataplane.backends.iptables.tree import Entry, build
from dataplane.calc.ir import IRSettings

PRE, OUT, POST = "PRE", "OUT", "POST"
IN, FWD, SVCF = "IN", "FWD", "SVCF"
NAT_TREE, FILTER_TREE, HC = "NT", "FT", "HC"
FROMWL, TOWL, WL2H = "FROMWL", "TOWL", "WL2H"
HIN, HOUT, HFI, HFE = "HIN", "HOUT", "HFI", "HFE"
NOTRACK, EARLY = "NOTRACK", "EARLY"

HOOKS: tuple[tuple[str, str, str], ...] = (
    ("raw", "PREROUTING", PRE),
    ("raw", "OUTPUT", OUT),
    ("mangle", "PREROUTING", PRE),
    ("nat", "PREROUTING", PRE),
    ("nat", "OUTPUT", OUT),
    ("nat", "POSTROUTING", POST),
    ("filter", "INPUT", IN),
    ("filter", "FORWARD", FWD),
    ("filter", "OUTPUT", OUT),
)
"""(table, builtin chain, own chain): one jump each, inserted first in the builtin."""


def hook_rules(names: Names, *, nat: bool) -> dict[tuple[str, str], str]:
    """The jump rule text per (table, builtin chain); without the nat hooks when
    services are NATed by the nftables table instead (``nat=False``)."""
    return {
        (table, builtin): f"-j {names.fixed(own)}"
        for table, builtin, own in HOOKS
        if nat or table != "nat"
    }


def base_piece(names: Names, marks: Marks, settings: IRSettings, *, nat: bool) -> Piece:
    """Fixed chains and the service sets (pod CIDRs come from the settings); the nat
    chains and their sets only when iptables does the NAT (``nat``)."""
    f = names.fixed
    sn = ServiceNames(names, marks)
    to_tree = f"-m set --match-set {sn.frontends_set} dst,dst -g {f(NAT_TREE)}"
    masq = marks.masq
    chains: dict[ChainKey, Rules] = {
        ("nat", f(PRE)): (to_tree,),
        ("nat", f(OUT)): (to_tree,),
        ("nat", f(POST)): (
            f"-m conntrack --ctstate DNAT -m set --match-set {sn.hairpin_set} src,dst,dst "
            + marks.set(masq),
            f"-m mark ! --mark {marks.hex(masq)}/{marks.hex(masq)} -j RETURN",
            marks.clear(masq),
            "-j MASQUERADE --random-fully",
        ),
        ("filter", f(SVCF)): ("-m conntrack --ctstate DNAT -j RETURN", f"-g {f(FILTER_TREE)}"),
        ("raw", f(NOTRACK)): (marks.set(marks.early), "-j CT --notrack", "-j ACCEPT"),
        ("mangle", f(EARLY)): (marks.set(marks.early), "-j ACCEPT"),
    }
    sets: tuple[SetSpec, ...] = (
        SetSpec(sn.frontends_set, "hash:ip,port"),
        SetSpec(sn.filtered_set, "hash:ip,port"),
        SetSpec(sn.cluster_set, "hash:net"),
        SetSpec(sn.hairpin_set, "hash:ip,port,ip"),
    )
    if not nat:
        chains = {key: rules for key, rules in chains.items() if key[0] != "nat"}
        sets = tuple(s for s in sets if s.name not in (sn.frontends_set, sn.hairpin_set))
    members = {sn.cluster_set: frozenset(net_members(settings.cluster_cidrs))}
    return Piece(chains=chains, sets=sets, members=members)


@attrs.frozen
class FilterNeeds:
    """What the filter hook chains must visit; each jump is left out when it has nothing to do,
    because these chains see every packet, not only new connections."""

    services: bool  # some frontend rejects, drops or has source ranges
    health_checks: bool
    workloads: bool
    host_ingress: bool
    host_egress: bool
    forward_ingress: bool
    forward_egress: bool
    workload_to_host: bool  # workloads exist or the endpoint-to-host action is not RETURN


def filter_hooks_piece(
    names: Names, marks: Marks, settings: IRSettings, needs: FilterNeeds
) -> Piece:
    """filter INPUT/FORWARD/OUTPUT entry chains with only the jumps that matter."""
    f = names.fixed
    sn = ServiceNames(names, marks)
    wl = f"{settings.workload_interface_prefix}+"
    svc = f"-m conntrack --ctstate NEW -m set --match-set {sn.filtered_set} dst,dst -j {f(SVCF)}"
    staged = needs.workloads or needs.forward_ingress or needs.forward_egress

    def when(*pairs: tuple[bool, str]) -> Rules:
        return tuple(rule for wanted, rule in pairs if wanted)

    chains: dict[ChainKey, Rules] = {
        ("filter", f(IN)): when(
            (needs.services, svc),
            (needs.health_checks, f"-j {f(HC)}"),
            (needs.workload_to_host, f"-i {wl} -g {f(WL2H)}"),
            (needs.host_ingress, f"-j {f(HIN)}"),
        ),
        ("filter", f(FWD)): when(
            (staged, marks.clear(marks.accept | marks.passed)),
            (needs.services, svc),
            (needs.forward_ingress, f"-j {f(HFI)}"),
            (needs.workloads, f"-i {wl} -j {f(FROMWL)}"),
            (needs.workloads, f"-o {wl} -j {f(TOWL)}"),
            (needs.forward_egress, f"-j {f(HFE)}"),
            (staged, f"{marks.has(marks.accept)} -j ACCEPT"),
        ),
        ("filter", f(OUT)): when(
            (needs.services, svc),
            (needs.host_egress, f"-o {wl} -j RETURN"),
            (needs.host_egress, f"-j {f(HOUT)}"),
        ),
    }
    return Piece(chains=chains)


def tree_piece(names: Names, table: str, entries: Iterable[Entry]) -> Piece:
    """The dispatch tree of one table (nat: every frontend; filter: those needing filter)."""
    root = names.fixed(NAT_TREE if table == "nat" else FILTER_TREE)
    kind = "N" if table == "nat" else "M"
    chains = build(list(entries), root, lambda ident: names.hashed(kind, ident))
    return Piece(chains={(table, name): rules for name, rules in chains.items()})


def health_check_piece(names: Names, rules: Rules) -> Piece:
    return Piece(chains={("filter", names.fixed(HC)): rules})
