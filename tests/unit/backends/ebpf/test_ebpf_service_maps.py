"""IR frontends → map entries: translation, incremental updates, adoption, full resync.

The maps are in-memory stand-ins with the typed ``Map`` interface, so this
runs without root; the kernel tests drive the same code against real maps.
"""

from __future__ import annotations

import ctypes
import ipaddress
from typing import Any

import pytest

from dataplane.backends.ebpf import services
from dataplane.backends.ebpf.maps import backend as be_map
from dataplane.backends.ebpf.maps import frontend as fe_map
from dataplane.backends.ebpf.maps import source_range
from dataplane.backends.ebpf.maps._map import MapSpec, pack_addr
from dataplane.calc import ir
from dataplane.errors import BackendError
from dataplane.model import Protocol

IP = ipaddress.ip_address
NODES = {"node-1": ir.RemoteNode("node-1", (IP("10.99.0.12"),), ())}


class MemMap:
    """A dict keyed by the raw bytes of ctypes keys, with Map's methods."""

    def __init__(self, spec: MapSpec[Any, Any]) -> None:
        self.spec = spec
        self.data: dict[bytes, bytes] = {}
        self.writes = 0
        self.raw_reads = 0
        self.entry_reads = 0

    def _k(self, key: ctypes.Structure) -> bytes:
        return bytes(key)

    def lookup(self, key: Any) -> Any:
        raw = self.data.get(self._k(key))
        return None if raw is None else self.spec.value.from_buffer_copy(raw)

    def update(self, key: Any, value: Any, flags: int = 0) -> None:
        self.writes += 1
        self.data[self._k(key)] = bytes(value)

    def delete(self, key: Any) -> bool:
        return self.data.pop(self._k(key), None) is not None

    def all_keys(self) -> list[Any]:
        return [self.spec.key.from_buffer_copy(k) for k in self.data]

    def entries(self) -> list[tuple[Any, Any]]:
        self.entry_reads += 1
        return [
            (self.spec.key.from_buffer_copy(k), self.spec.value.from_buffer_copy(v))
            for k, v in self.data.items()
        ]

    def raw_entries(self) -> dict[bytes, bytes]:
        self.raw_reads += 1
        return dict(self.data)

    def update_many(self, pairs: Any) -> None:
        for k, v in pairs:
            self.update(k, v)

    def delete_many(self, keys: Any) -> None:
        for k in keys:
            self.delete(k)


def fresh() -> tuple[services.ServiceMaps, MemMap, MemMap, MemMap]:
    fe, be, sr = MemMap(fe_map.SPEC), MemMap(be_map.SPEC), MemMap(source_range.SPEC)
    return services.ServiceMaps(fe, be, sr), fe, be, sr  # type: ignore[arg-type]


def b(addr: str, local: bool = True) -> ir.Backend:
    return ir.Backend(IP(addr), 8080, "node-0" if local else "node-1", local)


def frontend(*routes: ir.Route, **kw: Any) -> ir.Frontend:
    return ir.Frontend(
        IP("10.96.0.10"), Protocol.TCP, 80, ir.FrontendKind.CLUSTER_IP, "default/web", routes, **kw
    )


def spec(fe: ir.Frontend) -> services.FrontendSpec:
    warnings: list[str] = []
    out = services.translate(fe, NODES, warnings)
    assert out is not None and not warnings
    return out


IDENT = (pack_addr("10.96.0.10"), 80, 6)


def test_class_entries_only_where_the_route_differs() -> None:
    same = frontend(
        ir.Route(ir.SourceClass.POD, (b("10.100.0.2"),), False),
        ir.Route(ir.SourceClass.ANY, (b("10.100.0.2"),), True),
    )
    assert [c for c, _ in spec(same).routes] == [fe_map.CLASS_ANY]
    assert not spec(same).routes[0][1].flags & fe_map.F_BY_CLASS  # no class lookups
    local = frontend(
        ir.Route(ir.SourceClass.POD, (b("10.100.0.2"), b("10.100.1.2", False)), False),
        ir.Route(ir.SourceClass.ANY, (b("10.100.0.2"),), False, ir.NoEndpoints.DROP),
    )
    routes = dict(spec(local).routes)
    assert set(routes) == {fe_map.CLASS_ANY, fe_map.CLASS_POD}  # HOST falls to ANY
    assert routes[fe_map.CLASS_ANY].flags & fe_map.F_DROP_IF_EMPTY
    assert routes[fe_map.CLASS_ANY].flags & fe_map.F_BY_CLASS  # the datapath looks for POD
    assert not routes[fe_map.CLASS_POD].flags & fe_map.F_BY_CLASS
    assert routes[fe_map.CLASS_POD].backends[1].node_addr == IP("10.99.0.12")


