"""IR policy → the policy maps, kept in sync: programs, per-interface entries, IP sets.

What goes where (``bpf/dp_policy.h`` reads it):

* each policed interface (a workload veth; a host interface covered by a
  host endpoint: the one named after it, else the ``*`` ones) gets a
  ``dp_ifpol`` entry naming one program per chain kind;
* programs (:mod:`dataplane.backends.ebpf.program`) live in runs of
  ``dp_rules``. A changed program is written to a free run (the inactive
  copy), then the interface's entry is switched in one map update with a new
  generation, then the old run is freed: no packet ever sees half a program,
  and flows approved under the old one are judged again;
* IP-set members are ``dp_ipset`` elements under a small numeric id per IR
  set. A membership change writes only those elements and bumps the
  generation of the interfaces whose programs use the set (so a removed
  member loses its established flows too); no program is rewritten.

The first apply after start rebuilds everything make-before-break (new ids
and runs next to whatever a previous process left, then the switch, then
the old is deleted), so a restarted agent never exposes an empty policy and
repairs any drift; later applies write only what changed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

import attrs

from dataplane.backends.ebpf import program as prog
from dataplane.backends.ebpf.maps import failsafe, ifpolicy, ifstate, ipset, rule_hits
from dataplane.backends.ebpf.maps import rules as rmap
from dataplane.backends.ebpf.maps._map import U32, Map
from dataplane.backends.ebpf.services import IdPool
from dataplane.calc.ir import (
    ALLOW_ALL,
    NO_VERDICT,
    Chain,
    DataplaneIR,
    HostProgram,
    IpSet,
    WorkloadProgram,
)
from dataplane.errors import CapacityError
from dataplane.model import EndpointToHostAction

IPv4Net = ipaddress.IPv4Network

_UNTRACKED = (ifpolicy.CH_UNTRACKED_FROM, ifpolicy.CH_UNTRACKED_TO)


@attrs.frozen
class Wanted:
    """What one interface should hold: its kind, a program per chain, and their owners."""

    name: str
    kind: int
    programs: tuple[prog.Program, ...]  # indexed by ifpolicy.CH_*; () = no program
    sets: frozenset[str]
    owner: str  # "WorkloadEndpoint ns/name" or "HostEndpoint name, ..." for errors


def _heps(ir: DataplaneIR, iface: str | None) -> list[HostProgram]:
    """Host endpoints covering ``iface``: the one named after it, else the ``*`` ones (as trace)."""
    named = [h for h in ir.hosts.values() if iface is not None and h.interface == iface]
    return named or [h for h in ir.hosts.values() if h.interface == "*"]


def _program(
    chains: Sequence[Chain], kind: int, set_ids: Mapping[str, int], used: set[str]
) -> prog.Program:
    # Chains that can only allow (or say nothing) need no program, except
    # doNotTrack ones, where an explicit allow also skips preDNAT.
    if kind not in _UNTRACKED and all(c in (ALLOW_ALL, NO_VERDICT) for c in chains):
        return ()
    program, sets = prog.compile_chains(chains, set_ids)
    used |= sets
    return program


def wanted(
    ir: DataplaneIR,
    links: Mapping[str, int],
    host_ifaces: Mapping[int, str],
    set_ids: Mapping[str, int],
    workloads: Iterable[WorkloadProgram] | None = None,
) -> dict[int, Wanted]:
    """ifindex → the programs its interface should run (pure).

    ``workloads``: only these (default: all of the IR's); ``host_ifaces``: the
    host interfaces to consider (ifindex → name).
    """
    out: dict[int, Wanted] = {}
    to_host = _to_host_chains(ir)
    for wl in ir.workloads.values() if workloads is None else workloads:
        ifindex = links.get(wl.interface)
        if ifindex is None:
            continue
        used: set[str] = set()
        programs: list[prog.Program] = [()] * ifpolicy.CH_MAX
        programs[ifpolicy.CH_FROM] = _program((wl.egress,), ifpolicy.CH_FROM, set_ids, used)
        programs[ifpolicy.CH_TO] = _program((wl.ingress,), ifpolicy.CH_TO, set_ids, used)
        if to_host is not None:
            programs[ifpolicy.CH_TO_HOST] = _program(to_host, ifpolicy.CH_TO_HOST, set_ids, used)
        else:
            programs[ifpolicy.CH_TO_HOST] = prog.constant(rmap.ACT_DENY, "endpoint-to-host Drop")
        owner = f"WorkloadEndpoint {wl.key.namespace}/{wl.key.name}"
        out[ifindex] = Wanted(
            wl.interface, ifstate.KIND_WORKLOAD, tuple(programs), frozenset(used), owner
        )
    for ifindex, name in host_ifaces.items():
        heps = _heps(ir, name)
        if not heps:
            continue
        used = set()
        chains = {
            ifpolicy.CH_FROM: [h.ingress for h in heps],
            ifpolicy.CH_TO: [h.egress for h in heps],
            ifpolicy.CH_FROM_FWD: [h.forward_ingress for h in heps],
            ifpolicy.CH_TO_FWD: [h.forward_egress for h in heps],
            # As trace does: only the first host endpoint's preDNAT/untracked chains.
            ifpolicy.CH_PRE_DNAT: [heps[0].pre_dnat_ingress],
            ifpolicy.CH_UNTRACKED_FROM: [heps[0].untracked_ingress],
            ifpolicy.CH_UNTRACKED_TO: [heps[0].untracked_egress],
        }
        host_programs: list[prog.Program] = [()] * ifpolicy.CH_MAX
        for kind, cs in chains.items():
            host_programs[kind] = _program(cs, kind, set_ids, used)
        owner = "HostEndpoint " + ", ".join(h.key.name for h in heps)
        out[ifindex] = Wanted(name, ifstate.KIND_HOST, tuple(host_programs), frozenset(used), owner)
    return out


def _to_host_chains(ir: DataplaneIR) -> tuple[Chain, ...] | None:
    """What a pod's traffic to its own host meets; None for Drop."""
    action = ir.settings.endpoint_to_host_action
    if action is EndpointToHostAction.DROP:
        return None
    if action is EndpointToHostAction.ACCEPT:
        return (ALLOW_ALL,)
    return tuple(h.ingress for h in _heps(ir, None)) or (ALLOW_ALL,)


def members(ip_set: IpSet) -> set[ipset.Member]:
    """An IR set's IPv4 members in map form (IPv6 members are skipped: IPv4 only)."""
    return _members(ip_set.nets, ip_set.ports)


def _members(
    nets: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network],
    ports: Iterable[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, int, int]],
) -> set[ipset.Member]:
    out: set[ipset.Member] = {(n, 0, 0) for n in nets if isinstance(n, IPv4Net)}
    out |= {(n, int(p), port) for n, p, port in ports if isinstance(n, IPv4Net)}
    return out


