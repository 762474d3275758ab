"""Document-level HCN operations composed from transport calls, the way hcsshim does.

``get`` is Open → QueryProperties → Close; ``list`` is Enumerate then a get
per GUID; ``create`` is Create → QueryProperties → Close; ``modify`` is
Open → Modify → Close. Handles are always closed, also when a call in
between fails, so a failing HNS does not leak handles.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from dataplane.backends.windows_hns import schema
from dataplane.backends.windows_hns.transport import Handle, HcnTransport, Kind
from dataplane.errors import BackendError

Document = dict[str, Any]

# HNS features by version (hcsshim hcnglobals.go / hcnsupport.go).
_FEATURE_VERSIONS: dict[str, tuple[int, int]] = {
    "ACL": (7, 2),
    "DSR": (10, 2),  # 9.3-9.x also had it; treated as absent there
    "IPv6DualStack": (11, 10),
    "SessionAffinity": (12, 0),
}


class HcnClient:
    """Reads and writes whole HCN documents through a :class:`HcnTransport`."""

    def __init__(self, transport: HcnTransport) -> None:
        self.transport = transport
        self._query = json.dumps(schema.query())

    def list(self, kind: Kind, filter_: dict[str, str] | None = None) -> list[Document]:
        query = json.dumps(schema.query(json.dumps(filter_) if filter_ else ""))
        ids = json.loads(self.transport.enumerate(kind, query) or "[]")
        return [self.get(kind, uuid.UUID(str(i))) for i in ids]

    def get(self, kind: Kind, guid: uuid.UUID) -> Document:
        handle = self.transport.open(kind, guid)
        try:
            return self._properties(kind, handle)
        finally:
            self.transport.close(kind, handle)

    def create(
        self, kind: Kind, guid: uuid.UUID, document: Document, network: uuid.UUID | None = None
    ) -> Document:
        net_handle = self.transport.open("Network", network) if network else None
        try:
            handle = self.transport.create(kind, guid, json.dumps(document), net_handle)
            try:
                return self._properties(kind, handle)
            finally:
                self.transport.close(kind, handle)
        finally:
            if net_handle is not None:
                self.transport.close("Network", net_handle)

    def modify(self, kind: Kind, guid: uuid.UUID, request: Document) -> None:
        handle = self.transport.open(kind, guid)
        try:
            self.transport.modify(kind, handle, json.dumps(request))
        finally:
            self.transport.close(kind, handle)

    def delete(self, kind: Kind, guid: uuid.UUID) -> None:
        self.transport.delete(kind, guid)

    def features(self) -> frozenset[str]:
        """Named HNS features this host supports, from its version."""
        version = self.transport.hns_version()
        return frozenset(name for name, since in _FEATURE_VERSIONS.items() if version >= since)

    def _properties(self, kind: Kind, handle: Handle) -> Document:
        doc = json.loads(self.transport.query_properties(kind, handle, self._query))
        if not isinstance(doc, dict):
            raise BackendError(f"HNS returned a non-object for a {kind}: {doc!r}")
        return doc
