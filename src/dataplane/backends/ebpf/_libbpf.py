"""The ctypes seam to ``libbpf.so.1``: the only module of the project that calls libbpf.

Why ctypes and not a compiled extension: the objects are prebuilt and
libbpf 1.x has a stable C ABI, so a typed ~400-line binding keeps the wheel
pure Python (signatures and struct layouts: libbpf 1.1, see
``docs/ebpf.md``). Everything above this module deals in Python values and
:mod:`dataplane.errors`; errno values become typed errors here:

* ``EPERM``/``EACCES`` → :class:`BackendUnavailableError` (needs root/CAP_BPF)
* ``E2BIG``/``ENOSPC``/``ENOMEM`` → :class:`CapacityError` (a map is full)
* anything else → :class:`BackendError`, naming the call.

libbpf's own log goes to the ``dataplane.backends.ebpf.libbpf`` logger; a
failed load also carries the tail of the verifier's log in its exception, so
the reason a program was rejected reaches whoever handles the error.

The TC functions act in the *calling thread's* network namespace; callers
run them through :func:`dataplane.backends.ebpf._netns.run_in_netns`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs

from dataplane.errors import BackendError, BackendUnavailableError, CapacityError

log = logging.getLogger("dataplane.backends.ebpf.libbpf")

Buffer = ctypes.Structure | ctypes.Array[Any]
S = TypeVar("S", bound=ctypes.Structure)
T = TypeVar("T", bound=ctypes.Structure)

BPF_ANY = 0
BPF_TC_INGRESS = 1
BPF_TC_EGRESS = 2
BPF_TC_F_REPLACE = 1
BPF_TCX_INGRESS = 46  # enum bpf_attach_type (kernel >= 6.6); libbpf 1.1 passes it through
BPF_TCX_EGRESS = 47
_BTF_KIND_STRUCT = 4
_BTF_KIND_TYPEDEF = 8
_BTF_KIND_VOLATILE = 9
_BTF_KIND_CONST = 10
_ENOTSUPP = 524  # kernel-internal, leaks to user space from some BPF commands


class _OpenOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("object_name", ctypes.c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", ctypes.c_char_p),
        ("_unused", ctypes.c_uint32),
        ("kconfig", ctypes.c_char_p),
        ("btf_custom_path", ctypes.c_char_p),
        ("kernel_log_buf", ctypes.c_char_p),
        ("kernel_log_size", ctypes.c_size_t),
        ("kernel_log_level", ctypes.c_uint32),
    ]


class _TcHook(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("ifindex", ctypes.c_int),
        ("attach_point", ctypes.c_int),
        ("parent", ctypes.c_uint32),
    ]


class _TcOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("prog_fd", ctypes.c_int),
        ("flags", ctypes.c_uint32),
        ("prog_id", ctypes.c_uint32),
        ("handle", ctypes.c_uint32),
        ("priority", ctypes.c_uint32),
    ]


class _BatchOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("elem_flags", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class _TestRunOpts(ctypes.Structure):
    """``struct bpf_test_run_opts`` (libbpf 1.1)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("data_in", ctypes.c_void_p),
        ("data_out", ctypes.c_void_p),
        ("data_size_in", ctypes.c_uint32),
        ("data_size_out", ctypes.c_uint32),
        ("ctx_in", ctypes.c_void_p),
        ("ctx_out", ctypes.c_void_p),
        ("ctx_size_in", ctypes.c_uint32),
        ("ctx_size_out", ctypes.c_uint32),
        ("retval", ctypes.c_uint32),
        ("repeat", ctypes.c_int),
        ("duration", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("cpu", ctypes.c_uint32),
        ("batch_size", ctypes.c_uint32),
    ]


_SKB_CTX_SIZE = 192  # sizeof(struct __sk_buff)
_SKB_CTX_IFINDEX = 40  # offsetof(struct __sk_buff, ifindex)


class _BtfType(ctypes.Structure):
    _fields_ = [("name_off", ctypes.c_uint32), ("info", ctypes.c_uint32), ("size", ctypes.c_uint32)]


class _BtfMember(ctypes.Structure):
    _fields_ = [
        ("name_off", ctypes.c_uint32),
        ("type", ctypes.c_uint32),
        ("offset", ctypes.c_uint32),
    ]