def test_flags_from_the_frontend() -> None:
    fe = frontend(
        ir.Route(ir.SourceClass.ANY, (), False),
        affinity_timeout=30,
        source_ranges=(ipaddress.ip_network("10.0.0.0/8"),),
        hairpin_masquerade=False,
    )
    route = dict(spec(fe).routes)[fe_map.CLASS_ANY]
    assert route.flags == fe_map.F_AFFINITY | fe_map.F_SRC_RANGES
    assert route.affinity_timeout == 30


def test_ipv6_is_skipped_with_a_warning_and_no_any_route_is_an_error() -> None:
    v6 = ir.Frontend(IP("fd00::1"), Protocol.TCP, 80, ir.FrontendKind.CLUSTER_IP, "x", ())
    warnings: list[str] = []
    assert services.translate(v6, NODES, warnings) is None and warnings
    with pytest.raises(BackendError, match="no ANY route"):
        services.translate(frontend(ir.Route(ir.SourceClass.POD, (), False)), NODES, [])


def test_backend_change_flips_to_a_new_route_and_frees_the_old() -> None:
    svc, fe, be, _ = fresh()
    svc.upsert(IDENT, spec(frontend(ir.Route(ir.SourceClass.ANY, (b("10.100.0.2"),), False))))
    [(_, first)] = fe.entries()
    svc.upsert(
        IDENT,
        spec(frontend(ir.Route(ir.SourceClass.ANY, (b("10.100.0.2"), b("10.100.0.3")), False))),
    )
    [(_, second)] = fe.entries()
    assert second.route_id != first.route_id and second.count == 2
    assert {k.route_id for k in be.all_keys()} == {second.route_id}


def test_flag_only_change_keeps_the_route() -> None:
    svc, fe, be, _ = fresh()
    route = ir.Route(ir.SourceClass.ANY, (b("10.100.0.2"),), False)
    svc.upsert(IDENT, spec(frontend(route)))
    writes = be.writes
    svc.upsert(IDENT, spec(frontend(route, affinity_timeout=10)))
    [(_, value)] = fe.entries()
    assert value.flags & fe_map.F_AFFINITY and be.writes == writes


def test_unchanged_frontend_is_not_rewritten_and_remove_clears_all() -> None:
    svc, fe, be, sr = fresh()
    fe_spec = spec(
        frontend(
            ir.Route(ir.SourceClass.ANY, (b("10.100.0.2"),), False),
            source_ranges=(ipaddress.ip_network("10.99.0.0/24"),),
        )
    )
    svc.upsert(IDENT, fe_spec)
    writes = (fe.writes, be.writes, sr.writes)
    svc.upsert(IDENT, fe_spec)
    assert (fe.writes, be.writes, sr.writes) == writes
    svc.remove(IDENT)
    assert not fe.data and not be.data and not sr.data


def test_restart_adopts_ids_and_full_resync_removes_strays() -> None:
    svc, fe, be, sr = fresh()
    fe_spec = spec(frontend(ir.Route(ir.SourceClass.ANY, (b("10.100.0.2"),), False)))
    svc.upsert(IDENT, fe_spec)
    be.update(be_map.BackendKey(99, 0), be_map.BackendValue(1, 0, 1, 0))  # a stray list
    adopted = services.ServiceMaps(fe, be, sr)  # type: ignore[arg-type]
    writes = fe.writes
    adopted.reconcile({IDENT: fe_spec})
    assert fe.writes == writes  # nothing rewritten
    assert {k.route_id for k in be.all_keys()} == {1}
    adopted.reconcile({})
    assert not fe.data and not be.data


def test_full_resync_trusts_its_shadow_until_the_maps_drift() -> None:
    """An in-sync resync costs two batch reads; a foreign change makes it re-adopt."""
    svc, fe, be, _ = fresh()
    fe_spec = spec(frontend(ir.Route(ir.SourceClass.ANY, (b("10.100.0.2"),), False)))
    svc.load()
    svc.upsert(IDENT, fe_spec)
    reads, writes = fe.entry_reads, fe.writes
    svc.reconcile({IDENT: fe_spec})
    assert (fe.entry_reads, fe.writes) == (reads, writes)  # compared raw, nothing re-read
    (key,) = [k for k in fe.data]
    del fe.data[key]  # someone else deleted the frontend
    be.update(be_map.BackendKey(99, 0), be_map.BackendValue(1, 0, 1, 0))  # and added a stray
    svc.reconcile({IDENT: fe_spec})
    assert fe.entry_reads == reads + 1  # re-adopted
    assert key in fe.data and {k.route_id for k in be.all_keys()} == {1}
    assert svc.in_sync()


def test_id_pool_reuses_lowest_free() -> None:
    pool = services.IdPool()
    assert [pool.take(), pool.take(), pool.take()] == [1, 2, 3]
    pool.release(2)
    pool.mark(7)
    assert [pool.take(), pool.take()] == [2, 8]
