"""IR frontends → ``dp_fe`` / ``dp_be`` / ``dp_srcrange`` entries, kept in sync.

Translation (:func:`translate`) is pure: it only copies what calc decided
(routes per source class, if-empty action, affinity, source ranges) into
map-shaped values. :class:`ServiceMaps` then writes the difference between
what is installed and what is wanted:

* what is installed is read back from the pinned maps at start, so a
  restarted agent adopts the previous run's ids and rewrites nothing that is
  still right (no churn, no lost affinity);
* a changed backend list gets a fresh route id: backends first, then the
  frontend entry flips in one update, then the old list goes, so a new flow
  never sees a half-written list; flag-only changes keep the route id;
* ``reconcile`` (full resync) first compares the maps, raw and in batches,
  with a shadow of what this process wrote (the datapath never writes
  them); only if they differ (someone else changed them) does it re-read and
  re-adopt them entry by entry, deleting entries nothing refers to.
"""

from __future__ import annotations

import heapq
import ipaddress
from collections.abc import Iterable, Mapping

import attrs

from dataplane.backends.ebpf.maps import backend as be_map
from dataplane.backends.ebpf.maps import frontend as fe_map
from dataplane.backends.ebpf.maps import source_range
from dataplane.backends.ebpf.maps._map import Map, pack_addr, unpack_addr
from dataplane.calc.ir import Frontend, NoEndpoints, RemoteNode, Route, SourceClass
from dataplane.errors import BackendError

IPv4 = ipaddress.IPv4Address
FeIdent = tuple[int, int, int]
"""(packed address, port, protocol): a frontend as the maps key it."""

_CLASSES = ((fe_map.CLASS_POD, SourceClass.POD), (fe_map.CLASS_HOST, SourceClass.HOST))


@attrs.frozen
class BackendSpec:
    addr: IPv4
    port: int
    node_addr: IPv4 | None = None  # set for backends on another node

    def value(self) -> be_map.BackendValue:
        remote = self.node_addr is not None
        return be_map.BackendValue(
            pack_addr(self.addr),
            pack_addr(self.node_addr) if self.node_addr is not None else 0,
            self.port,
            be_map.F_REMOTE if remote else 0,
        )

    @classmethod
    def of(cls, v: be_map.BackendValue) -> BackendSpec:
        node = unpack_addr(v.node_addr) if v.flags & be_map.F_REMOTE else None
        return cls(unpack_addr(v.addr), v.port, node)


@attrs.frozen
class RouteSpec:
    flags: int
    affinity_timeout: int
    backends: tuple[BackendSpec, ...]


@attrs.frozen
class FrontendSpec:
    """One frontend, map-shaped: a route per source class (ANY always) and source ranges."""

    routes: tuple[tuple[int, RouteSpec], ...]
    source_ranges: frozenset[ipaddress.IPv4Network] = frozenset()


def ident_of(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int, proto: int
) -> FeIdent | None:
    return (pack_addr(address), port, int(proto)) if address.version == 4 else None


def translate(
    fe: Frontend, nodes: Mapping[str, RemoteNode], warnings: list[str]
) -> FrontendSpec | None:
    """The map form of ``fe``; None (with a warning) for what this backend cannot hold."""
    if fe.address.version != 4:
        warnings.append(f"{fe.service} {fe.address}: IPv6 frontends are not supported")
        return None
    try:
        default = fe.route_for(frozenset())
    except LookupError as exc:
        raise BackendError(f"IR frontend {fe.service} {fe.key} has no ANY route") from exc
    ranges = frozenset(n for n in fe.source_ranges if isinstance(n, ipaddress.IPv4Network))
    default_spec = _route(fe, default, ranges, nodes, warnings)
    routes = [(fe_map.CLASS_ANY, default_spec)]
    for cls, source in _CLASSES:
        route = fe.route_for(frozenset({source}))
        if route != default:
            # Routes that differ only in what this backend ignores (masquerade) share ANY.
            rspec = _route(fe, route, ranges, nodes, warnings)
            if rspec != default_spec:
                routes.append((cls, rspec))
    if len(routes) > 1:
        by_class = attrs.evolve(default_spec, flags=default_spec.flags | fe_map.F_BY_CLASS)
        routes[0] = (fe_map.CLASS_ANY, by_class)
    return FrontendSpec(tuple(routes), ranges)