class _MapInfo(ctypes.Structure):
    """The head of ``struct bpf_map_info``; the kernel copies only what we ask for."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("id", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("name", ctypes.c_char * 16),
    ]


_PrintFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}

_P = ctypes.c_void_p
_I = ctypes.c_int
_U32 = ctypes.c_uint32
_S = ctypes.c_char_p
_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "libbpf_set_print": (_P, [_PrintFn]),
    "libbpf_num_possible_cpus": (_I, []),
    "bpf_object__open_file": (_P, [_S, ctypes.POINTER(_OpenOpts)]),
    "bpf_object__load": (_I, [_P]),
    "bpf_object__close": (None, [_P]),
    "bpf_object__find_map_by_name": (_P, [_P, _S]),
    "bpf_object__find_program_by_name": (_P, [_P, _S]),
    "bpf_object__btf": (_P, [_P]),
    "bpf_map__set_max_entries": (_I, [_P, _U32]),
    "bpf_map__set_initial_value": (_I, [_P, _P, ctypes.c_size_t]),
    "bpf_map__value_size": (_U32, [_P]),
    "bpf_map__key_size": (_U32, [_P]),
    "bpf_map__btf_key_type_id": (_U32, [_P]),
    "bpf_map__btf_value_type_id": (_U32, [_P]),
    "bpf_map__fd": (_I, [_P]),
    "bpf_program__fd": (_I, [_P]),
    "btf__find_by_name_kind": (_I, [_P, _S, _U32]),
    "btf__type_by_id": (ctypes.POINTER(_BtfType), [_P, _U32]),
    "btf__name_by_offset": (_S, [_P, _U32]),
    "btf__resolve_size": (ctypes.c_int64, [_P, _U32]),
    "bpf_obj_get": (_I, [_S]),
    "bpf_obj_get_info_by_fd": (_I, [_I, _P, ctypes.POINTER(_U32)]),
    "bpf_map_lookup_elem": (_I, [_I, _P, _P]),
    "bpf_map_update_elem": (_I, [_I, _P, _P, ctypes.c_uint64]),
    "bpf_map_delete_elem": (_I, [_I, _P]),
    "bpf_map_get_next_key": (_I, [_I, _P, _P]),
    "bpf_map_update_batch": (_I, [_I, _P, _P, ctypes.POINTER(_U32), ctypes.POINTER(_BatchOpts)]),
    "bpf_map_lookup_batch": (
        _I,
        [_I, _P, _P, _P, _P, ctypes.POINTER(_U32), ctypes.POINTER(_BatchOpts)],
    ),
    "bpf_tc_hook_create": (_I, [ctypes.POINTER(_TcHook)]),
    "bpf_tc_hook_destroy": (_I, [ctypes.POINTER(_TcHook)]),
    "bpf_tc_attach": (_I, [ctypes.POINTER(_TcHook), ctypes.POINTER(_TcOpts)]),
    "bpf_tc_detach": (_I, [ctypes.POINTER(_TcHook), ctypes.POINTER(_TcOpts)]),
    "bpf_link_create": (_I, [_I, _I, ctypes.c_int, _P]),
    "bpf_link_update": (_I, [_I, _I, _P]),
    "bpf_link_detach": (_I, [_I]),
    "bpf_obj_pin": (_I, [_I, _S]),
    "bpf_prog_query": (_I, [_I, ctypes.c_int, _U32, _P, _P, ctypes.POINTER(_U32)]),
    "bpf_prog_test_run_opts": (_I, [_I, ctypes.POINTER(_TestRunOpts)]),
}


_LOG_BUFFER = 1 << 22  # a verifier log arrives as one message and may be megabytes
VERIFIER_LOG_LINES = 40
_captured: list[str] | None = None  # set while a load runs: its messages, for the error


def _route_log(level: int, fmt: bytes | None, args: int | None) -> int:
    buf = ctypes.create_string_buffer(_LOG_BUFFER)
    _libc().vsnprintf(buf, len(buf), fmt, ctypes.c_void_p(args))
    text = buf.value.decode(errors="replace").rstrip()
    if text:
        log.log(_LEVELS.get(level, logging.DEBUG), "%s", text)
        if _captured is not None:
            _captured.append(text)
    return 0


_print_callback = _PrintFn(_route_log)  # kept referenced: libbpf holds the pointer


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
    return libc


@functools.cache
def _lib() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
    except OSError as exc:
        raise BackendUnavailableError(f"libbpf.so.1 is not installed: {exc}") from exc
    for name, (restype, argtypes) in _SIGNATURES.items():
        try:
            fn = getattr(lib, name)
        except AttributeError as exc:
            raise BackendUnavailableError(f"libbpf.so.1 lacks {name} (need >= 1.1)") from exc
        fn.restype = restype
        fn.argtypes = argtypes
    lib.libbpf_set_print(_print_callback)
    return lib


def library_problem() -> str | None:
    """Why libbpf cannot be used here, or None."""
    try:
        _lib()
    except BackendUnavailableError as exc:
        return str(exc)
    return None


def _raise(err: int, what: str) -> None:
    err = abs(err)
    text = f"{what}: {os.strerror(err) if err != _ENOTSUPP else 'not supported'} (errno {err})"
    if err in (errno.EPERM, errno.EACCES):
        raise BackendUnavailableError(f"{text}; BPF needs root (CAP_BPF and CAP_NET_ADMIN)")
    if err in (errno.E2BIG, errno.ENOSPC, errno.ENOMEM):
        raise CapacityError(text)
    raise BackendError(text)


def _check(rc: int, what: str) -> int:
    if rc < 0:
        _raise(rc, what)
    return rc


def _ptr(value: int | None, what: str) -> int:
    if not value:
        _raise(ctypes.get_errno() or errno.ENOENT, what)
    assert value is not None
    return value


# ------------------------------------------------------------------ objects


@attrs.frozen
class StructLayout:
    """A struct as BTF describes it: total size and (name, offset, size) per member."""

    name: str
    size: int
    members: tuple[tuple[str, int, int], ...]


class BpfObject:
    """One opened (then loaded) BPF object file; maps pinned by name under ``pin_root``."""

    def __init__(self, path: Path, pin_root: Path) -> None:
        self._pin_root = str(pin_root).encode()
        opts = _OpenOpts(sz=ctypes.sizeof(_OpenOpts), pin_root_path=self._pin_root)
        self._obj: int | None = _ptr(
            _lib().bpf_object__open_file(str(path).encode(), ctypes.byref(opts)),
            f"open {path}",
        )

    def _handle(self) -> int:
        if self._obj is None:
            raise BackendError("BPF object already closed")
        return self._obj

    def _map(self, name: str) -> int:
        return _ptr(
            _lib().bpf_object__find_map_by_name(self._handle(), name.encode()),
            f"map {name} in object",
        )

    def set_max_entries(self, name: str, entries: int) -> None:
        _check(_lib().bpf_map__set_max_entries(self._map(name), entries), f"size map {name}")

    def set_initial_value(self, name: str, data: Buffer) -> None:
        """Replace a global-data map's contents (``.rodata``) before load."""
        bmap = self._map(name)
        size = _lib().bpf_map__value_size(bmap)
        if size != ctypes.sizeof(data):
            raise BackendError(f"{name} holds {size} bytes, not {ctypes.sizeof(data)}")
        _check(
            _lib().bpf_map__set_initial_value(bmap, ctypes.addressof(data), size),
            f"set {name}",
        )

    def load(self) -> None:
        """Create (or reuse pinned) maps and load the programs through the verifier.

        A rejected program raises :class:`BackendError` whose message ends with
        the last :data:`VERIFIER_LOG_LINES` lines libbpf logged (the verifier's
        verdict is at the end of its log).
        """
        global _captured
        _captured = []
        try:
            rc = _lib().bpf_object__load(self._handle())
            messages, _captured = _captured, None
        finally:
            _captured = None
        if rc < 0:
            lines = "\n".join(messages).splitlines()
            end = next(
                (i for i in range(len(lines) - 1, -1, -1) if "END PROG LOAD LOG" in lines[i]),
                len(lines) - 1,
            )
            lines = lines[max(0, end + 1 - VERIFIER_LOG_LINES) : end + 1]
            err = abs(rc)
            raise BackendError(
                f"load BPF object: {os.strerror(err)} (errno {err}); libbpf/verifier log "
                "(tail):\n" + "\n".join(lines)
            )

    def map_fd(self, name: str) -> int:
        return _check(_lib().bpf_map__fd(self._map(name)), f"fd of map {name}")

    def program_fd(self, name: str) -> int:
        prog = _ptr(
            _lib().bpf_object__find_program_by_name(self._handle(), name.encode()),
            f"program {name} in object",
        )
        return _check(_lib().bpf_program__fd(prog), f"fd of program {name}")

    def map_type_names(self, name: str) -> tuple[str, str]:
        """The BTF names of a map's key and value types (typedefs and qualifiers resolved)."""
        bmap = self._map(name)
        btf = self._btf()
        return (
            _resolved_name(btf, _lib().bpf_map__btf_key_type_id(bmap)),
            _resolved_name(btf, _lib().bpf_map__btf_value_type_id(bmap)),
        )

    def map_sizes(self, name: str) -> tuple[int, int]:
        bmap = self._map(name)
        return int(_lib().bpf_map__key_size(bmap)), int(_lib().bpf_map__value_size(bmap))

    def struct_layout(self, name: str) -> StructLayout:
        """The layout of ``struct <name>`` in the object's BTF."""
        btf = self._btf()
        lib = _lib()
        type_id = lib.btf__find_by_name_kind(btf, name.encode(), _BTF_KIND_STRUCT)
        if type_id < 0:
            raise BackendError(f"struct {name} is not in the object's BTF")
        head = lib.btf__type_by_id(btf, type_id)
        info = head.contents.info
        kflag = info >> 31
        members = (_BtfMember * (info & 0xFFFF)).from_address(
            ctypes.addressof(head.contents) + ctypes.sizeof(_BtfType)
        )
        out = []
        for m in members:
            bit_offset = m.offset & 0xFFFFFF if kflag else m.offset
            out.append(
                (
                    lib.btf__name_by_offset(btf, m.name_off).decode(),
                    bit_offset // 8,
                    int(lib.btf__resolve_size(btf, m.type)),
                )
            )
        return StructLayout(name, int(head.contents.size), tuple(out))

    def _btf(self) -> int:
        return _ptr(_lib().bpf_object__btf(self._handle()), "BTF of object")

    def close(self) -> None:
        if self._obj is not None:
            _lib().bpf_object__close(self._obj)
            self._obj = None


