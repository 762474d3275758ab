"""The default name of a pod's host-side interface, shared by everyone who needs it.

A CNI, the lab and the Kubernetes converter must agree on it without asking
each other, so it is a pure function of the pod's identity.
"""

from __future__ import annotations

import hashlib

from dataplane.model.settings import DEFAULT_WORKLOAD_INTERFACE_PREFIX


def workload_interface_name(
    namespace: str, pod: str, prefix: str = DEFAULT_WORKLOAD_INTERFACE_PREFIX
) -> str:
    """``prefix`` + 11 hex chars of sha1("namespace/pod"), cut to IFNAMSIZ-1 (15).

    44 bits of hash make a collision between two pods of one node negligible.
    """
    digest = hashlib.sha1(f"{namespace}/{pod}".encode(), usedforsecurity=False).hexdigest()
    return (prefix + digest[:11])[:15]
