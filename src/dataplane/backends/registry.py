"""Finding a backend by name: built-ins, then the ``dataplane.backends`` entry points.

Nothing is imported until a backend is asked for, so choosing ``fake`` never
loads libbpf or python-iptables, and a missing optional dependency only hurts
the backend that needs it.
"""

from __future__ import annotations

import importlib
import sys
from importlib.metadata import entry_points

from dataplane.backends.base import Backend
from dataplane.errors import BackendUnavailableError, ConfigError, UnknownBackendError

ENTRY_POINT_GROUP = "dataplane.backends"

BUILTINS: dict[str, str] = {
    "fake": "dataplane.backends.fake:FakeBackend",
    "iptables": "dataplane.backends.iptables:IptablesBackend",
    "ebpf": "dataplane.backends.ebpf:EbpfBackend",
    "windows-hns": "dataplane.backends.windows_hns:HnsBackend",
}

_registered: dict[str, type[Backend]] = {}


def register(name: str, cls: type[Backend]) -> None:
    """Register a backend class under ``name`` (for tests and embedders)."""
    _registered[name] = cls


def known_names() -> set[str]:
    names = set(BUILTINS) | set(_registered)
    names |= {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return names


def _load(target: str) -> type[Backend]:
    module, _, attr = target.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise BackendUnavailableError(f"cannot load backend {target}: {exc}") from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise ConfigError(f"{target} is not a dataplane Backend")
    return cls


def backend_class(name: str) -> type[Backend]:
    """The class registered as ``name``; ``auto`` picks the best one for this host."""
    if name == "auto":
        return _auto()
    if name in _registered:
        return _registered[name]
    if name in BUILTINS:
        return _load(BUILTINS[name])
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=name):
        return _load(ep.value)
    raise UnknownBackendError(name, known_names() | {"auto"})


def _auto() -> type[Backend]:
    """windows-hns on Windows; else ebpf where the kernel supports it, else iptables."""
    if sys.platform == "win32":
        return backend_class("windows-hns")
    try:
        ebpf = backend_class("ebpf")
        if ebpf.unavailable_reason() is None:
            return ebpf
    except BackendUnavailableError:
        pass
    return backend_class("iptables")
