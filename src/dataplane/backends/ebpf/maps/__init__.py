"""The maps of ``dataplane.o``, one module each, and the BTF check that ties them to C.

A layout mismatch between a ctypes Structure here and its C struct in
``bpf/dp_maps.h`` (a field added on one side only, a different order or
width) would corrupt maps silently; :func:`check_layouts` turns it into an
error when the object is opened, before anything is loaded or written.
"""

from __future__ import annotations

import ctypes
from typing import Any

from dataplane.backends.ebpf import _libbpf
from dataplane.backends.ebpf.maps import (
    affinity,
    backend,
    config,
    conntrack,
    counters,
    failsafe,
    frontend,
    ifpolicy,
    ifstate,
    ipset,
    node,
    policy_conntrack,
    route,
    rule_hits,
    rules,
    source_class,
    source_range,
)
from dataplane.backends.ebpf.maps._map import MapSpec, layout
from dataplane.errors import BackendError

ALL: tuple[MapSpec[Any, Any], ...] = (
    source_class.SPEC,
    route.SPEC,
    frontend.SPEC,
    backend.SPEC,
    source_range.SPEC,
    affinity.SPEC,
    conntrack.SPEC,
    node.GLOBALS,
    node.WORKLOADS,
    ifstate.SPEC,
    counters.SPEC,
    rules.SPEC,
    rule_hits.SPEC,
    ipset.SPEC,
    ifpolicy.SPEC,
    policy_conntrack.SPEC,
    failsafe.SPEC,
)


def _check_struct(obj: _libbpf.BpfObject, c_name: str, struct: type[ctypes.Structure]) -> None:
    btf = obj.struct_layout(c_name)
    size, fields = layout(struct)
    if (btf.size, btf.members) != (size, fields):
        raise BackendError(
            f"struct {c_name} differs between the BPF object and {struct.__module__}."
            f"{struct.__name__}: object {btf.size} bytes {list(btf.members)}, "
            f"python {size} bytes {list(fields)}"
        )


def check_layouts(obj: _libbpf.BpfObject) -> None:
    """Every map's key/value type names, sizes and field layouts match the Python side."""
    for spec in ALL:
        names = obj.map_type_names(spec.name)
        if names != (spec.key_c, spec.value_c):
            raise BackendError(
                f"map {spec.name} has types {names}, expected {(spec.key_c, spec.value_c)}"
            )
        sizes = obj.map_sizes(spec.name)
        if sizes != (ctypes.sizeof(spec.key), ctypes.sizeof(spec.value)):
            raise BackendError(f"map {spec.name} sizes {sizes} differ from the Python side")
        for c_name, struct in ((spec.key_c, spec.key), (spec.value_c, spec.value)):
            if not c_name.startswith("__"):
                _check_struct(obj, c_name, struct)
    _check_struct(obj, config.C_NAME, config.Config)