def _route(
    fe: Frontend,
    route: Route,
    ranges: frozenset[ipaddress.IPv4Network],
    nodes: Mapping[str, RemoteNode],
    warnings: list[str],
) -> RouteSpec:
    flags = 0
    if fe.affinity_timeout:
        flags |= fe_map.F_AFFINITY
    if ranges:
        flags |= fe_map.F_SRC_RANGES
    if route.if_empty is NoEndpoints.DROP:
        flags |= fe_map.F_DROP_IF_EMPTY
    if fe.hairpin_masquerade:
        flags |= fe_map.F_HAIRPIN
    backends = []
    for b in route.backends:
        if not isinstance(b.address, IPv4):
            continue
        node_addr = None
        if not b.local:
            node_addr = _node_address(b.node, nodes)
            if node_addr is None:
                warnings.append(
                    f"{fe.service}: no IPv4 address for node {b.node!r} of backend "
                    f"{b.address}; external traffic to it cannot be tunnelled"
                )
                node_addr = IPv4(0)
        backends.append(BackendSpec(b.address, b.port, node_addr))
    return RouteSpec(flags, fe.affinity_timeout or 0, tuple(backends))


def _node_address(node: str | None, nodes: Mapping[str, RemoteNode]) -> IPv4 | None:
    remote = nodes.get(node or "")
    if remote is None:
        return None
    return next((a for a in remote.addresses if isinstance(a, IPv4)), None)


class IdPool:
    """Small integer ids, lowest free first, starting at 1 (0 means "none")."""

    def __init__(self) -> None:
        self._used: set[int] = set()
        self._free: list[int] = []
        self._next = 1

    def mark(self, ident: int) -> None:
        self._used.add(ident)
        self._next = max(self._next, ident + 1)

    def take(self) -> int:
        while self._free:
            ident = heapq.heappop(self._free)
            if ident not in self._used:
                self._used.add(ident)
                return ident
        ident = self._next
        self._next += 1
        self._used.add(ident)
        return ident

    def release(self, ident: int) -> None:
        if ident in self._used:
            self._used.discard(ident)
            heapq.heappush(self._free, ident)


@attrs.define
class _Route:
    route_id: int
    spec: RouteSpec | None  # None: the backend list read back was incomplete
    fe_id: int
    slots: int  # backend indices to delete when the route goes


@attrs.define
class _Installed:
    fe_id: int
    routes: dict[int, _Route] = attrs.field(factory=dict)
    source_ranges: set[ipaddress.IPv4Network] = attrs.field(factory=set)