def _resolved_name(btf: int, type_id: int) -> str:
    lib = _lib()
    while type_id:
        t = lib.btf__type_by_id(btf, type_id).contents
        kind = (t.info >> 24) & 0x1F
        if kind in (_BTF_KIND_TYPEDEF, _BTF_KIND_CONST, _BTF_KIND_VOLATILE):
            name = str(lib.btf__name_by_offset(btf, t.name_off).decode())
            if kind == _BTF_KIND_TYPEDEF and name.startswith("__"):
                return name  # __u32 and friends: a scalar key, named by its typedef
            type_id = t.size  # union { size; type; }
            continue
        return str(lib.btf__name_by_offset(btf, t.name_off).decode())
    return "void"


# ------------------------------------------------------------------ pinned maps


@attrs.frozen
class MapInfo:
    key_size: int
    value_size: int
    max_entries: int


def open_pinned(path: Path) -> int:
    """An fd for a pinned map (the caller closes it)."""
    return _check(_lib().bpf_obj_get(str(path).encode()), f"open pinned {path}")


def map_info(fd: int) -> MapInfo:
    info = _MapInfo()
    size = _U32(ctypes.sizeof(info))
    _check(
        _lib().bpf_obj_get_info_by_fd(fd, ctypes.addressof(info), ctypes.byref(size)), "map info"
    )
    return MapInfo(info.key_size, info.value_size, info.max_entries)


