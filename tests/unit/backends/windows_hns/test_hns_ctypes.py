"""The computenetwork.dll transport, exercised on Linux against a stub DLL.

The stub's functions are real ctypes function pointers built from the C
signatures in the Microsoft HCN reference (written out independently below,
not taken from ``_hcn``), so every argument and out-parameter crosses the
ctypes boundary exactly as it will against computenetwork.dll: GUIDs by
reference in Win32 layout, wide strings in, HNS-allocated wide strings out
(freed with CoTaskMemFree), handles as pointers, HRESULTs as signed LONG.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import sys
import uuid
from typing import Any

import pytest

from dataplane.backends.windows_hns import _hcn
from dataplane.backends.windows_hns.hresult import (
    ERROR_NOT_FOUND,
    RPC_S_SERVER_UNAVAILABLE,
    HcnError,
    HcnTransientError,
)
from dataplane.errors import BackendUnavailableError

LONG, PVOID, WSTR = ctypes.c_long, ctypes.c_void_p, ctypes.c_wchar_p
PPVOID = ctypes.POINTER(ctypes.c_void_p)


class SpecGUID(ctypes.Structure):
    _fields_ = [
        ("Data1", ctypes.c_uint32),
        ("Data2", ctypes.c_uint16),
        ("Data3", ctypes.c_uint16),
        ("Data4", ctypes.c_ubyte * 8),
    ]


PGUID = ctypes.POINTER(SpecGUID)


def spec() -> dict[str, tuple[Any, list[Any]]]:
    """The documented signatures, per kind."""
    table: dict[str, tuple[Any, list[Any]]] = {
        "CoTaskMemFree": (None, [PVOID]),
        "HNSCall": (LONG, [WSTR, WSTR, WSTR, PPVOID]),
    }
    for kind in ("Network", "Endpoint", "LoadBalancer"):
        table[f"HcnEnumerate{kind}s"] = (LONG, [WSTR, PPVOID, PPVOID])
        create = [PGUID, WSTR, PPVOID, PPVOID]
        table[f"HcnCreate{kind}"] = (LONG, [PVOID, *create] if kind == "Endpoint" else create)
        table[f"HcnOpen{kind}"] = (LONG, [PGUID, PPVOID, PPVOID])
        table[f"HcnModify{kind}"] = (LONG, [PVOID, WSTR, PPVOID])
        table[f"HcnQuery{kind}Properties"] = (LONG, [PVOID, WSTR, PPVOID, PPVOID])
        table[f"HcnDelete{kind}"] = (LONG, [PGUID, PPVOID])
        table[f"HcnClose{kind}"] = (LONG, [PVOID])
    return table


class StubDll:
    """Hcn* functions as C callbacks that record calls and return HNS-allocated strings."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.live: dict[int, Any] = {}  # address → buffer "allocated by HNS"
        self.freed: list[int] = []
        self.fail: dict[str, tuple[int, str]] = {}  # name → (HRESULT, error record)
        self.guids: list[uuid.UUID] = []
        self._keep: list[Any] = []
        for name, (restype, argtypes) in spec().items():
            proto = ctypes.CFUNCTYPE(restype, *argtypes)
            callback = proto(self._handler(name))
            self._keep.append(callback)
            setattr(self, name, callback)

    def _alloc(self, out: Any, text: str) -> None:
        buffer = ctypes.create_unicode_buffer(text)
        address = ctypes.addressof(buffer)
        self.live[address] = buffer
        out[0] = address

    def _handler(self, name: str) -> Any:
        def handler(*args: Any) -> Any:
            self.calls.append((name, args))
            if name == "CoTaskMemFree":
                self.freed.append(args[0])
                del self.live[args[0]]
                return None
            for arg in args:
                if isinstance(arg, ctypes._Pointer) and isinstance(arg.contents, SpecGUID):
                    self.guids.append(uuid.UUID(bytes_le=bytes(arg.contents)))
            if name in self.fail:
                code, record = self.fail[name]
                if record and not name.startswith("HcnClose"):
                    self._alloc(args[-1], record)
                return code - (1 << 32) if code & 0x80000000 else code
            if name == "HNSCall":
                self._alloc(
                    args[-1], json.dumps({"Success": True, "Output": {"Major": 13, "Minor": 2}})
                )
            elif name.startswith("HcnEnumerate"):
                self._alloc(args[1], json.dumps(["5a4a1c6e-0000-4000-8000-000000000001"]))
            elif name.startswith("HcnQuery"):
                self._alloc(args[2], json.dumps({"ID": "x", "Echo": args[1]}))
            elif name.startswith(("HcnCreate", "HcnOpen")):
                args[-2][0] = 0xC0FFEE
            return 0

        return handler


