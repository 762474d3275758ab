"""The private nftables table (``iptables_nat="nftables"``): read back, plan, write.

The table is ``ip DP-<inst>``: everything in it belongs to this instance.
Its chains, set declarations and elements live in the same :class:`Store`
as the iptables chains, under the pseudo-tables ``nft`` and ``nftset`` and
member names ``nft:<set>`` (see ``render_nft``), so an incremental apply
touches only what the delta named. One ``nft -f`` script is one kernel
transaction: it applies completely or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from dataplane.backends.iptables.readback import Installed
from dataplane.backends.iptables.render_nft import (
    BASE_CHAINS,
    FIXED_SETS,
    NFT,
    NFT_MEMBERS,
    NFTSET,
    members_key,
)
from dataplane.backends.iptables.store import ChainKey, Store

FAMILY = "ip"
ELEMENTS_PER_COMMAND = 5000


def is_nft(key: ChainKey) -> bool:
    return key[0] in (NFT, NFTSET)


def parse_list(text: str, into: Installed) -> None:
    """``nft list table`` output → chains with their rules, declared sets, set elements.

    Members of timeout sets (affinity clients the kernel adds itself) are not
    recorded: they are never managed."""
    kind = name = ""
    dynamic = False
    elements: list[str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if elements is not None:  # inside a multi-line "elements = { … }"
            elements.append(line)
            if line.endswith("}"):
                _record_elements(into, name, " ".join(elements), dynamic)
                elements = None
        elif line.startswith(("chain ", "set ", "map ")) and line.endswith("{"):
            kind, name = line.split()[0], line.split()[1]
            dynamic = False
            key: ChainKey = (NFT, name) if kind == "chain" else (NFTSET, name)
            into.chains[key] = ()
        elif line == "}":
            kind = ""
        elif kind == "chain" and line and not (line.startswith("type ") and " hook " in line):
            into.chains[(NFT, name)] = (*into.chains[(NFT, name)], line)
        elif kind in ("set", "map") and line.startswith("flags ") and "timeout" in line:
            dynamic = True
        elif kind in ("set", "map") and line.startswith("elements = {"):
            elements = [line.removeprefix("elements = {")]
            if line.endswith("}"):
                _record_elements(into, name, elements[0], dynamic)
                elements = None


def _record_elements(into: Installed, set_name: str, text: str, dynamic: bool) -> None:
    if dynamic:
        return
    body = text.strip().removesuffix("}")
    into.members[members_key(set_name)] = frozenset(e.strip() for e in body.split(",") if e.strip())


def script(
    store: Store,
    installed: Installed,
    chain_keys: Iterable[ChainKey],
    set_names: Iterable[str],
    table: str,
) -> str:
    """The ``nft -f`` input that brings the table from ``installed`` to ``store`` for the
    given chains and sets; empty when nothing differs."""
    keys = sorted(k for k in chain_keys if is_nft(k))
    member_names = sorted(n for n in set_names if n.startswith(NFT_MEMBERS))
    if not keys and not member_names:
        return ""
    t = f"{FAMILY} {table}"
    if not any(is_nft(k) for k in store.chains):
        exists = any(is_nft(k) for k in installed.chains)
        return f"delete table {t}\n" if exists else ""
    want = store.chains
    have = installed.chains
    new = [k for k in keys if k in want and k not in have]
    gone = [k for k in keys if k in have and k not in want]
    lines = []
    for kind, name in new:
        if kind == NFTSET:
            decl = want[(kind, name)][0]
            lines.append(f"add {FIXED_SETS.get(name, 'set')} {t} {name} {{ {decl} }}")
        elif name in BASE_CHAINS:
            lines.append(f"add chain {t} {name} {{ {BASE_CHAINS[name]} }}")
        else:
            lines.append(f"add chain {t} {name}")
    for key in keys:
        if key[0] == NFT and key in want and want[key] != have.get(key):
            if key in have:
                lines.append(f"flush chain {t} {key[1]}")
            lines += [f"add rule {t} {key[1]} {rule}" for rule in want[key]]
    adds = []
    for member_name in member_names:
        set_name = member_name.removeprefix(NFT_MEMBERS)
        wanted = store.members_of(member_name)
        found = installed.members.get(member_name, frozenset())
        lines += _elements(f"delete element {t} {set_name}", {_key(e) for e in found - wanted})
        adds += _elements(f"add element {t} {set_name}", wanted - found)
    lines += adds  # after every delete: a changed map value is a delete and an add of its key
    lines += [f"flush chain {t} {name}" for kind, name in gone if kind == NFT]
    lines += [f"delete chain {t} {name}" for kind, name in gone if kind == NFT]
    lines += [f"delete set {t} {name}" for kind, name in gone if kind == NFTSET]
    if not lines:
        return ""
    return "\n".join([f"add table {t}", *lines]) + "\n"


def _key(element: str) -> str:
    return element.split(" : ", 1)[0]


def _elements(command: str, elements: Iterable[str]) -> list[str]:
    ordered = sorted(elements)
    return [
        f"{command} {{ {', '.join(ordered[i : i + ELEMENTS_PER_COMMAND])} }}"
        for i in range(0, len(ordered), ELEMENTS_PER_COMMAND)
    ]
