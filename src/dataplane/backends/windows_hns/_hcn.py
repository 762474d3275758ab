"""computenetwork.dll through ctypes: the only module of this backend that touches the OS.

Importing it is safe anywhere: no library is loaded until :func:`load` runs,
and :func:`load` refuses on anything but Windows. :class:`DllTransport`
takes the loaded libraries as arguments, so unit tests drive it with stub
functions that have the documented C signatures and record their calls.

Signatures (Microsoft HCN reference; hcsshim ``hcn/zsyscall_windows.go``)::

    HRESULT HcnEnumerate<Kind>s(PCWSTR Query, PWSTR *Ids, PWSTR *ErrorRecord);
    HRESULT HcnCreate<Kind>(REFGUID Id, PCWSTR Settings, HCN_<KIND> *Handle, PWSTR *ErrorRecord);
    HRESULT HcnCreateEndpoint(HCN_NETWORK Network, REFGUID Id, PCWSTR Settings,
                              HCN_ENDPOINT *Handle, PWSTR *ErrorRecord);
    HRESULT HcnOpen<Kind>(REFGUID Id, HCN_<KIND> *Handle, PWSTR *ErrorRecord);
    HRESULT HcnModify<Kind>(HCN_<KIND> Handle, PCWSTR Settings, PWSTR *ErrorRecord);
    HRESULT HcnQuery<Kind>Properties(HCN_<KIND> Handle, PCWSTR Query, PWSTR *Properties,
                                     PWSTR *ErrorRecord);
    HRESULT HcnDelete<Kind>(REFGUID Id, PWSTR *ErrorRecord);
    HRESULT HcnClose<Kind>(HCN_<KIND> Handle);
    void    CoTaskMemFree(LPVOID pv);                                   // ole32.dll
    HRESULT HNSCall(PCWSTR Method, PCWSTR Path, PCWSTR Request, PWSTR *Response);  // vmcompute

Every returned string (ids, properties, error records, responses) is
allocated by HNS and freed here with CoTaskMemFree, also on failure.
"""

from __future__ import annotations

import ctypes
import json
import sys
import uuid
from typing import Any

from dataplane.backends.windows_hns.hresult import error_for
from dataplane.backends.windows_hns.transport import KINDS, Handle, Kind
from dataplane.errors import BackendError, BackendUnavailableError

E_FAIL = 0x80004005


class GUID(ctypes.Structure):
    """The Win32 GUID layout (little-endian first three fields, as ``uuid.bytes_le``)."""

    _fields_ = [
        ("Data1", ctypes.c_uint32),
        ("Data2", ctypes.c_uint16),
        ("Data3", ctypes.c_uint16),
        ("Data4", ctypes.c_ubyte * 8),
    ]

    @classmethod
    def of(cls, value: uuid.UUID) -> GUID:
        return cls.from_buffer_copy(value.bytes_le)


HRESULT = ctypes.c_long
HANDLE = ctypes.c_void_p
OUT_HANDLE = ctypes.POINTER(ctypes.c_void_p)
OUT_STRING = ctypes.POINTER(ctypes.c_void_p)  # PWSTR*, kept as an address to free it
REFGUID = ctypes.POINTER(GUID)
WSTR = ctypes.c_wchar_p

Signature = tuple[Any, list[Any]]


def _signatures() -> dict[str, Signature]:
    table: dict[str, Signature] = {
        "CoTaskMemFree": (None, [ctypes.c_void_p]),
        "HNSCall": (HRESULT, [WSTR, WSTR, WSTR, OUT_STRING]),
    }
    for kind in KINDS:
        create_args = [REFGUID, WSTR, OUT_HANDLE, OUT_STRING]
        table[f"HcnEnumerate{kind}s"] = (HRESULT, [WSTR, OUT_STRING, OUT_STRING])
        table[f"HcnCreate{kind}"] = (
            HRESULT,
            [HANDLE, *create_args] if kind == "Endpoint" else create_args,
        )
        table[f"HcnOpen{kind}"] = (HRESULT, [REFGUID, OUT_HANDLE, OUT_STRING])
        table[f"HcnModify{kind}"] = (HRESULT, [HANDLE, WSTR, OUT_STRING])
        table[f"HcnQuery{kind}Properties"] = (HRESULT, [HANDLE, WSTR, OUT_STRING, OUT_STRING])
        table[f"HcnDelete{kind}"] = (HRESULT, [REFGUID, OUT_STRING])
        table[f"HcnClose{kind}"] = (HRESULT, [HANDLE])
    return table


SIGNATURES = _signatures()
_LIBRARY = {"CoTaskMemFree": "ole32", "HNSCall": "vmcompute"}


def _bind(library: Any, name: str) -> Any:
    function = getattr(library, name)
    function.restype, function.argtypes = SIGNATURES[name]
    return function


