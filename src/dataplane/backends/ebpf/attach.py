"""Which interfaces get which programs, and making the kernel match that.

Two ways to attach, chosen by the ``ebpf_attach`` option:

* ``"tcx"`` (the default, kernel >= 6.6): one TCX link per hook, pinned under
  the instance's pin directory (``links/<ifindex>-<in|out>``). No qdisc, no
  filter priorities shared with other TC users, no classifier layer between
  the hook and the program. A restarted agent swaps its programs into
  the pinned links atomically (``BPF_LINK_UPDATE``). Where the kernel has no
  TCX, the backend falls back to clsact, once, with a warning.
* ``"tc"``: a clsact qdisc plus one direct-action ``bpf`` filter per hook at
  this instance's own priority/handle (a hash of the instance name), always
  with ``BPF_TC_F_REPLACE``, so a restarted agent swaps its programs in
  atomically over the previous run's.

Either way no packet meets an interface without a program, also when an
upgrade moves an interface from one way to the other (the new attachment is
made before the old one is removed; while interfaces move, the programs'
"pass" verdict ends the hook, so the two never both act on a packet:
``nodestate.set_pass_on``). What was attached
where, and how, is recorded in the pinned ``dp_ifstate`` map, which is how a
later process replaces or detaches it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import attrs

from dataplane.backends.ebpf import _libbpf, _netns
from dataplane.backends.ebpf.maps import ifstate
from dataplane.backends.ebpf.maps._map import U32, Map
from dataplane.calc.ir import DataplaneIR
from dataplane.errors import BackendError

log = logging.getLogger(__name__)

INGRESS = _libbpf.BPF_TC_INGRESS
EGRESS = _libbpf.BPF_TC_EGRESS
MODES = ("tcx", "tc")
DEFAULT_MODE = "tcx"  # the ebpf_attach option
LINK_DIR = "links"  # under the instance's pin directory

PROGRAMS: Mapping[int, tuple[tuple[int, str], ...]] = {
    ifstate.KIND_WORKLOAD: ((INGRESS, "dp_from_wep"), (EGRESS, "dp_to_wep")),
    ifstate.KIND_HOST: ((INGRESS, "dp_from_hep"), (EGRESS, "dp_to_hep")),
    ifstate.KIND_TUNNEL: ((INGRESS, "dp_from_tun"),),
}


def attach_mode(value: object) -> str:
    """The ``ebpf_attach`` option: ``"tcx"`` (clsact where the kernel lacks TCX) or ``"tc"``."""
    if value not in MODES:
        raise BackendError(f"ebpf_attach must be one of {', '.join(MODES)}, not {value!r}")
    return str(value)


def link_pin(link_dir: Path, ifindex: int, point: int) -> Path:
    """Where the TCX link of one hook of one interface is pinned."""
    return link_dir / f"{ifindex}-{'in' if point == INGRESS else 'out'}"


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
    """The attachments of one instance in one network namespace."""

    def __init__(
        self,
        netns: str | None,
        records: Map[U32, ifstate.IfState],
        programs: Mapping[str, int],
        priority: int,
        link_dir: Path,
        mode: str,
    ) -> None:
        self._netns = netns
        self._records = records
        self._programs = programs
        self._priority = priority
        self._link_dir = link_dir
        self._tcx = mode == "tcx"
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
                _detach(ifindex, record, self._link_dir, names.get(ifindex) == record.name.decode())
                self._records.delete(U32(ifindex))
                self._mine.pop(ifindex, None)

        if todo or stale:
            _netns.run_in_netns(self._netns, work)

    def moves(self, want: Mapping[int, Want]) -> bool:
        """Whether reconciling ``want`` moves an interface between TCX and clsact
        (both attachments are there for a moment; see ``nodestate.set_pass_on``)."""
        records = {k.value: v for k, v in self._records.entries()}
        for ifindex in want:
            old = records.get(ifindex)
            if old is not None and (
                _has_filters(old.flags) if self._tcx else bool(old.flags & ifstate.F_TCX)
            ):
                return True
        return False

    def _attach(self, ifindex: int, want: Want, old: ifstate.IfState | None) -> None:
        if old is not None and old.name.decode() != want.name:
            # The ifindex now belongs to another interface: the old
            # attachments went with the old one (its links are defunct).
            _detach(ifindex, old, self._link_dir, present=False)
            old = None
        if self._tcx:
            try:
                self._attach_tcx(ifindex, want, old)
            except _libbpf.TcxUnsupportedError as exc:
                log.warning("%s; attaching with a clsact qdisc instead", exc)
                self._tcx = False
            else:
                self._mine[ifindex] = want
                return
        self._attach_tc(ifindex, want, old)
        self._mine[ifindex] = want

    def _attach_tcx(self, ifindex: int, want: Want, old: ifstate.IfState | None) -> None:
        flags = ifstate.F_TCX
        if old is not None:
            flags |= old.flags | (ifstate.F_TC if _has_filters(old.flags) else 0)
        # Record first: if attaching fails half way, cleanup still finds it.
        self._record(ifindex, want, flags)
        points = {point for point, _ in PROGRAMS[want.kind]}
        for point, program in PROGRAMS[want.kind]:
            _libbpf.tcx_attach(
                ifindex, point, self._programs[program], link_pin(self._link_dir, ifindex, point)
            )
        for point in (INGRESS, EGRESS):
            if point not in points:
                _libbpf.tcx_detach(link_pin(self._link_dir, ifindex, point))
        if old is not None and _has_filters(old.flags):
            _detach_tc(ifindex, old)  # moving from clsact: its filters go now
            self._record(ifindex, want, flags & ~(ifstate.F_TC | ifstate.F_OWN_QDISC))

    def _attach_tc(self, ifindex: int, want: Want, old: ifstate.IfState | None) -> None:
        flags = (old.flags if old is not None else 0) | ifstate.F_TC
        if _libbpf.tc_ensure_clsact(ifindex):
            flags |= ifstate.F_OWN_QDISC
        self._record(ifindex, want, flags)
        if old is not None and old.kind != want.kind and _has_filters(old.flags):
            _detach_filters(ifindex, old)
        for point, program in PROGRAMS[want.kind]:
            _libbpf.tc_attach(ifindex, point, self._programs[program], self._priority)
        if flags & ifstate.F_TCX:
            _detach_tcx(ifindex, self._link_dir)  # moving from links to clsact
            self._record(ifindex, want, flags & ~ifstate.F_TCX)

    def _record(self, ifindex: int, want: Want, flags: int) -> None:
        self._records.update(
            U32(ifindex), ifstate.IfState(want.name.encode(), want.kind, flags, self._priority)
        )


def _has_filters(flags: int) -> bool:
    """Whether a record's interface may carry TC filters: attached that way, or by a
    version from before TCX (whose records have neither flag)."""
    return bool(flags & ifstate.F_TC or not flags & ifstate.F_TCX)


def _detach_filters(ifindex: int, record: ifstate.IfState) -> None:
    for point, _ in PROGRAMS.get(record.kind, ()):
        _libbpf.tc_detach(ifindex, point, record.priority)


def _detach_tc(ifindex: int, record: ifstate.IfState) -> None:
    _detach_filters(ifindex, record)
    if record.flags & ifstate.F_OWN_QDISC:
        _libbpf.tc_remove_clsact(ifindex)


def _detach_tcx(ifindex: int, link_dir: Path) -> None:
    for point in (INGRESS, EGRESS):
        _libbpf.tcx_detach(link_pin(link_dir, ifindex, point))


def _detach(ifindex: int, record: ifstate.IfState, link_dir: Path, present: bool) -> None:
    """Undo ``record``; ``present``: the interface it names still has ``ifindex``.

    Links are removed in any case (a link whose interface is gone is defunct
    but pinned); TC filters where the interface still is (a record caught
    half way between the two ways has both flags).
    """
    if record.flags & ifstate.F_TCX:
        _detach_tcx(ifindex, link_dir)
    if present and _has_filters(record.flags):
        _detach_tc(ifindex, record)


def detach_all(netns: str | None, records: Map[U32, ifstate.IfState], link_dir: Path) -> None:
    """Detach everything ``records`` lists (from any process), where the interface still is."""
    entries = {k.value: v for k, v in records.entries()}
    if not entries:
        return
    present = _netns.links(netns) if _netns.netns_exists(netns) else {}
    names = {ifindex: name for name, ifindex in present.items()}

    def work() -> None:
        for ifindex, record in entries.items():
            _detach(ifindex, record, link_dir, names.get(ifindex) == record.name.decode())

    if present:
        _netns.run_in_netns(netns, work)
    else:
        for ifindex, record in entries.items():
            _detach(ifindex, record, link_dir, present=False)
    for ifindex in entries:
        records.delete(U32(ifindex))
