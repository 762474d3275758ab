"""The seam between documents and delivery: computenetwork.dll's call shape.

The protocol mirrors the DLL one to one (``HcnEnumerate*``, ``HcnCreate*``,
``HcnOpen*``, ``HcnModify*``, ``HcnQuery*Properties``, ``HcnDelete*``,
``HcnClose*``), parameterised by object kind instead of spelled out per kind.
Keeping it this low means the emulator has to honour handles, GUIDs and
HRESULTs exactly as HNS does, and the composition of calls (open, query,
close) is written once in :mod:`.client` and exercised on Linux.

Every method raises :class:`~.hresult.HcnError` (or its transient subclass)
for a failed HRESULT or a non-empty ErrorRecord.
"""

from __future__ import annotations

import uuid
from typing import Literal, Protocol

Kind = Literal["Network", "Endpoint", "LoadBalancer"]
Handle = int

KINDS: tuple[Kind, ...] = ("Network", "Endpoint", "LoadBalancer")


class HcnTransport(Protocol):
    """computenetwork.dll (or something that behaves exactly like it)."""

    def enumerate(self, kind: Kind, query: str) -> str:
        """JSON array of the GUIDs matching ``query`` (a HostComputeQuery)."""
        ...

    def create(
        self, kind: Kind, guid: uuid.UUID, settings: str, network: Handle | None = None
    ) -> Handle:
        """Create an object; a zero GUID lets HNS choose. Endpoints need an open network."""
        ...

    def open(self, kind: Kind, guid: uuid.UUID) -> Handle: ...

    def modify(self, kind: Kind, handle: Handle, settings: str) -> None: ...

    def query_properties(self, kind: Kind, handle: Handle, query: str) -> str: ...

    def delete(self, kind: Kind, guid: uuid.UUID) -> None: ...

    def close(self, kind: Kind, handle: Handle) -> None: ...

    def hns_version(self) -> tuple[int, int]:
        """HNS's (major, minor) version, the basis of feature detection (hcnglobals.go)."""
        ...
