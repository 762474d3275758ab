"""The ``ebpf`` backend: prebuilt TC programs, loaded through libbpf, replacing kube-proxy.

Services: DNAT at the first packet and reverse DNAT on replies, with no
SNAT, so pods see their clients' real addresses; NodePort traffic for a
backend on another node is carried there through a VXLAN device unchanged
(replies return through the ingress node, or straight to the client in DSR
mode). Policy: prebuilt code interprets per-interface rule programs and IP
sets held in maps (:mod:`~dataplane.backends.ebpf.policy`), on workload
veths and on host interfaces covered by host endpoints, with failsafes;
verdicts are kept in conntrack per flow. Maps are pinned under
``/sys/fs/bpf/dataplane/<instance>/``: conntrack, affinity and NAT state
survive an agent restart, and a new process adopts them and swaps its own
programs in atomically. See ``docs/ebpf.md``.

Options (``DataplaneConfig.options``): ``ebpf_pin_root``,
``ebpf_vxlan_port`` (4789; the same on every node), ``ebpf_tunnel``
(``"bpf"``, the default: the programs encapsulate and decapsulate NodePort
traffic to another node themselves, out of the interface the flow came in
by; ``"kernel"``: through the instance's VXLAN device, routed by the stack;
both put the same packets on the wire, so nodes may differ), ``ebpf_attach``
(``"tcx"``, the default: pinned TCX links, or a clsact qdisc where the kernel
has no TCX; ``"tc"``: always clsact, see :mod:`~dataplane.backends.ebpf.attach`), map sizes
``ebpf_conntrack_max``, ``ebpf_frontends_max``, ``ebpf_backends_max``,
``ebpf_affinity_max``, ``ebpf_source_ranges_max``, ``ebpf_policy_rules_max``
(instructions of all policy programs, twice what is live so changed programs
fit next to the old), ``ebpf_ipset_max`` (IP-set members),
``ebpf_policy_conntrack_max``, and ``ebpf_ct_timeouts`` (a mapping of
:class:`~dataplane.backends.ebpf.maps.conntrack.Timeouts` fields, seconds).
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import shutil
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from dataplane.backends.base import Backend, Capabilities
from dataplane.backends.ebpf import (
    _bpffs,
    _libbpf,
    _netns,
    attach,
    loader,
    nodestate,
    policy,
    routewatch,
    services,
)
from dataplane.backends.ebpf.dump import dump as dump_maps
from dataplane.backends.ebpf.dump import dump_policy
from dataplane.backends.ebpf.maps import (
    conntrack,
    failsafe,
    ifpolicy,
    ifstate,
    ipset,
    node,
    route,
    rule_hits,
    rules,
    source_class,
)
from dataplane.backends.ebpf.maps._map import Map
from dataplane.backends.ebpf.maps.backend import SPEC as BACKENDS
from dataplane.backends.ebpf.maps.frontend import SPEC as FRONTENDS
from dataplane.backends.ebpf.maps.source_range import SPEC as SOURCE_RANGES
from dataplane.calc.ir import DataplaneIR, IRDelta
from dataplane.errors import BackendError, BackendUnavailableError

if TYPE_CHECKING:
    from dataplane.engine.config import DataplaneConfig

__all__ = ["EbpfBackend"]

log = logging.getLogger(__name__)

BPFFS = Path("/sys/fs/bpf")
DEFAULT_PIN_ROOT = BPFFS / "dataplane"
DEFAULT_VXLAN_PORT = 4789
TUNNEL_MODES = ("kernel", "bpf")
DEFAULT_TUNNEL = "bpf"  # the ebpf_tunnel option
_SIZE_OPTIONS = (
    "ebpf_conntrack_max",
    "ebpf_frontends_max",
    "ebpf_backends_max",
    "ebpf_affinity_max",
    "ebpf_source_ranges_max",
    "ebpf_policy_rules_max",
    "ebpf_ipset_max",
    "ebpf_policy_conntrack_max",
)


def tunnel_mode(value: object) -> str:
    """The ``ebpf_tunnel`` option: ``"kernel"`` (the VXLAN device) or ``"bpf"`` (the programs)."""
    if value not in TUNNEL_MODES:
        raise BackendError(f"ebpf_tunnel must be one of {', '.join(TUNNEL_MODES)}, not {value!r}")
    return str(value)


def tunnel_name(instance: str) -> str:
    """The instance's VXLAN device: a short hash, since interface names stop at 15 bytes."""
    return "dpv" + hashlib.sha256(instance.encode()).hexdigest()[:8]