def close_fd(fd: int) -> None:
    os.close(fd)


def num_possible_cpus() -> int:
    return _check(_lib().libbpf_num_possible_cpus(), "number of possible CPUs")


# ------------------------------------------------------------------ map elements


def map_lookup(fd: int, key: Buffer, value: Buffer) -> bool:
    rc = _lib().bpf_map_lookup_elem(fd, ctypes.addressof(key), ctypes.addressof(value))
    if rc == -errno.ENOENT:
        return False
    _check(rc, "map lookup")
    return True


def map_update(fd: int, key: Buffer, value: Buffer, flags: int = BPF_ANY) -> None:
    _check(
        _lib().bpf_map_update_elem(fd, ctypes.addressof(key), ctypes.addressof(value), flags),
        "map update",
    )


def map_delete(fd: int, key: Buffer) -> bool:
    rc = _lib().bpf_map_delete_elem(fd, ctypes.addressof(key))
    if rc == -errno.ENOENT:
        return False
    _check(rc, "map delete")
    return True


def map_keys(fd: int, key_type: type[S]) -> Iterator[S]:
    """Every key, in the kernel's order (a snapshot is not atomic: entries may come and go)."""
    lib = _lib()
    prev: S | None = None
    while True:
        nxt = key_type()
        rc = lib.bpf_map_get_next_key(
            fd, None if prev is None else ctypes.addressof(prev), ctypes.addressof(nxt)
        )
        if rc == -errno.ENOENT:
            return
        _check(rc, "map iteration")
        yield nxt
        prev = nxt