def failsafes(ir: DataplaneIR, vxlan_port: int) -> set[failsafe.Entry]:
    """Failsafe ports, plus the tunnel to and from every other node."""
    any_net = IPv4Net("0.0.0.0/0")
    out: set[failsafe.Entry] = set()
    for direction, entries in (
        (failsafe.IN, ir.settings.failsafe_inbound),
        (failsafe.OUT, ir.settings.failsafe_outbound),
    ):
        for e in entries:
            net = e.net if e.net is not None else any_net
            if isinstance(net, IPv4Net):
                out.add((direction, int(e.protocol), e.port, net))
    for remote in ir.remote_nodes.values():
        for addr in remote.addresses:
            if isinstance(addr, ipaddress.IPv4Address):
                for direction in (failsafe.IN, failsafe.OUT):
                    out.add((direction, 17, vxlan_port, IPv4Net(addr)))
    return out


class RuleSpace:
    """First-fit allocation of runs in ``dp_rules`` (free runs are coalesced)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._free: list[tuple[int, int]] = [(0, size)]  # (start, length), sorted

    def take(self, length: int, owner: str) -> int:
        for i, (start, free) in enumerate(self._free):
            if free >= length:
                self._free[i : i + 1] = [(start + length, free - length)] if free > length else []
                return start
        raise CapacityError(
            f"{owner}: no room for a {length}-instruction policy program in dp_rules "
            f"({self.size} entries; raise ebpf_policy_rules_max)"
        )

    def reserve(self, base: int, length: int) -> None:
        """Mark a run a previous process left in use."""
        for i, (start, free) in enumerate(self._free):
            if start <= base and base + length <= start + free:
                pieces = [(start, base - start), (base + length, start + free - base - length)]
                self._free[i : i + 1] = [p for p in pieces if p[1]]
                return

    def release(self, base: int, length: int) -> None:
        runs = sorted([*self._free, (base, length)])
        merged: list[tuple[int, int]] = []
        for start, free in runs:
            if merged and merged[-1][0] + merged[-1][1] == start:
                merged[-1] = (merged[-1][0], merged[-1][1] + free)
            else:
                merged.append((start, free))
        self._free = merged


@attrs.define
class _Iface:
    wanted: Wanted
    gen: int
    runs: tuple[tuple[int, int], ...]  # (base, len) per chain


class PolicyMaps:
    """The policy maps of one instance and what this process wrote into them."""

    def __init__(
        self,
        rules: Map[U32, rmap.Rule],
        hits: Map[U32, rule_hits.RuleHit],
        ifpol: Map[U32, ifpolicy.IfPolicy],
        sets: Map[ipset.IpSetKey, ipset.IpSetValue],
        fails: Map[failsafe.FailsafeKey, failsafe.FailsafeValue],
        rules_size: int,
    ) -> None:
        self._rules, self._hits, self._ifpol = rules, hits, ifpol
        self._sets, self._fails = sets, fails
        self._space = RuleSpace(rules_size)
        self._ifaces: dict[int, _Iface] = {}
        self._set_ids: dict[str, int] = {}
        self._ir_sets: dict[str, IpSet] = {}  # as last written
        self._ids = IdPool()
        self._gen = 0  # the last generation handed out (see _next_gen)
        self._old_runs: dict[int, tuple[tuple[int, int], ...]] = {}
        self._old_set_keys: list[ipset.IpSetKey] = []
        self._adopting = True

    @property
    def set_ids(self) -> Mapping[str, int]:
        return self._set_ids

    @property
    def installed(self) -> Mapping[int, _Iface]:
        return self._ifaces

    def load(self) -> None:
        """Note what a previous process left, to build next to it and then remove it."""
        for ifkey, val in self._ifpol.entries():
            runs = tuple((val.base[c], val.len[c]) for c in range(ifpolicy.CH_MAX))
            for base, length in runs:
                if length:
                    self._space.reserve(base, length)
            self._gen = max(self._gen, val.gen)
            self._old_runs[ifkey.value] = runs
        self._old_set_keys = self._sets.all_keys()
        for setkey in self._old_set_keys:
            self._ids.mark(setkey.set_id)

    # ------------------------------------------------------------ writing

    def sync_failsafes(self, entries: set[failsafe.Entry]) -> None:
        current = {failsafe.entry_of(k) for k in self._fails.all_keys()}
        for entry in entries - current:
            self._fails.update(failsafe.make_key(entry), failsafe.FailsafeValue(1))
        for entry in current - entries:
            self._fails.delete(failsafe.make_key(entry))

    def upsert_sets(self, sets: Iterable[IpSet]) -> set[str]:
        """Write members of new or changed sets; the ids whose membership changed.

        Diffs against the IR set last written (the IR hands over whole sets),
        so a one-member change costs two element writes, whatever the size.
        """
        changed = set()
        for s in sets:
            numeric = self._set_ids.get(s.id)
            if numeric is None:
                numeric = self._set_ids[s.id] = self._ids.take()
            old = self._ir_sets.get(s.id, IpSet(s.id, s.description))
            if s.id in self._ir_sets and (old.nets, old.ports) == (s.nets, s.ports):
                continue
            gone = _members(old.nets - s.nets, old.ports - s.ports)
            for m in _members(s.nets - old.nets, s.ports - old.ports):
                self._sets.update(ipset.make_key(numeric, m), ipset.IpSetValue(1))
            self._sets.delete_many(ipset.make_key(numeric, m) for m in gone)
            self._ir_sets[s.id] = s
            changed.add(s.id)
        return changed

    def remove_sets(self, ids: Iterable[str]) -> None:
        """Delete sets no program refers to any more (call after the programs changed)."""
        for set_id in ids:
            numeric = self._set_ids.pop(set_id, None)
            if numeric is None:
                continue
            old = self._ir_sets.pop(set_id, None)
            if old is not None:
                self._sets.delete_many(ipset.make_key(numeric, m) for m in members(old))
            self._ids.release(numeric)

    def sync_interfaces(self, want: Mapping[int, Wanted]) -> None:
        """Make the policed interfaces exactly ``want`` (every one of them)."""
        self.update_interfaces(want)
        for ifindex in [i for i in self._ifaces if i not in want]:
            self._remove(ifindex)
        if self._adopting:
            self._finish_adoption(want)

    def update_interfaces(self, want: Mapping[int, Wanted]) -> None:
        """Install the interfaces of ``want`` whose programs changed."""
        for ifindex, w in want.items():
            cur = self._ifaces.get(ifindex)
            if cur is None or cur.wanted != w:
                self._install(ifindex, w, cur)

    def drop_workloads_except(self, interfaces: Mapping[str, int]) -> None:
        """Remove workload entries the IR no longer names (``interfaces``: name → ifindex)."""
        for ifindex, cur in list(self._ifaces.items()):
            kind, name = cur.wanted.kind, cur.wanted.name
            if kind == ifstate.KIND_WORKLOAD and interfaces.get(name) != ifindex:
                self._remove(ifindex)

    def bump(self, set_ids: set[str]) -> None:
        """New generations for interfaces using ``set_ids``: their flows are judged again."""
        for ifindex, cur in self._ifaces.items():
            if cur.wanted.sets & set_ids:
                cur.gen = self._next_gen()
                self._write_entry(ifindex, cur)

    def _install(self, ifindex: int, w: Wanted, cur: _Iface | None) -> None:
        runs = []
        try:
            for program in w.programs:
                if not program:
                    runs.append((0, 0))
                    continue
                base = self._space.take(len(program), w.owner)
                runs.append((base, len(program)))
                self._write_program(base, program)
        except BaseException:
            for base, length in runs:
                if length:
                    self._space.release(base, length)
            raise
        new = _Iface(w, self._next_gen(), tuple(runs))
        self._write_entry(ifindex, new)
        self._ifaces[ifindex] = new
        if cur is not None:
            self._free(cur.runs)

    def _next_gen(self) -> int:
        """A generation no interface of this instance has had before (0 is never
        one). Flows keep their verdicts per interface and generation (``dp_pct``),
        so a number used twice would let a verdict from an old policy pass for
        current: an interface whose policy was removed and comes back must not
        start counting again at 1. After a restart the count goes on from the
        highest generation adopted."""
        self._gen = (self._gen + 1) & 0xFFFFFFFF or 1
        return self._gen

    def _write_program(self, base: int, program: prog.Program) -> None:
        self._rules.update_many(
            (U32(base + i), rmap.Rule.from_buffer_copy(ins.rule)) for i, ins in enumerate(program)
        )
        self._hits.zero_percpu(U32(base + i) for i in range(len(program)))

    def _write_entry(self, ifindex: int, cur: _Iface) -> None:
        entry = ifpolicy.IfPolicy(cur.gen, cur.wanted.kind)
        for chain, (base, length) in enumerate(cur.runs):
            entry.base[chain] = base
            entry.len[chain] = length
        self._ifpol.update(U32(ifindex), entry)

    def _remove(self, ifindex: int) -> None:
        self._ifpol.delete(U32(ifindex))
        self._free(self._ifaces.pop(ifindex).runs)

    def _free(self, runs: Sequence[tuple[int, int]]) -> None:
        for base, length in runs:
            if length:
                self._space.release(base, length)

    def _finish_adoption(self, want: Mapping[int, Wanted]) -> None:
        """After the first full write: remove what a previous process left behind."""
        for ifindex, runs in self._old_runs.items():
            if ifindex not in want:
                self._ifpol.delete(U32(ifindex))
            self._free(runs)
        in_use = set(self._set_ids.values())
        self._sets.delete_many(k for k in self._old_set_keys if k.set_id not in in_use)
        for key in self._old_set_keys:
            if key.set_id not in in_use:
                self._ids.release(key.set_id)
        self._old_runs, self._old_set_keys, self._adopting = {}, [], False

    # ------------------------------------------------------------ reading

    def hits(self, base: int, length: int) -> list[int]:
        return [
            sum(h.packets for h in self._hits.lookup_percpu(U32(base + i))) for i in range(length)
        ]
