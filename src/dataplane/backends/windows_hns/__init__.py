"""The Windows HNS backend: HCN v2 load balancers and endpoint ACLs.

Rendering is pure (:mod:`.render_lb`, :mod:`.render_acl`); delivery goes
through a transport: computenetwork.dll via ctypes on Windows (:mod:`._hcn`)
or the schema-enforcing emulator (:mod:`.emulator`). See docs/windows-hns.md.
"""

from dataplane.backends.windows_hns.backend import HnsBackend

__all__ = ["HnsBackend"]
