"""The incremental compiler: desired state → IR, and what changed.

Felix's rule, kept here: a cheap update path that only recomputes what a
change touches, and a from-scratch path that must give the same answer
(property tests compare them). Dependencies it tracks:

* a Service or its EndpointSet → that service's frontends;
* a Node or NodeSettings → everything (addresses, CIDRs and modes feed all);
* a workload/host endpoint → its IP-set memberships, and its own program if local;
* a Namespace, Policy, Profile or Tier → the programs of local endpoints.

The IR's mappings are read-only views of the compiler's tables: valid until
the next update, never to be kept by a backend across calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import TypeVar

from dataplane.calc.context import CalcContext, remote_nodes
from dataplane.calc.ipsets import IpSetIndex, namespace_labels
from dataplane.calc.ir import (
    DataplaneIR,
    Frontend,
    FrontendKey,
    HealthCheck,
    HostProgram,
    IpSet,
    IRDelta,
    WorkloadProgram,
)
from dataplane.calc.policy import PolicyWorld, SetUse, host_program, workload_program
from dataplane.calc.services import health_check, service_frontends
from dataplane.model import (
    DesiredState,
    EndpointSet,
    HostEndpoint,
    Namespace,
    ObjectKey,
    Policy,
    Profile,
    Service,
    Tier,
    WorkloadEndpoint,
)

_GLOBAL_KINDS = frozenset({"Node", "NodeSettings"})
_POLICY_KINDS = frozenset({"Policy", "Profile", "Tier", "Namespace"})


class Compiler:
    """Compiles one node's desired state; keeps what it needs to update cheaply."""

    def __init__(self, node: str, *, preserve_source: bool) -> None:
        self.node = node
        self.preserve_source = preserve_source
        self._reset(DesiredState())

    # ------------------------------------------------------------ public
    def compile(self, state: DesiredState) -> IRDelta:
        """From scratch; the delta is ``full`` and lists everything."""
        self._reset(state)
        self._compile_services(self._service_keys(state))
        for obj in state:
            if isinstance(obj, WorkloadEndpoint | HostEndpoint):
                self._index.set_endpoint(obj.key, obj)
        for ns in state.of_kind(Namespace):
            self._index.set_namespace(ns, ns.name)
        self._world = self._build_world(state)
        self._compile_programs(self._local_endpoint_keys(state))
        self._refresh_sets()
        ir = self.ir
        return IRDelta(
            ir=ir,
            full=True,
            settings_changed=True,
            frontends_upserted=tuple(ir.frontends.values()),
            health_checks_changed=True,
            ip_sets_upserted=tuple(ir.ip_sets.values()),
            workloads_upserted=tuple(ir.workloads.values()),
            hosts_upserted=tuple(ir.hosts.values()),
            remote_nodes_changed=True,
        )

    def update(self, state: DesiredState, changed: Iterable[ObjectKey]) -> IRDelta:
        """Move to ``state``, given the keys that differ from the previous one."""
        changed = set(changed)
        kinds = {k.kind for k in changed}
        if kinds & _GLOBAL_KINDS:
            return self._global_update(state)
        old_health = dict(self._health)
        self._state = state
        svc_keys = {
            ObjectKey("Service", k.namespace, k.name)
            for k in changed
            if k.kind in ("Service", "EndpointSet")
        }
        old_frontends = {
            fk: self._frontends[fk] for key in svc_keys for fk in self._by_service.get(key, ())
        }
        self._compile_services(svc_keys)
        touched = set(old_frontends) | {
            fk for key in svc_keys for fk in self._by_service.get(key, ())
        }
        for key in changed:
            obj = state.get(key)
            if key.kind in ("WorkloadEndpoint", "HostEndpoint"):
                assert obj is None or isinstance(obj, WorkloadEndpoint | HostEndpoint)
                self._index.set_endpoint(key, obj)
            elif key.kind == "Namespace":
                assert obj is None or isinstance(obj, Namespace)
                self._index.set_namespace(obj, key.name)
        if kinds & _POLICY_KINDS:
            self._world = self._build_world(state)
            programs = self._local_endpoint_keys(state) | set(self._workloads) | set(self._hosts)
        else:
            programs = {k for k in changed if k.kind in ("WorkloadEndpoint", "HostEndpoint")}
        old_workloads = {k: self._workloads[k] for k in programs if k in self._workloads}
        old_hosts = {k: self._hosts[k] for k in programs if k in self._hosts}
        self._compile_programs(programs)
        touches_sets = bool(programs) or bool(
            kinds & {"WorkloadEndpoint", "HostEndpoint", "Namespace"}
        )
        sets_up, sets_rm = self._refresh_sets() if touches_sets else ([], [])
        fe_up = tuple(
            self._frontends[fk]
            for fk in touched
            if fk in self._frontends and old_frontends.get(fk) != self._frontends[fk]
        )
        fe_rm = tuple(fk for fk in touched if fk not in self._frontends)
        wl_up, wl_rm = _changed(old_workloads, self._programs_of(programs, self._workloads))
        h_up, h_rm = _changed(old_hosts, self._programs_of(programs, self._hosts))
        return IRDelta(
            ir=self.ir,
            frontends_upserted=fe_up,
            frontends_removed=fe_rm,
            health_checks_changed=old_health != self._health,
            ip_sets_upserted=tuple(sets_up),
            ip_sets_removed=tuple(sets_rm),
            workloads_upserted=wl_up,
            workloads_removed=wl_rm,
            hosts_upserted=h_up,
            hosts_removed=h_rm,
        )

    @staticmethod
    def _programs_of(keys: set[ObjectKey], table: dict[ObjectKey, V]) -> dict[ObjectKey, V]:
        return {k: table[k] for k in keys if k in table}

    @property
    def ir(self) -> DataplaneIR:
        return DataplaneIR(
            settings=self._ctx.ir_settings(),
            frontends=MappingProxyType(self._frontends),
            health_checks=MappingProxyType(self._health),
            ip_sets=MappingProxyType(self._ip_sets),
            workloads=MappingProxyType(self._workloads),
            hosts=MappingProxyType(self._hosts),
            remote_nodes=MappingProxyType(self._remote),
        )

    # ------------------------------------------------------------ internals
    def _reset(self, state: DesiredState) -> None:
        self._state = state
        self._ctx = CalcContext.from_state(state, self.node, preserve_source=self.preserve_source)
        self._remote = remote_nodes(state, self.node)
        self._frontends: dict[FrontendKey, Frontend] = {}
        self._by_service: dict[ObjectKey, tuple[FrontendKey, ...]] = {}
        self._health: dict[int, HealthCheck] = {}
        self._index = IpSetIndex()
        self._world = PolicyWorld.build((), (), ())
        self._workloads: dict[ObjectKey, WorkloadProgram] = {}
        self._hosts: dict[ObjectKey, HostProgram] = {}
        self._uses: dict[ObjectKey, SetUse] = {}
        self._ip_sets: dict[str, IpSet] = {}

    def _global_update(self, state: DesiredState) -> IRDelta:
        old = self.ir
        old_frontends, old_workloads = dict(old.frontends), dict(old.workloads)
        old_hosts, old_sets = dict(old.hosts), dict(old.ip_sets)
        delta = self.compile(state)
        new = delta.ir
        fe_up, fe_rm = _changed(old_frontends, dict(new.frontends))
        set_up, set_rm = _changed(old_sets, dict(new.ip_sets))
        wl_up, wl_rm = _changed(old_workloads, dict(new.workloads))
        h_up, h_rm = _changed(old_hosts, dict(new.hosts))
        return IRDelta(
            ir=new,
            settings_changed=True,
            frontends_upserted=fe_up,
            frontends_removed=fe_rm,
            health_checks_changed=True,
            ip_sets_upserted=set_up,
            ip_sets_removed=set_rm,
            workloads_upserted=wl_up,
            workloads_removed=wl_rm,
            hosts_upserted=h_up,
            hosts_removed=h_rm,
            remote_nodes_changed=True,
        )

    @staticmethod
    def _service_keys(state: DesiredState) -> set[ObjectKey]:
        return {s.key for s in state.of_kind(Service)}

    def _local_endpoint_keys(self, state: DesiredState) -> set[ObjectKey]:
        return {
            o.key
            for o in state
            if isinstance(o, WorkloadEndpoint | HostEndpoint) and o.node == self.node
        }

    @staticmethod
    def _build_world(state: DesiredState) -> PolicyWorld:
        return PolicyWorld.build(state.of_kind(Tier), state.of_kind(Policy), state.of_kind(Profile))

    def _compile_services(self, keys: Iterable[ObjectKey]) -> None:
        for key in keys:
            for fk in self._by_service.pop(key, ()):
                self._frontends.pop(fk, None)
            self._health = {
                p: h for p, h in self._health.items() if h.service != f"{key.namespace}/{key.name}"
            }
            svc = self._state.get(key)
            if not isinstance(svc, Service):
                continue
            eps = self._state.get(ObjectKey("EndpointSet", key.namespace, key.name))
            assert eps is None or isinstance(eps, EndpointSet)
            fks = []
            for fe in service_frontends(svc, eps, self._ctx):
                self._frontends[fe.key] = fe
                fks.append(fe.key)
            self._by_service[key] = tuple(fks)
            hc = health_check(svc, eps, self.node)
            if hc is not None:
                self._health[hc.port] = hc

    def _ns_labels(self, namespace: str) -> dict[str, str]:
        ns = self._state.get(ObjectKey("Namespace", "", namespace))
        if isinstance(ns, Namespace):
            return namespace_labels(ns)
        return {"projectcalico.org/name": namespace, "kubernetes.io/metadata.name": namespace}

    def _compile_programs(self, keys: Iterable[ObjectKey]) -> None:
        for key in keys:
            obj = self._state.get(key)
            self._workloads.pop(key, None)
            self._hosts.pop(key, None)
            self._uses.pop(key, None)
            if not isinstance(obj, WorkloadEndpoint | HostEndpoint) or obj.node != self.node:
                continue
            use = SetUse()
            if isinstance(obj, WorkloadEndpoint):
                ns_labels = self._ns_labels(obj.namespace)
                self._workloads[key] = workload_program(self._world, obj, ns_labels, use)
            else:
                self._hosts[key] = host_program(self._world, obj, use)
            self._uses[key] = use

    def _refresh_sets(self) -> tuple[list[IpSet], list[str]]:
        total = SetUse()
        for use in self._uses.values():
            total.merge(use)
        self._index.use(total.peers, total.named)
        self._index.retain(total.peers, total.named)
        dirty = self._index.take_dirty()
        upserted: list[IpSet] = []
        removed: list[str] = []
        wanted = set(total.nets) | {p.set_id for p in total.peers} | {n.set_id for n in total.named}
        for set_id in [s for s in self._ip_sets if s not in wanted]:
            del self._ip_sets[set_id]
            removed.append(set_id)
        for set_id, nets in total.nets.items():
            if set_id not in self._ip_sets:
                self._ip_sets[set_id] = nets
                upserted.append(nets)
        for set_id in dirty | (wanted - set(self._ip_sets)):
            found = self._index.get(set_id)
            if found is not None and self._ip_sets.get(set_id) != found:
                self._ip_sets[set_id] = found
                upserted.append(found)
        return upserted, removed


K = TypeVar("K")
V = TypeVar("V")


def _changed(old: dict[K, V], new: dict[K, V]) -> tuple[tuple[V, ...], tuple[K, ...]]:
    ups = tuple(v for k, v in new.items() if old.get(k) != v)
    return ups, tuple(k for k in old if k not in new)
