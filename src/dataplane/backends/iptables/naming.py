"""Names and mark bits of one backend instance's kernel objects.

Every chain and IP set this backend creates is called ``DP-<inst>-…`` where
``<inst>`` is a 5-character hash of the instance name: two instances in one
namespace never share a name, a restarted process recognises its own objects
by prefix alone, and nothing without the prefix is ever touched. Chains whose
identity is a structure (a frontend, an endpoint) hash that identity; shared
chains (policies, tiers, backend pools) hash their content, so equal content
is one chain and a content change is a new name.

Limits: iptables chain names are at most 28 characters, ipset names 31.
"""

from __future__ import annotations

import base64
import hashlib

import attrs

CHAIN_MAX = 28
SET_MAX = 31


def digest(text: str, length: int = 12) -> str:
    """A base32 SHA-256 digest: stable across processes, valid in chain and set names."""
    raw = hashlib.sha256(text.encode()).digest()
    return base64.b32encode(raw).decode()[:length]


@attrs.frozen
class Names:
    """The naming scheme of one instance; fixed chains are attributes, the rest are derived."""

    instance: str
    prefix: str = attrs.field(init=False, eq=False)  # computed once: every name starts with it

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "prefix", f"DP-{digest(self.instance, 5)}-")

    def fixed(self, what: str) -> str:
        """A fixed chain or set (``PRE``, ``SVC``, ``FE``…): one per table per instance."""
        return self.prefix + what

    def hashed(self, kind: str, identity: str) -> str:
        """A chain or set named by a hash of ``identity`` (a key or the content)."""
        name = f"{self.prefix}{kind}-{digest(identity)}"
        assert len(name) <= CHAIN_MAX, name
        return name

    def owns(self, name: str) -> bool:
        return name.startswith(self.prefix)


def parse_mark_mask(value: object) -> int:
    """The ``iptables_mark_mask`` option: an int or "0x…" string with at least 4 bits set."""
    mask = int(value, 0) if isinstance(value, str) else int(value)  # type: ignore[call-overload]
    if bin(mask).count("1") < 4 or mask >> 32:
        raise ValueError(f"iptables_mark_mask {value!r} needs 4 set bits within 32 bits")
    return mask


@attrs.frozen
class Marks:
    """The four packet-mark bits this backend uses, taken from the lowest set bits of a mask.

    ``masq``: SNAT this connection in POSTROUTING (kube-proxy's 0x4000).
    ``accept``: a policy stage allowed the packet (set, then checked by the caller).
    ``passed``: a Pass rule left the tier.
    ``early``: untracked or preDNAT policy allowed it, which skips normal host policy.
    """

    masq: int
    accept: int
    passed: int
    early: int

    @classmethod
    def from_mask(cls, mask: int) -> Marks:
        bits = [1 << i for i in range(32) if mask >> i & 1][:4]
        return cls(*bits)

    @staticmethod
    def hex(value: int) -> str:
        return f"0x{value:x}"

    def set(self, bits: int) -> str:
        """Rule text that sets ``bits`` (as iptables-save prints ``--or-mark``)."""
        return f"-j MARK --set-xmark {self.hex(bits)}/{self.hex(bits)}"

    def clear(self, bits: int) -> str:
        return f"-j MARK --set-xmark 0x0/{self.hex(bits)}"

    def has(self, bits: int) -> str:
        return f"-m mark --mark {self.hex(bits)}/{self.hex(bits)}"

    def has_any(self, bits: int) -> str:
        return f"-m mark ! --mark 0x0/{self.hex(bits)}"
