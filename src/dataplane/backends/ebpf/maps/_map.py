"""A typed view of one BPF map: ctypes key/value Structures over a map fd.

Each map module declares its key and value once, as ctypes Structures that
mirror the C structs in ``bpf/dp_maps.h``, plus a :class:`MapSpec`; the
loader checks every spec against the object's BTF before anything is
written (:func:`dataplane.backends.ebpf.maps.check_layouts`).
"""

from __future__ import annotations

import ctypes
import ipaddress
from collections.abc import Iterable
from typing import Generic, TypeVar

import attrs

from dataplane.backends.ebpf import _libbpf

K = TypeVar("K", bound=ctypes.Structure)
V = TypeVar("V", bound=ctypes.Structure)


@attrs.frozen
class MapSpec(Generic[K, V]):
    """A map of the object: its name (also its pin name) and layouts.

    ``key_c``/``value_c`` name the C types as BTF has them. ``batch``: the
    kernel implements batch operations for this map type (hash, array).
    ``size_option``: the ``DataplaneConfig`` option that sets max_entries.
    ``rebuilt``: the agent rewrites every entry at a full sync, so a pinned
    copy from a version with another layout is replaced at start instead of
    being an error (nothing in it outlives the sync).
    """

    name: str
    key: type[K]
    value: type[V]
    key_c: str
    value_c: str
    percpu: bool = False
    batch: bool = False
    size_option: str | None = None
    rebuilt: bool = False


class U32(ctypes.Structure):
    """A ``__u32`` key (array maps, ifindex)."""

    _fields_ = [("value", ctypes.c_uint32)]


def pack_addr(addr: ipaddress.IPv4Address | str | int) -> int:
    """An IPv4 address as the native integer whose memory bytes are network order.

    Hot at full sync (every backend of every service): an ``IPv4Address`` is
    taken as it is, never rebuilt through its string form.
    """
    if not isinstance(addr, ipaddress.IPv4Address):
        addr = ipaddress.IPv4Address(addr)
    return _bswap32(int(addr))


def unpack_addr(value: int) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(_bswap32(value))


def _bswap32(v: int) -> int:
    """Network order ↔ the little-endian native integer (the bytes reversed)."""
    return ((v & 0xFF) << 24) | ((v & 0xFF00) << 8) | ((v >> 8) & 0xFF00) | (v >> 24)


def layout(struct: type[ctypes.Structure]) -> tuple[int, tuple[tuple[str, int, int], ...]]:
    """Size and (name, offset, size) of each field, as BTF would list them."""
    fields = tuple(
        (name, getattr(struct, name).offset, getattr(struct, name).size)
        for name, *_ in struct._fields_
    )
    return ctypes.sizeof(struct), fields


class Map(Generic[K, V]):
    """Typed element access to a map fd (owned by the BPF object or opened from a pin)."""

    def __init__(self, spec: MapSpec[K, V], fd: int, ncpus: int = 1) -> None:
        self.spec = spec
        self.fd = fd
        self._ncpus = ncpus if spec.percpu else 1

    def lookup(self, key: K) -> V | None:
        value = self.spec.value()
        return value if _libbpf.map_lookup(self.fd, key, value) else None

    def lookup_percpu(self, key: K) -> list[V]:
        """Per-CPU maps: one value per possible CPU."""
        values = (self.spec.value * self._ncpus)()
        if not _libbpf.map_lookup(self.fd, key, values):
            return []
        return list(values)

    def update(self, key: K, value: V, flags: int = _libbpf.BPF_ANY) -> None:
        _libbpf.map_update(self.fd, key, value, flags)

    def delete(self, key: K) -> bool:
        return _libbpf.map_delete(self.fd, key)

    def all_keys(self) -> list[K]:
        return list(_libbpf.map_keys(self.fd, self.spec.key))

    def entries(self) -> list[tuple[K, V]]:
        """Every element; hash maps in batches (one syscall per few thousand)."""
        if self.spec.batch and not self.spec.percpu:
            out: list[tuple[K, V]] = []
            for keys, values, n in _libbpf.map_lookup_batch(
                self.fd, self.spec.key, self.spec.value
            ):
                out.extend(zip(keys[:n], values[:n], strict=True))
            return out
        out = []
        for key in self.all_keys():
            value = self.lookup(key)
            if value is not None:  # deleted meanwhile (LRU, datapath)
                out.append((key, value))
        return out

    def raw_entries(self) -> dict[bytes, bytes]:
        """Every element as raw key → value bytes, read in batches (hash maps).

        Cheap enough to compare a whole map with what the agent wrote, where
        building a Structure per element would not be.
        """
        assert self.spec.batch and not self.spec.percpu, self.spec.name
        ks, vs = ctypes.sizeof(self.spec.key), ctypes.sizeof(self.spec.value)
        out: dict[bytes, bytes] = {}
        for keys, values, n in _libbpf.map_lookup_batch(self.fd, self.spec.key, self.spec.value):
            kb, vb = bytes(keys), bytes(values)
            out.update((kb[i * ks : (i + 1) * ks], vb[i * vs : (i + 1) * vs]) for i in range(n))
        return out

    def update_many(self, pairs: Iterable[tuple[K, V]]) -> None:
        pairs = list(pairs)
        if not pairs:
            return
        if self.spec.batch and len(pairs) > 1:
            keys = (self.spec.key * len(pairs))(*(k for k, _ in pairs))
            values = (self.spec.value * len(pairs))(*(v for _, v in pairs))
            _libbpf.map_update_batch(self.fd, keys, values)
            return
        for key, value in pairs:
            self.update(key, value)

    def zero_percpu(self, keys: Iterable[K]) -> None:
        """Per-CPU array maps: reset every CPU's value of ``keys`` in one batch call."""
        keys = list(keys)
        if not keys:
            return
        key_array = (self.spec.key * len(keys))(*keys)
        values = (self.spec.value * (len(keys) * self._ncpus))()
        _libbpf.map_update_batch(self.fd, key_array, values)

    def max_entries(self) -> int:
        return _libbpf.map_info(self.fd).max_entries

    def delete_many(self, keys: Iterable[K]) -> None:
        for key in keys:
            self.delete(key)