@pytest.fixture
def stub() -> StubDll:
    return StubDll()


@pytest.fixture
def dll(stub: StubDll) -> _hcn.DllTransport:
    return _hcn.DllTransport(stub, stub, stub)


def test_import_is_safe_and_load_refuses_off_windows() -> None:
    importlib.reload(_hcn)
    if sys.platform != "win32":
        with pytest.raises(BackendUnavailableError, match="only on Windows"):
            _hcn.load()


def test_declared_signatures_match_the_documented_ones() -> None:
    documented = spec()
    assert set(_hcn.SIGNATURES) == set(documented)
    for name, (restype, argtypes) in documented.items():
        ours_res, ours_args = _hcn.SIGNATURES[name]
        assert (ours_res is None) == (restype is None), name
        if restype is not None:
            assert ctypes.sizeof(ours_res) == ctypes.sizeof(restype), name
        assert [ctypes.sizeof(a) for a in ours_args] == [ctypes.sizeof(a) for a in argtypes], name


def test_guid_layout_round_trips() -> None:
    value = uuid.UUID("00112233-4455-6677-8899-aabbccddeeff")
    guid = _hcn.GUID.of(value)
    assert (guid.Data1, guid.Data2, guid.Data3) == (0x00112233, 0x4455, 0x6677)
    assert bytes(guid.Data4) == bytes.fromhex("8899aabbccddeeff")
    assert uuid.UUID(bytes_le=bytes(guid)) == value


def test_calls_cross_the_boundary(stub: StubDll, dll: _hcn.DllTransport) -> None:
    guid = uuid.uuid4()
    assert json.loads(dll.enumerate("LoadBalancer", "{q}")) == [
        "5a4a1c6e-0000-4000-8000-000000000001"
    ]
    handle = dll.create("LoadBalancer", guid, '{"a":1}')
    assert handle == 0xC0FFEE
    props = json.loads(dll.query_properties("LoadBalancer", handle, "{query}"))
    assert props == {"ID": "x", "Echo": "{query}"}
    dll.modify("LoadBalancer", handle, "{m}")
    dll.close("LoadBalancer", handle)
    net = dll.open("Network", guid)
    assert dll.create("Endpoint", guid, "{e}", net) == 0xC0FFEE
    dll.delete("Endpoint", guid)
    assert dll.hns_version() == (13, 2)
    assert stub.guids == [guid] * 4
    names = [n for n, _ in stub.calls if n != "CoTaskMemFree"]
    assert names == [
        "HcnEnumerateLoadBalancers",
        "HcnCreateLoadBalancer",
        "HcnQueryLoadBalancerProperties",
        "HcnModifyLoadBalancer",
        "HcnCloseLoadBalancer",
        "HcnOpenNetwork",
        "HcnCreateEndpoint",
        "HcnDeleteEndpoint",
        "HNSCall",
    ]
    create_endpoint = next(a for n, a in stub.calls if n == "HcnCreateEndpoint")
    assert create_endpoint[0] == 0xC0FFEE and create_endpoint[2] == "{e}"
    assert stub.live == {}  # every HNS-allocated string was freed
    assert len(stub.freed) == 3  # the ids, the properties and the HNSCall reply


def test_failures_decode_and_free_the_error_record(stub: StubDll, dll: _hcn.DllTransport) -> None:
    record = json.dumps(
        {"Success": False, "Error": "Element not found.", "ErrorCode": ERROR_NOT_FOUND}
    )
    stub.fail["HcnOpenLoadBalancer"] = (ERROR_NOT_FOUND, record)
    with pytest.raises(HcnError) as info:
        dll.open("LoadBalancer", uuid.uuid4())
    assert info.value.not_found and info.value.hresult == ERROR_NOT_FOUND
    assert "Element not found." in str(info.value) and "HcnOpenLoadBalancer" in str(info.value)
    stub.fail["HcnDeleteLoadBalancer"] = (RPC_S_SERVER_UNAVAILABLE, "")
    with pytest.raises(HcnTransientError):
        dll.delete("LoadBalancer", uuid.uuid4())
    stub.fail["HcnModifyEndpoint"] = (0, '{"Error":"policy invalid"}')  # S_OK + record = error
    with pytest.raises(HcnError, match="policy invalid"):
        dll.modify("Endpoint", 1, "{}")
    assert stub.live == {}