def map_lookup_batch(
    fd: int, key_type: type[S], value_type: type[T], chunk: int = 8192
) -> Iterator[tuple[ctypes.Array[S], ctypes.Array[T], int]]:
    """Every element, ``chunk`` per syscall (hash maps): (keys, values, count) per call.

    Like :func:`map_keys`, not atomic. A bucket with more elements than fit
    in one call (ENOSPC) doubles the chunk and asks again.
    """
    lib = _lib()
    opts = _BatchOpts(sz=ctypes.sizeof(_BatchOpts))
    token_in = ctypes.create_string_buffer(max(8, ctypes.sizeof(key_type)))
    token_out = ctypes.create_string_buffer(len(token_in))
    first = True
    while True:
        keys = (key_type * chunk)()
        values = (value_type * chunk)()
        count = _U32(chunk)
        rc = lib.bpf_map_lookup_batch(
            fd,
            None if first else ctypes.addressof(token_in),
            ctypes.addressof(token_out),
            ctypes.addressof(keys),
            ctypes.addressof(values),
            ctypes.byref(count),
            ctypes.byref(opts),
        )
        if rc == -errno.ENOSPC and count.value == 0:
            chunk *= 2
            continue
        done = rc == -errno.ENOENT
        if not done:
            _check(rc, "map batch lookup")
        if count.value:
            yield keys, values, count.value
        if done:
            return
        ctypes.memmove(token_in, token_out, len(token_in))
        first = False


def map_update_batch(fd: int, keys: ctypes.Array[Any], values: ctypes.Array[Any]) -> None:
    """One syscall for many elements (hash and array maps)."""
    count = _U32(len(keys))
    opts = _BatchOpts(sz=ctypes.sizeof(_BatchOpts))
    _check(
        _lib().bpf_map_update_batch(
            fd,
            ctypes.addressof(keys),
            ctypes.addressof(values),
            ctypes.byref(count),
            ctypes.byref(opts),
        ),
        "map batch update",
    )


# ------------------------------------------------------------------ TC (calling thread's netns)


def _hook(ifindex: int, point: int) -> _TcHook:
    return _TcHook(sz=ctypes.sizeof(_TcHook), ifindex=ifindex, attach_point=point)


def tc_ensure_clsact(ifindex: int) -> bool:
    """Create the clsact qdisc; True if this call created it (False: it existed)."""
    rc = _lib().bpf_tc_hook_create(ctypes.byref(_hook(ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS)))
    if rc == -errno.EEXIST:
        return False
    _check(rc, f"create clsact on ifindex {ifindex}")
    return True


def tc_remove_clsact(ifindex: int) -> None:
    rc = _lib().bpf_tc_hook_destroy(ctypes.byref(_hook(ifindex, BPF_TC_INGRESS | BPF_TC_EGRESS)))
    if rc not in (0, -errno.ENOENT, -errno.ENODEV, -errno.EINVAL):
        _check(rc, f"remove clsact on ifindex {ifindex}")


def tc_attach(ifindex: int, point: int, prog_fd: int, priority: int) -> None:
    """Attach (or atomically replace) our filter at ``priority``/handle ``priority``."""
    opts = _TcOpts(
        sz=ctypes.sizeof(_TcOpts),
        prog_fd=prog_fd,
        flags=BPF_TC_F_REPLACE,
        handle=priority,
        priority=priority,
    )
    _check(
        _lib().bpf_tc_attach(ctypes.byref(_hook(ifindex, point)), ctypes.byref(opts)),
        f"attach to ifindex {ifindex}",
    )


def tc_detach(ifindex: int, point: int, priority: int) -> None:
    opts = _TcOpts(sz=ctypes.sizeof(_TcOpts), handle=priority, priority=priority)
    rc = _lib().bpf_tc_detach(ctypes.byref(_hook(ifindex, point)), ctypes.byref(opts))
    if rc not in (0, -errno.ENOENT, -errno.ENODEV, -errno.EINVAL):
        _check(rc, f"detach from ifindex {ifindex}")