class DllTransport:
    """:class:`~.transport.HcnTransport` over computenetwork.dll (plus ole32, vmcompute)."""

    def __init__(self, computenetwork: Any, ole32: Any, vmcompute: Any) -> None:
        libraries = {"computenetwork": computenetwork, "ole32": ole32, "vmcompute": vmcompute}
        self._fn = {
            name: _bind(libraries[_LIBRARY.get(name, "computenetwork")], name)
            for name in SIGNATURES
        }

    def enumerate(self, kind: Kind, query: str) -> str:
        name = f"HcnEnumerate{kind}s"
        ids, record = ctypes.c_void_p(), ctypes.c_void_p()
        result = self._fn[name](query, ctypes.byref(ids), ctypes.byref(record))
        return self._finish(name, result, record, ids)

    def create(
        self, kind: Kind, guid: uuid.UUID, settings: str, network: Handle | None = None
    ) -> Handle:
        name = f"HcnCreate{kind}"
        handle, record = ctypes.c_void_p(), ctypes.c_void_p()
        args: list[Any] = [ctypes.byref(GUID.of(guid)), settings]
        if kind == "Endpoint":
            args.insert(0, HANDLE(network))
        result = self._fn[name](*args, ctypes.byref(handle), ctypes.byref(record))
        self._finish(name, result, record)
        return int(handle.value or 0)

    def open(self, kind: Kind, guid: uuid.UUID) -> Handle:
        name = f"HcnOpen{kind}"
        handle, record = ctypes.c_void_p(), ctypes.c_void_p()
        result = self._fn[name](
            ctypes.byref(GUID.of(guid)), ctypes.byref(handle), ctypes.byref(record)
        )
        self._finish(name, result, record)
        return int(handle.value or 0)

    def modify(self, kind: Kind, handle: Handle, settings: str) -> None:
        name = f"HcnModify{kind}"
        record = ctypes.c_void_p()
        result = self._fn[name](HANDLE(handle), settings, ctypes.byref(record))
        self._finish(name, result, record)

    def query_properties(self, kind: Kind, handle: Handle, query: str) -> str:
        name = f"HcnQuery{kind}Properties"
        props, record = ctypes.c_void_p(), ctypes.c_void_p()
        result = self._fn[name](HANDLE(handle), query, ctypes.byref(props), ctypes.byref(record))
        return self._finish(name, result, record, props)

    def delete(self, kind: Kind, guid: uuid.UUID) -> None:
        name = f"HcnDelete{kind}"
        record = ctypes.c_void_p()
        result = self._fn[name](ctypes.byref(GUID.of(guid)), ctypes.byref(record))
        self._finish(name, result, record)

    def close(self, kind: Kind, handle: Handle) -> None:
        name = f"HcnClose{kind}"
        self._finish(name, self._fn[name](HANDLE(handle)), ctypes.c_void_p())

    def hns_version(self) -> tuple[int, int]:
        """``GET /globals/version`` through vmcompute's HNSCall, as hcsshim's GetGlobals does."""
        response = ctypes.c_void_p()
        result = self._fn["HNSCall"]("GET", "/globals/version", "", ctypes.byref(response))
        text = self._finish("HNSCall", result, ctypes.c_void_p(), response)
        try:
            reply = json.loads(text)
            if not reply.get("Success", False):
                raise error_for(E_FAIL, "HNSCall", str(reply.get("Error", "")))
            return int(reply["Output"]["Major"]), int(reply["Output"]["Minor"])
        except (ValueError, KeyError, TypeError) as exc:
            raise BackendError(f"HNSCall GET /globals/version: unreadable reply {text!r}") from exc

    def _take(self, pointer: ctypes.c_void_p) -> str:
        """The wide string HNS allocated at ``pointer`` (freed here), or ""."""
        if not pointer.value:
            return ""
        try:
            return ctypes.wstring_at(pointer.value)
        finally:
            self._fn["CoTaskMemFree"](pointer.value)

    def _finish(
        self,
        name: str,
        result: int,
        record: ctypes.c_void_p,
        output: ctypes.c_void_p | None = None,
    ) -> str:
        """Free what HNS returned; raise for a failed HRESULT or a non-empty ErrorRecord."""
        error_text = self._take(record)
        text = self._take(output) if output is not None else ""
        if result < 0 or error_text:
            raise error_for(result if result < 0 else E_FAIL, name, error_text)
        return text


def load() -> DllTransport:
    """Load the HNS libraries; only possible on Windows."""
    if sys.platform == "win32":
        try:
            return DllTransport(
                ctypes.WinDLL("computenetwork.dll"),
                ctypes.WinDLL("ole32.dll"),
                ctypes.WinDLL("vmcompute.dll"),
            )
        except OSError as exc:
            raise BackendUnavailableError(f"cannot load the HNS libraries: {exc}") from exc
    raise BackendUnavailableError(f"computenetwork.dll exists only on Windows, not {sys.platform}")
