"""Which interfaces get which programs, and making TC match that.

Attachment is a clsact qdisc plus one direct-action ``bpf`` filter per hook
at this instance's own priority/handle (a hash of the instance name), always
with ``BPF_TC_F_REPLACE``: a restarted agent swaps its freshly loaded
programs in atomically over the previous run's, so no packet ever meets an
interface without a program. What was attached where is recorded in the
pinned ``dp_ifstate`` map, which is how a later process detaches it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping

import attrs

from dataplane.backends.ebpf import _libbpf, _netns
from dataplane.backends.ebpf.maps import ifstate
from dataplane.backends.ebpf.maps._map import U32, Map
from dataplane.calc.ir import DataplaneIR

INGRESS = _libbpf.BPF_TC_INGRESS
EGRESS = _libbpf.BPF_TC_EGRESS

PROGRAMS: Mapping[int, tuple[tuple[int, str], ...]] = {
    ifstate.KIND_WORKLOAD: ((INGRESS, "dp_from_wep"), (EGRESS, "dp_to_wep")),
    ifstate.KIND_HOST: ((INGRESS, "dp_from_hep"), (EGRESS, "dp_to_hep")),
    ifstate.KIND_TUNNEL: ((INGRESS, "dp_from_tun"),),
}


def priority_of(instance: str) -> int:
    """The tc filter priority (and handle) of an instance: stable, 1..0x7fff."""
    return 1 + int(hashlib.sha256(instance.encode()).hexdigest()[:8], 16) % 0x7FFF


@attrs.frozen
class Want:
    name: str
    kind: int


def wanted(ir: DataplaneIR, links: Mapping[str, int], tunnel: str) -> dict[int, Want]:
    """ifindex → what to attach: workload interfaces named in the IR, the
    instance's tunnel, and host interfaces matching the host interface pattern."""
    kind = _classifier(ir, tunnel)
    out = {}
    for name, ifindex in links.items():
        k = kind(name)
        if k is not None:
            out[ifindex] = Want(name, k)
    return out


def host_interfaces(ir: DataplaneIR, names: Iterable[str], tunnel: str) -> list[str]:
    """The names among ``names`` that this instance treats as host interfaces."""
    kind = _classifier(ir, tunnel)
    return [n for n in names if kind(n) == ifstate.KIND_HOST]


def _classifier(ir: DataplaneIR, tunnel: str) -> Callable[[str], int | None]:
    settings = ir.settings
    workloads = {w.interface for w in ir.workloads.values()}
    pattern = re.compile(settings.host_interface_pattern)

    def kind(name: str) -> int | None:
        if name in workloads:
            return ifstate.KIND_WORKLOAD
        if name == tunnel:
            return ifstate.KIND_TUNNEL
        if (
            name != "lo"
            and not name.startswith(settings.workload_interface_prefix)
            and pattern.match(name)
        ):
            return ifstate.KIND_HOST
        return None

    return kind


class Attacher:
    """TC attachments of one instance in one network namespace."""

    def __init__(
        self,
        netns: str | None,
        records: Map[U32, ifstate.IfState],
        programs: Mapping[str, int],
        priority: int,
    ) -> None:
        self._netns = netns
        self._records = records
        self._programs = programs
        self._priority = priority
        self._mine: dict[int, Want] = {}  # attached with this process's programs

    def reconcile(self, want: Mapping[int, Want], links: Mapping[str, int]) -> None:
        """Attach what is wanted (replacing older programs), detach what is not."""
        names = {ifindex: name for name, ifindex in links.items()}
        records = {k.value: v for k, v in self._records.entries()}
        todo = {i: w for i, w in want.items() if self._mine.get(i) != w}
        stale = {i: r for i, r in records.items() if i not in want}

        def work() -> None:
            for ifindex, w in todo.items():
                self._attach(ifindex, w, records.get(ifindex))
            for ifindex, record in stale.items():
                if names.get(ifindex) == record.name.decode():
                    _detach(ifindex, record)
                self._records.delete(U32(ifindex))
                self._mine.pop(ifindex, None)

        if todo or stale:
            _netns.run_in_netns(self._netns, work)

    def _attach(self, ifindex: int, want: Want, old: ifstate.IfState | None) -> None:
        flags = 0
        if old is not None and old.name.decode() == want.name:
            flags = old.flags
        if _libbpf.tc_ensure_clsact(ifindex):
            flags |= ifstate.F_OWN_QDISC
        # Record first: if attaching fails half way, cleanup still finds it.
        self._records.update(
            U32(ifindex), ifstate.IfState(want.name.encode(), want.kind, flags, self._priority)
        )
        if old is not None and old.kind != want.kind:
            _detach_filters(ifindex, old)
        for point, program in PROGRAMS[want.kind]:
            _libbpf.tc_attach(ifindex, point, self._programs[program], self._priority)
        self._mine[ifindex] = want


def _detach_filters(ifindex: int, record: ifstate.IfState) -> None:
    for point, _ in PROGRAMS.get(record.kind, ()):
        _libbpf.tc_detach(ifindex, point, record.priority)


def _detach(ifindex: int, record: ifstate.IfState) -> None:
    _detach_filters(ifindex, record)
    if record.flags & ifstate.F_OWN_QDISC:
        _libbpf.tc_remove_clsact(ifindex)


def detach_all(netns: str | None, records: Map[U32, ifstate.IfState]) -> None:
    """Detach everything ``records`` lists (from any process), where the interface still is."""
    entries = {k.value: v for k, v in records.entries()}
    if not entries or not _netns.netns_exists(netns):
        return
    names = {ifindex: name for name, ifindex in _netns.links(netns).items()}

    def work() -> None:
        for ifindex, record in entries.items():
            if names.get(ifindex) == record.name.decode():
                _detach(ifindex, record)

    _netns.run_in_netns(netns, work)
    for ifindex in entries:
        records.delete(U32(ifindex))
