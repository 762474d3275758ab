"""Ownership and identity of HCN objects this backend writes.

HNS keeps no labels on load balancers (their only free-form value is the
GUID), so ownership lives in the GUID. Every GUID we choose is an RFC 9562
version-8 UUID (the version reserved for vendor-specific layouts) whose first
four bytes are a hash of the instance name and whose remaining bits hash the
object's identity:

    oooooooo-iiii-8iii-Viii-iiiiiiiiiiii   o: owner tag, i: identity hash

HNS assigns random version-4 GUIDs, so a foreign object carries our tag with
probability 2^-36; a restarted instance recognises its own objects from the
GUID alone, and the same content always gets the same GUID (creation is
idempotent: ``ERROR_ALREADY_EXISTS`` means "already there"). HcnCreate* takes
the GUID as its ``Id`` argument; if a host ever ignored it the reconciler
refuses to continue (see :mod:`.reconcile`) rather than leak unowned objects.

A load balancer's identity is its content, as kube-proxy's
``loadBalancerIdentifier`` with its endpoints hash (XOR of SHA-1 of the
upper-cased endpoint GUIDs), extended with every field we set, so a changed
flag or endpoint set is a different load balancer.

Endpoint ACLs carry ``Id`` = ``"<instance>|<rule>"``; HNS keeps it
(Azure NPM relies on this), and it tells our ACLs from a CNI's.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from typing import Any

from dataplane.backends.windows_hns import schema

_VERSION = 8


def owner_tag(instance: str) -> bytes:
    return hashlib.sha256(b"dataplane/" + instance.encode()).digest()[:4]


def owned_guid(instance: str, identity: str) -> uuid.UUID:
    """The GUID an object of ``identity`` gets when ``instance`` creates it."""
    raw = bytearray(owner_tag(instance) + hashlib.sha256(identity.encode()).digest()[:12])
    raw[6] = (raw[6] & 0x0F) | (_VERSION << 4)
    raw[8] = (raw[8] & 0x3F) | 0x80
    return uuid.UUID(bytes=bytes(raw))


def is_owned(instance: str, guid: str | uuid.UUID) -> bool:
    value = guid if isinstance(guid, uuid.UUID) else uuid.UUID(guid)
    return value.version == _VERSION and value.bytes[:4] == owner_tag(instance)


def endpoints_hash(endpoint_ids: list[str]) -> str:
    """kube-proxy's hashEndpoints: XOR of SHA-1 of each upper-cased endpoint GUID."""
    acc = bytes(20)
    for ep in endpoint_ids:
        digest = hashlib.sha1(ep.upper().encode()).digest()
        acc = bytes(a ^ b for a, b in zip(acc, digest, strict=True))
    return acc.hex()


def load_balancer_identity(doc: Mapping[str, Any]) -> str:
    """The content key of a load balancer, equal for a rendered and a read-back document.

    Fields HNS fills in with defaults are normalised (absent Flags = 0), list
    order is ignored where HNS ignores it, GUIDs compare case-insensitively.
    """
    mappings = sorted(
        (
            m["Protocol"],
            m["InternalPort"],
            m["ExternalPort"],
            m.get("DistributionType", 0),
            m.get("Flags", 0),
        )
        for m in doc["PortMappings"]
    )
    vips = ",".join(sorted(doc.get("FrontendVIPs") or []))
    parts = [
        "|".join(":".join(map(str, m)) for m in mappings),
        vips,
        str(doc.get("SourceVIP") or ""),
        str(doc.get("Flags", 0)),
        endpoints_hash(list(doc["HostComputeEndpoints"])),
    ]
    return "/".join(parts)


def load_balancer_frontend(doc: Mapping[str, Any]) -> str:
    """What a load balancer answers on (VIPs, protocol, port, family): the key of its GUID.

    Keying the GUID on the frontend rather than the whole content lets an
    in-place modify keep the GUID, and makes "ours, same frontend, other
    content" a replacement rather than a duplicate HNS would refuse.
    """
    vips = ",".join(sorted(doc.get("FrontendVIPs") or [])) or "*"
    ports = ",".join(sorted(f"{m['Protocol']}:{m['ExternalPort']}" for m in doc["PortMappings"]))
    return f"lb/{vips}/{ports}/{doc.get('Flags', 0) & schema.LB_FLAG_IPV6}"


def acl_id(instance: str, rule: str) -> str:
    return f"{instance}|{rule}"


def is_owned_acl(instance: str, policy: Mapping[str, Any]) -> bool:
    settings = policy.get("Settings")
    return (
        policy.get("Type") == "ACL"
        and isinstance(settings, Mapping)
        and str(settings.get("Id", "")).startswith(instance + "|")
    )
