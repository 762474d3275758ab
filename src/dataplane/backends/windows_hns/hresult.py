"""HRESULTs from computenetwork.dll decoded into the library's error tree.

Both transports (the ctypes one and the emulator) report failures through
:func:`error_for`, so the reconciler sees the same typed errors whether HNS
is real or emulated. Codes and names come from the Microsoft HCN reference
("HCN Error Code") and hcsshim ``hcn/hcnerrors.go``; win32 codes arrive as
``0x8007xxxx`` HRESULTs (facility 7).
"""

from __future__ import annotations

import json

from dataplane.errors import BackendError, TransientBackendError

E_NOTIMPL = 0x80004001
E_INVALIDARG = 0x80070057
E_HANDLE = 0x80070006  # HRESULT_FROM_WIN32(ERROR_INVALID_HANDLE)
ERROR_NOT_FOUND = 0x80070490  # HRESULT_FROM_WIN32(1168); hcsshim IsElementNotFoundError
ERROR_ALREADY_EXISTS = 0x800700B7  # HRESULT_FROM_WIN32(183), "0xb7" in kube-proxy issues
ERROR_SERVICE_NOT_ACTIVE = 0x80070426
RPC_S_SERVER_UNAVAILABLE = 0x800706BA
RPC_S_CALL_FAILED = 0x800706BE
HCN_E_NETWORK_NOT_FOUND = 0x803B0001
HCN_E_ENDPOINT_NOT_FOUND = 0x803B0002
HCN_E_POLICY_NOT_FOUND = 0x803B0008
HCN_E_INVALID_ENDPOINT = 0x803B000C
HCN_E_INVALID_POLICY = 0x803B000D
HCN_E_INVALID_POLICY_TYPE = 0x803B000E
HCN_E_POLICY_ALREADY_EXISTS = 0x803B0012
HCN_E_PORT_ALREADY_EXISTS = 0x803B0013
HCN_E_REQUEST_UNSUPPORTED = 0x803B0015
HCN_E_INVALID_JSON = 0x803B001B
HCN_E_MANAGER_STOPPED = 0x803B0020
HCN_E_ENTITY_HAS_REFERENCES = 0x803B002C
HCN_E_INVALID_INTERNAL_PORT = 0x803B002D

NAMES = {
    E_NOTIMPL: "E_NOTIMPL",
    E_INVALIDARG: "E_INVALIDARG",
    E_HANDLE: "E_HANDLE",
    ERROR_NOT_FOUND: "ERROR_NOT_FOUND",
    ERROR_ALREADY_EXISTS: "ERROR_ALREADY_EXISTS",
    ERROR_SERVICE_NOT_ACTIVE: "ERROR_SERVICE_NOT_ACTIVE",
    RPC_S_SERVER_UNAVAILABLE: "RPC_S_SERVER_UNAVAILABLE",
    RPC_S_CALL_FAILED: "RPC_S_CALL_FAILED",
    HCN_E_NETWORK_NOT_FOUND: "HCN_E_NETWORK_NOT_FOUND",
    HCN_E_ENDPOINT_NOT_FOUND: "HCN_E_ENDPOINT_NOT_FOUND",
    HCN_E_POLICY_NOT_FOUND: "HCN_E_POLICY_NOT_FOUND",
    HCN_E_INVALID_ENDPOINT: "HCN_E_INVALID_ENDPOINT",
    HCN_E_INVALID_POLICY: "HCN_E_INVALID_POLICY",
    HCN_E_INVALID_POLICY_TYPE: "HCN_E_INVALID_POLICY_TYPE",
    HCN_E_POLICY_ALREADY_EXISTS: "HCN_E_POLICY_ALREADY_EXISTS",
    HCN_E_PORT_ALREADY_EXISTS: "HCN_E_PORT_ALREADY_EXISTS",
    HCN_E_REQUEST_UNSUPPORTED: "HCN_E_REQUEST_UNSUPPORTED",
    HCN_E_INVALID_JSON: "HCN_E_INVALID_JSON",
    HCN_E_MANAGER_STOPPED: "HCN_E_MANAGER_STOPPED",
    HCN_E_ENTITY_HAS_REFERENCES: "HCN_E_ENTITY_HAS_REFERENCES",
    HCN_E_INVALID_INTERNAL_PORT: "HCN_E_INVALID_INTERNAL_PORT",
}

# HNS restarting or its RPC endpoint gone: the same call can succeed later.
TRANSIENT = frozenset(
    {RPC_S_SERVER_UNAVAILABLE, RPC_S_CALL_FAILED, ERROR_SERVICE_NOT_ACTIVE, HCN_E_MANAGER_STOPPED}
)
NOT_FOUND = frozenset(
    {ERROR_NOT_FOUND, HCN_E_NETWORK_NOT_FOUND, HCN_E_ENDPOINT_NOT_FOUND, HCN_E_POLICY_NOT_FOUND}
)
ALREADY_EXISTS = frozenset(
    {ERROR_ALREADY_EXISTS, HCN_E_POLICY_ALREADY_EXISTS, HCN_E_PORT_ALREADY_EXISTS}
)


class HcnError(BackendError):
    """An HCN call failed; ``hresult`` is the unsigned 32-bit code, ``record`` HNS's ErrorRecord."""

    def __init__(self, hresult: int, operation: str, record: str = "") -> None:
        self.hresult = hresult & 0xFFFFFFFF
        self.operation = operation
        self.record = record
        name = NAMES.get(self.hresult, "HRESULT")
        detail = _record_message(record)
        super().__init__(
            f"{operation}: {name} 0x{self.hresult:08x}" + (f": {detail}" if detail else "")
        )

    @property
    def not_found(self) -> bool:
        return self.hresult in NOT_FOUND

    @property
    def already_exists(self) -> bool:
        return self.hresult in ALREADY_EXISTS


class HcnTransientError(HcnError, TransientBackendError):
    """HNS is unreachable or restarting; the engine retries the apply."""


def error_for(hresult: int, operation: str, record: str = "") -> HcnError:
    """The typed error for a failed call (a transient one when retrying can help)."""
    cls = HcnTransientError if (hresult & 0xFFFFFFFF) in TRANSIENT else HcnError
    return cls(hresult, operation, record)


def error_record(hresult: int, message: str) -> str:
    """HNS's ErrorRecord JSON, as the emulator returns it (shape seen in kube-proxy issues)."""
    return json.dumps({"Success": False, "Error": message, "ErrorCode": hresult & 0xFFFFFFFF})


def _record_message(record: str) -> str:
    if not record:
        return ""
    try:
        parsed = json.loads(record)
    except ValueError:
        return record
    if isinstance(parsed, dict) and isinstance(parsed.get("Error"), str):
        return str(parsed["Error"])
    return record