class EbpfBackend(Backend):
    """Services and policy through TC BPF programs in the node's (or ``netns``'s) namespace."""

    name: ClassVar[str] = "ebpf"
    capabilities: ClassVar[Capabilities] = Capabilities(
        policy=True,
        host_endpoints=True,
        named_ports=True,
        dsr=True,
        source_ip_preservation=True,
        masquerade=False,
        node_local_nodeport=False,
        limitations=(
            f"policy programs: at most {rules.MAX_RULES} instructions per interface and chain "
            f"(rules plus tier ends), {rules.RULE_SETS} IP-set references and "
            f"{rules.RULE_PORTS} port ranges per rule; beyond that apply() raises CapacityError",
            "policy verdicts are per flow (kept in conntrack); ICMP errors are judged as "
            "flows of their own, and IP fragments after the first are not policed",
            "NodePort traffic tunnelled from another node meets only the backend pod's ingress "
            "policy on the backend's node (host endpoint policy applied on the ingress node)",
            "masquerade is never applied: sources are preserved and replies return through "
            "conntrack (and the tunnel); only hairpin connections are SNATed, to the frontend",
            "IPv4 only",
            "IP fragments of service traffic are not translated",
            "SCTP: the CRC32c is not recomputed when a port is translated (fine for "
            "checksum-offloaded packets, e.g. over veth; use port == targetPort otherwise)",
            "DSR answers with the ingress node's tunnel address: NodePorts only; "
            "external and load-balancer IPs use tunnel mode",
            'ebpf_tunnel="bpf" (the default) sends tunnelled packets out of the interface the '
            'flow came in by; nodes that reach each other through another one need "kernel"',
        ),
    )

    def __init__(self, config: DataplaneConfig) -> None:
        super().__init__(config)
        root = Path(config.option("ebpf_pin_root", DEFAULT_PIN_ROOT))
        self._pin_dir = root / config.instance_name
        self._netns = config.netns
        self._tunnel = tunnel_name(config.instance_name)
        self._loaded: loader.Loaded | None = None
        self._services: services.ServiceMaps | None = None
        self._policy: policy.PolicyMaps | None = None
        self._attacher: attach.Attacher | None = None
        self._tunnel_ifindex = 0
        self._vxlan_port = DEFAULT_VXLAN_PORT
        self._bpf_tunnel = tunnel_mode(config.option("ebpf_tunnel", DEFAULT_TUNNEL)) == "bpf"
        self._attach_mode = attach.attach_mode(config.option("ebpf_attach", attach.DEFAULT_MODE))
        self._timeouts = conntrack.Timeouts.from_option(config.option("ebpf_ct_timeouts"))
        self._synced = False
        self._warnings: tuple[str, ...] = ()
        # apply() and the route watch's thread take turns on the maps; the IR
        # is the last one applied, which says what dp_route must cover.
        self._lock = threading.Lock()
        self._ir: DataplaneIR | None = None
        self._route_watch: routewatch.RouteWatch | None = None

    @classmethod
    def unavailable_reason(cls) -> str | None:
        problem = _libbpf.library_problem()
        if problem:
            return problem
        if os.geteuid() != 0:
            return "the eBPF backend needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)"
        if not Path("/sys/kernel/btf/vmlinux").exists():
            return "kernel without BTF (/sys/kernel/btf/vmlinux missing; CONFIG_DEBUG_INFO_BTF)"
        if not BPFFS.is_dir():
            return f"no {BPFFS} to mount the BPF filesystem on"
        if not _kernel_has("clsact_"):
            return "kernel without the clsact qdisc (CONFIG_NET_SCH_INGRESS)"
        return None

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._loaded is not None:
            return
        reason = self.unavailable_reason()
        if reason:
            raise BackendUnavailableError(reason)
        if not _netns.netns_exists(self._netns):
            raise BackendError(f"network namespace {self._netns!r} does not exist")
        _bpffs.ensure_mounted(BPFFS)
        (self._pin_dir / attach.LINK_DIR).mkdir(parents=True, exist_ok=True)
        sizes = {k: int(v) for k in _SIZE_OPTIONS if (v := self.config.option(k)) is not None}
        loaded = loader.load(self._pin_dir, sizes, self._timeouts)
        try:
            self._vxlan_port = int(self.config.option("ebpf_vxlan_port", DEFAULT_VXLAN_PORT))
            self._tunnel_ifindex = _netns.ensure_vxlan(self._netns, self._tunnel, self._vxlan_port)
            svc = services.ServiceMaps(
                loaded.map(FRONTENDS), loaded.map(BACKENDS), loaded.map(SOURCE_RANGES)
            )
            svc.load()
            rule_map = loaded.map(rules.SPEC)
            pol = policy.PolicyMaps(
                rule_map,
                loaded.map(rule_hits.SPEC),
                loaded.map(ifpolicy.SPEC),
                loaded.map(ipset.SPEC),
                loaded.map(failsafe.SPEC),
                rule_map.max_entries(),
            )
            pol.load()
            self._route_watch = routewatch.RouteWatch(self._netns, self._routes_changed)
        except OSError as exc:
            loaded.close()
            raise BackendError(f"netlink: {exc}") from exc
        except BaseException:
            loaded.close()
            raise
        self._loaded, self._services, self._policy = loaded, svc, pol
        self._attacher = attach.Attacher(
            self._netns,
            loaded.map(ifstate.SPEC),
            loaded.programs,
            attach.priority_of(self.config.instance_name),
            self._pin_dir / attach.LINK_DIR,
            self._attach_mode,
        )
        log.info(
            "ebpf backend started (pins %s, netns %s, adopted %d frontends)",
            self._pin_dir,
            self._netns,
            len(svc.installed),
        )

    def program_fds(self) -> Mapping[str, int]:
        """The loaded programs' fds by name, valid until :meth:`close` (for diagnostics:
        ``bench/ebpf_paths.py`` times them with ``BPF_PROG_TEST_RUN``)."""
        loaded, *_ = self._require()
        return dict(loaded.programs)

    def close(self) -> None:
        """Release fds; programs stay attached and maps stay pinned (restart-safe)."""
        if self._route_watch is not None:  # first: its callback takes the lock
            self._route_watch.close()
            self._route_watch = None
        with self._lock:
            if self._loaded is not None:
                self._loaded.close()
            self._loaded = self._services = self._attacher = self._policy = None
            self._synced = False
            self._ir = None

    def cleanup(self) -> None:
        """Detach every program this instance attached, delete its tunnel, remove its pins."""
        self.close()
        records_pin = self._pin_dir / ifstate.SPEC.name
        if records_pin.exists():
            fd = _libbpf.open_pinned(records_pin)
            try:
                attach.detach_all(
                    self._netns, Map(ifstate.SPEC, fd), self._pin_dir / attach.LINK_DIR
                )
            finally:
                _libbpf.close_fd(fd)
        if _netns.netns_exists(self._netns):
            _netns.delete_link(self._netns, self._tunnel)
        shutil.rmtree(self._pin_dir, ignore_errors=True)
        parent = self._pin_dir.parent
        if parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()

    # ------------------------------------------------------------ apply

    def _sync_routes(
        self, loaded: loader.Loaded, ir: DataplaneIR, changed: routewatch.Changed = None
    ) -> None:
        """``dp_route`` from the kernel's own routes to other nodes' pod CIDRs
        and addresses; ``changed``: only those inside these destinations
        (``None``: all of them)."""
        pods, nodes = nodestate.route_probes(ir), nodestate.node_probes(ir)
        if changed is not None:
            pods = nodestate.probes_within(pods, changed)
            nodes = nodestate.probes_within(nodes, changed)
            if not pods and not nodes:
                return
        links = _netns.links(self._netns)
        hosts = [links[n] for n in attach.host_interfaces(ir, links, self._tunnel)]
        addrs = [str(a) for a in (*pods.values(), *nodes.values())]
        found = _netns.routes_out(self._netns, addrs)
        out = {ipaddress.IPv4Address(a): r for a, r in found.items()}
        wanted = nodestate.host_routes(pods, out, hosts)
        wanted.update(nodestate.host_routes(nodes, out, hosts, nodes=True))
        within = None if changed is None else {*pods, *nodes}
        nodestate.sync_prefixes(loaded.map(route.SPEC), wanted, within)

    @staticmethod
    def _attach(
        loaded: loader.Loaded,
        attacher: attach.Attacher,
        want: Mapping[int, attach.Want],
        links: Mapping[str, int],
    ) -> None:
        """Attach what ``want`` says; around moves between TCX and clsact, with
        ``G_PASS_ON`` off (a failed move leaves it off until the next full sync)."""
        moving = attacher.moves(want)
        if moving:
            nodestate.set_pass_on(loaded.map(node.GLOBALS), False)
        attacher.reconcile(want, links)
        if moving:
            nodestate.set_pass_on(loaded.map(node.GLOBALS), True)

    def _routes_changed(self, changed: routewatch.Changed) -> None:
        """The route watch's callback: the ``dp_route`` entries of the last
        applied IR that ``changed`` may have moved, re-read."""
        with self._lock:
            if self._loaded is not None and self._ir is not None:
                try:
                    self._sync_routes(self._loaded, self._ir, changed)
                except OSError as exc:
                    raise BackendError(f"netlink: {exc}") from exc

    def apply(self, delta: IRDelta) -> None:
        with self._lock:
            self._apply(delta)

    def _apply(self, delta: IRDelta) -> None:
        loaded, svc, attacher, pol = self._require()
        ir = self._ir = delta.ir
        warnings: list[str] = []
        full = delta.full or not self._synced
        try:
            if full or delta.settings_changed:
                nodestate.sync_prefixes(
                    loaded.map(source_class.SPEC),
                    nodestate.class_values(nodestate.source_classes(ir)),
                )
                mtus = _netns.mtus(self._netns)
                mtu = nodestate.uplink_mtu(
                    mtus[n] for n in attach.host_interfaces(ir, mtus, self._tunnel)
                )
                nodestate.write_globals(
                    loaded.map(node.GLOBALS),
                    ir,
                    self._tunnel_ifindex,
                    mtu,
                    vxlan_port=self._vxlan_port,
                    bpf_tunnel=self._bpf_tunnel,
                )
            if full or delta.settings_changed or delta.remote_nodes_changed:
                pol.sync_failsafes(policy.failsafes(ir, self._vxlan_port))
                self._sync_routes(loaded, ir)
            if full or delta.remote_nodes_changed:
                # Remote backends carry their node's address: re-translate everything.
                svc.reconcile(
                    services.desired_frontends(ir.frontends.values(), ir.remote_nodes, warnings)
                )
            else:
                self._apply_frontends(svc, delta, ir, warnings)
            changed_sets = pol.upsert_sets(ir.ip_sets.values() if full else delta.ip_sets_upserted)
            everything = bool(
                full or delta.settings_changed or delta.hosts_upserted or delta.hosts_removed
            )
            if everything or delta.workloads_upserted or delta.workloads_removed:
                links = _netns.links(self._netns)
                nodestate.sync_workloads(
                    loaded.map(node.WORKLOADS), nodestate.workload_addresses(ir, links)
                )
                want = attach.wanted(ir, links, self._tunnel)
                # Policy before attachment: a new interface never runs without its programs.
                self._apply_policy(pol, delta, ir, links, want, everything)
                self._attach(loaded, attacher, want, links)
            pol.bump(changed_sets)
            pol.remove_sets(set(pol.set_ids) - set(ir.ip_sets) if full else delta.ip_sets_removed)
            if delta.full:
                self._expire_conntrack(loaded)
        except OSError as exc:
            raise BackendError(f"netlink: {exc}") from exc
        self._synced = True
        if full:
            self._warnings = tuple(dict.fromkeys(warnings))
        else:
            self._warnings = tuple(dict.fromkeys((*self._warnings, *warnings)))

    @staticmethod
    def _apply_policy(
        pol: policy.PolicyMaps,
        delta: IRDelta,
        ir: DataplaneIR,
        links: Mapping[str, int],
        want: Mapping[int, attach.Want],
        everything: bool,
    ) -> None:
        if everything:
            hosts = {i: w.name for i, w in want.items() if w.kind == ifstate.KIND_HOST}
            pol.sync_interfaces(policy.wanted(ir, links, hosts, pol.set_ids))
            return
        pol.update_interfaces(
            policy.wanted(ir, links, {}, pol.set_ids, workloads=delta.workloads_upserted)
        )
        names = {w.interface for w in ir.workloads.values()}
        pol.drop_workloads_except({n: i for n, i in links.items() if n in names})

    def _apply_frontends(
        self, svc: services.ServiceMaps, delta: IRDelta, ir: DataplaneIR, warnings: list[str]
    ) -> None:
        for address, proto, port in delta.frontends_removed:
            ident = services.ident_of(address, port, proto)
            if ident is not None:
                svc.remove(ident)
        for fe in delta.frontends_upserted:
            ident = services.ident_of(fe.address, fe.port, fe.protocol)
            spec = services.translate(fe, ir.remote_nodes, warnings)
            if ident is not None and spec is not None:
                svc.upsert(ident, spec)

    def _expire_conntrack(self, loaded: loader.Loaded) -> None:
        table = loaded.map(conntrack.SPEC)
        doomed = conntrack.expired_pairs(table.entries(), time.monotonic_ns(), self._timeouts)
        table.delete_many(doomed)
        if doomed:
            log.debug("expired %d conntrack entries", len(doomed))

    # ------------------------------------------------------------ reading

    def dump(self) -> Mapping[str, Any]:
        loaded, _, _, pol = self._require()
        return {
            "instance": self.config.instance_name,
            "pins": str(self._pin_dir),
            "tunnel": self._tunnel,
            "tunnel_mode": "bpf" if self._bpf_tunnel else "kernel",
            **dump_maps(loaded, time.monotonic_ns()),
            **dump_policy(loaded, pol),
        }

    def rule_hits(self) -> dict[str, int]:
        """Flows each policy rule decided (or logged), summed over interfaces and CPUs.

        Keyed by the rule (``"default/allow-web ingress[0]"``) or the tier or
        chain end that decided. Counts restart when a changed program is
        written (it moves to a new run of ``dp_rules``).
        """
        _, _, _, pol = self._require()
        out: dict[str, int] = {}
        for cur in pol.installed.values():
            for (base, length), program in zip(cur.runs, cur.wanted.programs, strict=True):
                for ins, hits in zip(program, pol.hits(base, length), strict=True):
                    out[ins.origin] = out.get(ins.origin, 0) + hits
        return out

    def warnings(self) -> tuple[str, ...]:
        return self._warnings

    def _require(
        self,
    ) -> tuple[loader.Loaded, services.ServiceMaps, attach.Attacher, policy.PolicyMaps]:
        if (
            self._loaded is None
            or self._services is None
            or self._attacher is None
            or self._policy is None
        ):
            raise BackendError("the ebpf backend is not started")
        return self._loaded, self._services, self._attacher, self._policy


def _kernel_has(symbol_prefix: str) -> bool:
    try:
        with open("/proc/kallsyms") as symbols:
            return any(f" {symbol_prefix}" in line for line in symbols)
    except OSError:
        return True  # cannot tell: let attaching say so