# ------------------------------------------------------------------ TCX links (kernel >= 6.6)


class TcxUnsupportedError(BackendError):
    """The kernel has no TCX attach points: attach with a clsact qdisc instead."""


_TCX_POINTS = {BPF_TC_INGRESS: BPF_TCX_INGRESS, BPF_TC_EGRESS: BPF_TCX_EGRESS}


def tcx_attach(ifindex: int, point: int, prog_fd: int, pin: Path) -> None:
    """Run ``prog_fd`` at ``point`` of ``ifindex`` through a TCX link pinned at ``pin``.

    An existing pinned link gets the program swapped in atomically
    (``BPF_LINK_UPDATE``); a link whose interface is gone is replaced. The
    link is created in the calling thread's network namespace.
    """
    if pin.exists():
        fd = open_pinned(pin)
        try:
            rc = _lib().bpf_link_update(fd, prog_fd, None)
        finally:
            close_fd(fd)
        if rc == 0:
            return
        if rc != -errno.ENOLINK:
            _raise(rc, f"update the TCX link {pin}")
        pin.unlink()
    fd = _lib().bpf_link_create(prog_fd, ifindex, _TCX_POINTS[point], None)
    if fd in (-errno.EINVAL, -errno.EOPNOTSUPP, -_ENOTSUPP):
        raise TcxUnsupportedError(f"TCX attach to ifindex {ifindex}: not supported by this kernel")
    _check(fd, f"TCX attach to ifindex {ifindex}")
    try:
        _check(_lib().bpf_obj_pin(fd, str(pin).encode()), f"pin the TCX link {pin}")
    finally:
        close_fd(fd)


def tcx_detach(pin: Path) -> None:
    """Detach the TCX link pinned at ``pin`` (if any) and remove the pin."""
    if not pin.exists():
        return
    fd = open_pinned(pin)
    try:
        rc = _lib().bpf_link_detach(fd)
        if rc not in (0, -errno.ENOLINK, -errno.EINVAL):
            _check(rc, f"detach the TCX link {pin}")
    finally:
        close_fd(fd)
    pin.unlink()


def tcx_programs(ifindex: int, point: int) -> list[int]:
    """Ids of the programs attached through TCX at ``point`` of ``ifindex`` (any owner)."""
    ids = (_U32 * 64)()
    count = _U32(len(ids))
    rc = _lib().bpf_prog_query(
        ifindex, _TCX_POINTS[point], 0, None, ctypes.addressof(ids), ctypes.byref(count)
    )
    if rc in (-errno.EINVAL, -errno.EOPNOTSUPP, -_ENOTSUPP):
        raise TcxUnsupportedError(f"TCX query of ifindex {ifindex}: not supported by this kernel")
    _check(rc, f"TCX query of ifindex {ifindex}")
    return list(ids[: count.value])


# ------------------------------------------------------------------ test runs (diagnostics)


@attrs.frozen
class ProgRun:
    """One ``BPF_PROG_TEST_RUN``: the verdict and the kernel-measured time per run."""

    retval: int
    duration_ns: int
    data_out: bytes


def prog_test_run(prog_fd: int, packet: bytes, ifindex: int, repeat: int = 1) -> ProgRun:
    """Run a TC program on ``packet`` as if it arrived on ``ifindex`` (calling thread's netns).

    Map lookups and updates are real; redirects only set the verdict. With
    ``repeat`` > 1 every run sees the packet as the previous one left it.
    """
    ctx = (ctypes.c_uint8 * _SKB_CTX_SIZE)()
    _U32.from_buffer(ctx, _SKB_CTX_IFINDEX).value = ifindex
    data = ctypes.create_string_buffer(packet, len(packet))
    out = ctypes.create_string_buffer(len(packet) + 256)
    opts = _TestRunOpts(
        sz=ctypes.sizeof(_TestRunOpts),
        data_in=ctypes.addressof(data),
        data_size_in=len(packet),
        data_out=ctypes.addressof(out),
        data_size_out=len(out),
        ctx_in=ctypes.addressof(ctx),
        ctx_size_in=_SKB_CTX_SIZE,
        repeat=repeat,
    )
    _check(_lib().bpf_prog_test_run_opts(prog_fd, ctypes.byref(opts)), "BPF test run")
    return ProgRun(opts.retval, opts.duration, out.raw[: opts.data_size_out])
