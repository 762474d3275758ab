"""Names the lab gives to things, in one place.

Every namespace a lab creates starts with a per-run prefix (``dpl`` plus five
hex digits), so concurrent labs never collide and ``dataplane lab clean`` can
find the leftovers of a crashed run by name alone.  Interface names live
inside lab namespaces only and stay within the kernel's 15-character limit.
"""

from __future__ import annotations

import re
import secrets

PREFIX_FAMILY = "dpl"
"""Every lab prefix, and so every lab namespace name, starts with this."""

_PREFIX_RE = re.compile(r"^dpl[0-9a-f]{5}$")
_NETNS_RE = re.compile(r"^(dpl[0-9a-f]{5})-")

FABRIC_BRIDGE = "br0"
"""The bridge in the fabric namespace, and the one behind the router."""

HOST_UPLINK = "eth0"
"""The uplink of every node, client and router namespace, and a pod's interface."""


def new_prefix() -> str:
    """Return a fresh per-run prefix such as ``dpl3f9a2``."""
    return PREFIX_FAMILY + secrets.token_hex(3)[:5]


def is_prefix(value: str) -> bool:
    """Tell whether ``value`` has the shape of a lab prefix."""
    return _PREFIX_RE.match(value) is not None


def prefix_of_netns(netns: str) -> str | None:
    """Return the lab prefix a namespace name belongs to, or None if it is not a lab's."""
    match = _NETNS_RE.match(netns)
    return match.group(1) if match else None


def netns_name(prefix: str, role: str, name: str = "") -> str:
    """Name a lab namespace: ``<prefix>-<role>[-<name>]``."""
    return f"{prefix}-{role}-{name}" if name else f"{prefix}-{role}"


def bridge_port_name(kind: str, index: int) -> str:
    """Name the bridge-side end of a host's uplink veth: ``fn0`` for node 0 on the fabric,
    ``fc1`` for fabric client 1, ``fr0`` for the router, ``rc2`` for client 2 behind the router.
    """
    return f"{kind}{index}"
