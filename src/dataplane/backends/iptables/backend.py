"""IptablesBackend: the IR as iptables chains, IP sets and conntrack hygiene.

Sync: every IR object renders to a piece of the desired state (pure, see
``render_*``); an incremental delta re-renders only the pieces it names, a
full one re-renders everything and re-reads the kernel (unless ``start()`` has
just read it and nothing was written since). The restore plan
then writes only chains and sets whose wanted content differs from what is
installed, atomically per table. A failed write raises ``BackendError`` and
forgets what it believed installed, so the engine's ``apply(full=True)``
re-reads the kernel and converges from whatever is there.

Restart: ``start()`` reads back the chains and sets carrying this instance's
prefix; the first apply diffs against them, so an unchanged rule set is not
rewritten and established connections (conntrack) are never disturbed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Any, ClassVar

from dataplane.backends.base import Backend, Capabilities
from dataplane.backends.iptables import nft, readback, render_nft, restore
from dataplane.backends.iptables._exec import Runner, available
from dataplane.backends.iptables.conntrack import stale_filters
from dataplane.backends.iptables.flavour import FLAVOURS, Flavour, detect
from dataplane.backends.iptables.layout import (
    FilterNeeds,
    base_piece,
    filter_hooks_piece,
    health_check_piece,
    hook_rules,
    tree_piece,
)
from dataplane.backends.iptables.naming import Marks, Names, parse_mark_mask
from dataplane.backends.iptables.render_endpoints import dispatch_piece, host_piece, workload_piece
from dataplane.backends.iptables.render_ipsets import ipset_piece
from dataplane.backends.iptables.render_policy import PolicyNames
from dataplane.backends.iptables.render_services import (
    ServiceNames,
    filter_piece,
    frontend_piece,
    health_check_rules,
    supported,
    tree_entry,
)
from dataplane.backends.iptables.store import Piece, Store, merge
from dataplane.calc.ir import ALLOW_ALL, DataplaneIR, Frontend, FrontendKey, IRDelta
from dataplane.engine.config import DataplaneConfig
from dataplane.errors import BackendError, ConfigError
from dataplane.model import EndpointToHostAction

DEFAULT_MARK_MASK = 0x0F000000
NAT_MODES = ("iptables", "nftables")


def nat_mode(choice: object, nft_works: Callable[[], bool]) -> str:
    """The ``iptables_nat`` option: who NATs services. ``auto`` (the default) picks the
    nftables table where ``nft`` runs (tool installed, kernel with nf_tables): with
    iptables alone, one endpoint change at 10k services costs the kernel a
    re-validation of the whole nat table."""
    if choice == "auto":
        return "nftables" if nft_works() else "iptables"
    if choice not in NAT_MODES:
        raise ConfigError(f"iptables_nat must be auto, iptables or nftables, not {choice!r}")
    return str(choice)


class IptablesBackend(Backend):
    name: ClassVar[str] = "iptables"
    capabilities: ClassVar[Capabilities] = Capabilities(
        dsr=False,
        source_ip_preservation=False,
        ipv6=False,
        limitations=(
            "IPv4 only: IPv6 frontends, members and rules are skipped",
            "dispatch is a tree of chains: ~15-20 rules per new connection at 10k services",
        ),
    )

    def __init__(self, config: DataplaneConfig) -> None:
        super().__init__(config)
        try:
            mask = parse_mark_mask(config.option("iptables_mark_mask", DEFAULT_MARK_MASK))
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc
        self._nat_choice = config.option("iptables_nat", "auto")
        nat_mode(self._nat_choice, lambda: True)  # a bad value fails here, not at the first apply
        self._nat_resolved: str | None = None
        self._names = Names(config.instance_name)
        self._nft_table = self._names.prefix.rstrip("-")
        self._marks = Marks.from_mask(mask)
        self._sn = ServiceNames(self._names, self._marks)
        self._pn = PolicyNames(self._names, self._marks)
        self._runner = Runner(config.netns)
        self._flavour: Flavour | None = None
        self._store = Store()
        self._installed: readback.Installed | None = None
        self._just_read = False  # _installed was read from the kernel and nothing written since
        self._ir: DataplaneIR | None = None
        self._filtered: set[FrontendKey] = set()
        self._warnings: tuple[str, ...] = ()
        self._lock = threading.Lock()

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if not available("ipset"):
            return "the ipset binary is not installed"
        if not any(Flavour(name).installed for name in FLAVOURS):
            return "neither iptables-legacy-restore nor iptables-nft-restore is installed"
        return None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        with self._lock:
            self._installed = self._read(self._ensure_flavour())
            self._just_read = True

    def apply(self, delta: IRDelta) -> None:
        with self._lock:
            try:
                self._apply(delta)
            except BackendError:
                self._installed = None  # unknown now: the next (full) apply reads back
                raise

    def cleanup(self) -> None:
        """Remove own hooks, chains and sets from both flavours (whichever holds them)."""
        with self._lock:
            flavours = [Flavour(name) for name in FLAVOURS if Flavour(name).installed]
            for flavour in flavours:  # rules of both flavours first: they pin the sets
                installed = readback.read(self._runner, flavour.save, self._names.owns)
                plan = restore.removal(installed, sets=False, max_names=flavour.max_names)
                self._write(flavour, plan)
            self._runner.nft_delete_table(nft.FAMILY, self._nft_table)
            if flavours:
                installed = readback.read(self._runner, flavours[0].save, self._names.owns)
                self._write(flavours[0], restore.removal(installed, sets=True))
            self._store, self._installed, self._ir = Store(), None, None
            self._filtered = set()

    def warnings(self) -> tuple[str, ...]:
        return self._warnings

    # ------------------------------------------------------------------ sync

    @property
    def _nat(self) -> str:
        """Who NATs services, resolved once (``auto`` asks the namespace whether nft runs)."""
        if self._nat_resolved is None:
            self._nat_resolved = nat_mode(self._nat_choice, self._runner.nft_works)
        return self._nat_resolved

    def _ensure_flavour(self) -> Flavour:
        if self._flavour is None:
            override = self.config.option("iptables_flavour")
            self._flavour = detect(self._runner, self._names.prefix, override)
        return self._flavour

    def _read(self, flavour: Flavour) -> readback.Installed:
        """Own iptables chains, IP sets and (whatever the mode: a leftover goes) the nft table."""
        installed = readback.read(self._runner, flavour.save, self._names.owns)
        listing = self._runner.nft_list_table(nft.FAMILY, self._nft_table)
        if listing is not None:
            nft.parse_list(listing, installed)
        return installed

    def _apply(self, delta: IRDelta) -> None:
        flavour = self._ensure_flavour()
        # A full delta re-reads to catch drift, unless start() has just read the kernel
        # (the engine's first apply is full: at 10k services a read costs seconds).
        if self._installed is None or (delta.full and not self._just_read):
            self._installed = self._read(flavour)
        self._just_read = False
        installed = self._installed
        rebuild = delta.full or delta.settings_changed or self._ir is None
        if rebuild:
            self._store = self._render_all(delta.ir)
            self._store.take_dirty()
            chain_keys = set(self._store.chains) | set(installed.chains)
            set_names = set(self._store.sets) | set(installed.sets)
            set_names |= set(self._store.members) | set(installed.members)  # nft sets too
            wanted_hooks = hook_rules(self._names, nat=self._nat == "iptables")
            hooks = restore.hook_lines(wanted_hooks, installed.hooks)
        else:
            self._render_delta(delta)
            chain_keys, set_names = self._store.take_dirty()
            wanted_hooks, hooks = {k: r[0] for k, r in installed.hooks.items()}, {}
        plan = restore.plan(self._store, installed, chain_keys, set_names, hooks, flavour.max_names)
        nft_script = nft.script(self._store, installed, chain_keys, set_names, self._nft_table)
        self._write(flavour, plan, nft_script)
        restore.record(installed, self._store, chain_keys, set_names, wanted_hooks)
        old_ir, self._ir = self._ir, delta.ir
        if old_ir is not None:
            self._flush_conntrack(old_ir, delta, rebuild)

    def _write(self, flavour: Flavour, plan: restore.Plan, nft_script: str = "") -> None:
        """IP sets first (rules reference them), then the nft table (new NAT before the
        iptables nat hooks go, when switching modes), iptables, and set removals last."""
        self._runner.ipset_restore(plan.sets_before)
        if nft_script:
            self._runner.nft(nft_script)
        for payload in plan.restores:
            self._runner.restore(flavour.restore, payload)
        self._runner.ipset_restore(plan.sets_after, busy_wait=2.0)

    def _render_all(self, ir: DataplaneIR) -> Store:
        store = Store()
        nat = self._nat == "iptables"
        store.put(("base",), base_piece(self._names, self._marks, ir.settings, nat=nat))
        if not nat:
            store.put(("nft",), render_nft.skeleton_piece(self._marks, ir.settings.cluster_cidrs))
        self._filtered = set()
        warnings = []
        for fe in ir.frontends.values():
            if supported(fe):
                self._put_frontend(store, fe)
            else:
                warnings.append(f"frontend {fe.service} {fe.address} {fe.protocol.name}: skipped")
        self._warnings = tuple(warnings)
        self._put_trees(store, ir, nat=True)
        store.put(("hc",), health_check_piece(self._names, health_check_rules(ir.health_checks)))
        for ip_set in ir.ip_sets.values():
            store.put(("set", ip_set.id), ipset_piece(self._names, ip_set))
        for wp in ir.workloads.values():
            store.put(("wl", wp.key), workload_piece(wp, self._pn))
        for hp in ir.hosts.values():
            store.put(("host", hp.key), host_piece(hp, self._pn, ir.settings))
        self._put_dispatch(store, ir)
        return store

    def _render_delta(self, delta: IRDelta) -> None:
        store, ir = self._store, delta.ir
        filtered_before = set(self._filtered)
        keys_changed = bool(delta.frontends_removed)
        for key in delta.frontends_removed:
            store.drop(("fe", key))
            self._filtered.discard(key)
        for fe in delta.frontends_upserted:
            keys_changed |= ("fe", fe.key) not in store.pieces
            if supported(fe):
                self._put_frontend(store, fe)
            else:
                store.drop(("fe", fe.key))
        if keys_changed or self._filtered != filtered_before:
            self._put_trees(store, ir, nat=keys_changed)
        if bool(self._filtered) != bool(filtered_before) or delta.health_checks_changed:
            self._put_filter_hooks(store, ir)
        if delta.health_checks_changed:
            store.put(
                ("hc",), health_check_piece(self._names, health_check_rules(ir.health_checks))
            )
        for set_id in delta.ip_sets_removed:
            store.drop(("set", set_id))
        for ip_set in delta.ip_sets_upserted:
            store.put(("set", ip_set.id), ipset_piece(self._names, ip_set))
        for wl_key in delta.workloads_removed:
            store.drop(("wl", wl_key))
        for wp in delta.workloads_upserted:
            store.put(("wl", wp.key), workload_piece(wp, self._pn))
        for host_key in delta.hosts_removed:
            store.drop(("host", host_key))
        for hp in delta.hosts_upserted:
            store.put(("host", hp.key), host_piece(hp, self._pn, ir.settings))
        if (
            delta.workloads_removed
            or delta.workloads_upserted
            or delta.hosts_removed
            or delta.hosts_upserted
        ):
            self._put_dispatch(store, ir)

    def _frontend_piece(self, fe: Frontend) -> Piece:
        if self._nat == "iptables":
            return frontend_piece(fe, self._sn)
        return merge(render_nft.frontend_piece(fe, self._marks), filter_piece(fe, self._sn))

    def _put_frontend(self, store: Store, fe: Frontend) -> None:
        piece = self._frontend_piece(fe)
        store.put(("fe", fe.key), piece)
        if ("filter", self._sn.filter_chain(fe.key)) in piece.chains:
            self._filtered.add(fe.key)
        else:
            self._filtered.discard(fe.key)

    def _put_trees(self, store: Store, ir: DataplaneIR, *, nat: bool) -> None:
        if nat and self._nat == "iptables":
            entries = [
                tree_entry(key, self._sn.nat_chain(key))
                for key, fe in ir.frontends.items()
                if supported(fe)
            ]
            store.put(("tree", "nat"), tree_piece(self._names, "nat", entries))
        entries = [tree_entry(key, self._sn.filter_chain(key)) for key in self._filtered]
        store.put(("tree", "filter"), tree_piece(self._names, "filter", entries))

    def _put_dispatch(self, store: Store, ir: DataplaneIR) -> None:
        piece = dispatch_piece(ir.workloads.values(), ir.hosts.values(), self._names, ir.settings)
        store.put(("dispatch",), piece)
        self._put_filter_hooks(store, ir)

    def _put_filter_hooks(self, store: Store, ir: DataplaneIR) -> None:
        hosts = ir.hosts.values()
        needs = FilterNeeds(
            services=bool(self._filtered),
            health_checks=bool(ir.health_checks),
            workloads=bool(ir.workloads),
            host_ingress=bool(ir.hosts),
            host_egress=bool(ir.hosts),
            forward_ingress=any(h.forward_ingress != ALLOW_ALL for h in hosts),
            forward_egress=any(h.forward_egress != ALLOW_ALL for h in hosts),
            workload_to_host=bool(ir.workloads)
            or ir.settings.endpoint_to_host_action is not EndpointToHostAction.RETURN,
        )
        store.put(("hooks",), filter_hooks_piece(self._names, self._marks, ir.settings, needs))

    def _flush_conntrack(self, old: DataplaneIR, delta: IRDelta, everything: bool) -> None:
        new = delta.ir
        if everything:
            keys = set(old.frontends) | set(new.frontends)
        else:
            keys = {fe.key for fe in delta.frontends_upserted} | set(delta.frontends_removed)
        problems = []
        for key in sorted(keys, key=str):
            for args in stale_filters(old.frontends.get(key), new.frontends.get(key)):
                try:
                    self._runner.conntrack_delete(args)
                except BackendError as exc:
                    problems.append(f"conntrack cleanup for {key}: {exc}")
        self._warnings = tuple(w for w in self._warnings if "conntrack" not in w) + tuple(problems)

    # ------------------------------------------------------------------ dump

    def dump(self) -> Mapping[str, Any]:
        """Installed chains and sets grouped by the IR object that owns them."""
        with self._lock:
            services: dict[str, dict[str, list[str]]] = {}
            endpoints: dict[str, list[str]] = {}
            other: dict[str, list[str]] = {}
            ir = self._ir
            for key, piece in self._store.pieces.items():
                objects = [f"{t}/{c}" for t, c in piece.chains] + [s.name for s in piece.sets]
                group, ident = _group(key)
                if group == "fe" and ir is not None and ident in ir.frontends:
                    fe = ir.frontends[ident]  # type: ignore[index]
                    label = f"{fe.kind.value} {fe.address}:{fe.port}/{fe.protocol.name.lower()}"
                    services.setdefault(fe.service, {})[label] = objects
                elif group in ("wl", "host"):
                    endpoints[str(ident)] = objects
                else:
                    other[f"{group} {ident}".strip()] = objects
            installed = self._installed or readback.Installed()
            wanted = set(self._store.chains)
            out: dict[str, Any] = {
                "backend": self.name,
                "flavour": self._flavour.name if self._flavour else None,
                "prefix": self._names.prefix,
                "services": services,
                "endpoints": endpoints,
                "fixed": other,
                "ip_sets": {n: len(installed.members.get(n, ())) for n in sorted(installed.sets)},
                "adopted_not_wanted": sorted(f"{t}/{c}" for t, c in set(installed.chains) - wanted),
                "rules": sum(len(r) for r in installed.chains.values()),
            }
            if self._flavour is not None and self._flavour.name == "legacy":
                out["libiptc"] = self._runner.iptc_chain_counts(
                    self._names.prefix, ("filter", "nat", "mangle", "raw")
                )
            return out


def _group(key: Hashable) -> tuple[str, object]:
    if isinstance(key, tuple) and key:
        return str(key[0]), (key[1] if len(key) > 1 else "")
    return str(key), ""