class ServiceMaps:
    """The service maps of one instance and what this process knows is in them."""

    def __init__(
        self,
        frontends: Map[fe_map.FrontendKey, fe_map.FrontendValue],
        backends: Map[be_map.BackendKey, be_map.BackendValue],
        ranges: Map[source_range.SourceRangeKey, source_range.SourceRangeValue],
    ) -> None:
        self._fe = frontends
        self._be = backends
        self._ranges = ranges
        self._installed: dict[FeIdent, _Installed] = {}
        self._route_ids = IdPool()
        self._fe_ids = IdPool()
        # Raw key → value bytes this process knows dp_fe / dp_be hold.
        self._shadow_fe: dict[bytes, bytes] = {}
        self._shadow_be: dict[bytes, bytes] = {}

    @property
    def installed(self) -> Mapping[FeIdent, _Installed]:
        return self._installed

    def load(self) -> None:
        """Adopt what the maps hold; delete backends and ranges nothing refers to."""
        lists: dict[int, dict[int, be_map.BackendValue]] = {}
        for bkey, bval in self._be.entries():
            lists.setdefault(bkey.route_id, {})[bkey.index] = bval
        self._installed = {}
        self._route_ids = IdPool()
        self._fe_ids = IdPool()
        for key, val in self._fe.entries():
            inst = self._installed.setdefault(
                (key.addr, key.port, key.proto), _Installed(val.fe_id)
            )
            found = lists.get(val.route_id, {})
            spec = None
            if all(i in found for i in range(val.count)):
                specs = tuple(BackendSpec.of(found[i]) for i in range(val.count))
                spec = RouteSpec(val.flags, val.affinity_timeout, specs)
            slots = max(found, default=-1) + 1
            inst.routes[key.src_class] = _Route(val.route_id, spec, val.fe_id, slots)
            self._route_ids.mark(val.route_id)
            self._fe_ids.mark(inst.fe_id)
        by_fe_id = {inst.fe_id: inst for inst in self._installed.values()}
        for rkey in self._ranges.all_keys():
            owner = by_fe_id.get(rkey.fe_id)
            if owner is None:
                self._ranges.delete(rkey)
            else:
                owner.source_ranges.add(source_range.network_of(rkey))
        referenced = {r.route_id for i in self._installed.values() for r in i.routes.values()}
        for route_id, found in lists.items():
            if route_id not in referenced:
                self._be.delete_many(be_map.BackendKey(route_id, i) for i in found)
        self._shadow_fe = self._fe.raw_entries()
        self._shadow_be = self._be.raw_entries()

    def in_sync(self) -> bool:
        """Whether the maps hold exactly what this process wrote (two batch reads)."""
        ranges = {
            bytes(source_range.make_key(inst.fe_id, net))
            for inst in self._installed.values()
            for net in inst.source_ranges
        }
        return (
            self._fe.raw_entries() == self._shadow_fe
            and self._be.raw_entries() == self._shadow_be
            and {bytes(k) for k in self._ranges.all_keys()} == ranges
        )

    def upsert(self, ident: FeIdent, spec: FrontendSpec) -> None:
        inst = self._installed.get(ident)
        if inst is None:
            inst = self._installed[ident] = _Installed(self._fe_ids.take())
        for net in spec.source_ranges - inst.source_ranges:
            self._ranges.update(
                source_range.make_key(inst.fe_id, net), source_range.SourceRangeValue(1)
            )
            inst.source_ranges.add(net)
        wanted = dict(spec.routes)
        for cls, rspec in wanted.items():
            self._set_route(ident, inst, cls, rspec)
        for cls in sorted(set(inst.routes) - set(wanted), reverse=True):
            self._drop_route(ident, inst, cls)
        for net in inst.source_ranges - spec.source_ranges:
            self._ranges.delete(source_range.make_key(inst.fe_id, net))
            inst.source_ranges.discard(net)

    def remove(self, ident: FeIdent) -> None:
        inst = self._installed.get(ident)
        if inst is None:
            return
        for cls in sorted(inst.routes, reverse=True):  # class-specific entries before ANY
            self._drop_route(ident, inst, cls)
        for net in inst.source_ranges:
            self._ranges.delete(source_range.make_key(inst.fe_id, net))
        self._fe_ids.release(inst.fe_id)
        del self._installed[ident]

    def reconcile(self, desired: Mapping[FeIdent, FrontendSpec]) -> None:
        """Full resync: make the maps hold exactly ``desired`` (re-read them if they drifted)."""
        if not self.in_sync():
            self.load()
        for ident in [i for i in self._installed if i not in desired]:
            self.remove(ident)
        for ident, spec in desired.items():
            self.upsert(ident, spec)

    def _set_route(self, ident: FeIdent, inst: _Installed, cls: int, spec: RouteSpec) -> None:
        cur = inst.routes.get(cls)
        if cur is not None and cur.spec == spec and cur.fe_id == inst.fe_id:
            return
        reuse = cur is not None and cur.spec is not None and cur.spec.backends == spec.backends
        if reuse:
            assert cur is not None
            route_id = cur.route_id
        else:
            route_id = self._route_ids.take()
            pairs = [
                (be_map.BackendKey(route_id, i), b.value()) for i, b in enumerate(spec.backends)
            ]
            self._be.update_many(pairs)
            self._shadow_be.update((bytes(k), bytes(v)) for k, v in pairs)
        value = fe_map.FrontendValue(
            route_id, inst.fe_id, len(spec.backends), spec.affinity_timeout, spec.flags
        )
        key = _key(ident, cls)
        self._fe.update(key, value)
        self._shadow_fe[bytes(key)] = bytes(value)
        if cur is not None and not reuse:
            self._free_route(cur)
        inst.routes[cls] = _Route(route_id, spec, inst.fe_id, len(spec.backends))

    def _drop_route(self, ident: FeIdent, inst: _Installed, cls: int) -> None:
        key = _key(ident, cls)
        self._fe.delete(key)
        self._shadow_fe.pop(bytes(key), None)
        self._free_route(inst.routes.pop(cls))

    def _free_route(self, route: _Route) -> None:
        keys = [be_map.BackendKey(route.route_id, i) for i in range(route.slots)]
        self._be.delete_many(keys)
        for k in keys:
            self._shadow_be.pop(bytes(k), None)
        self._route_ids.release(route.route_id)


def _key(ident: FeIdent, cls: int) -> fe_map.FrontendKey:
    addr, port, proto = ident
    return fe_map.FrontendKey(addr, port, proto, cls)


def desired_frontends(
    frontends: Iterable[Frontend], nodes: Mapping[str, RemoteNode], warnings: list[str]
) -> dict[FeIdent, FrontendSpec]:
    out = {}
    for fe in frontends:
        ident = ident_of(fe.address, fe.port, fe.protocol)
        spec = translate(fe, nodes, warnings)
        if ident is not None and spec is not None:
            out[ident] = spec
    return out
