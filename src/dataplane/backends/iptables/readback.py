"""Reading back what is installed: own chains, own jumps in builtin chains, own IP sets.

Read-back uses ``iptables-{legacy,nft}-save`` and ``ipset save``: their text
is the grammar the renderers write (rules are rendered the way save prints
them), so a chain read back compares equal to its rendering and a restarted
process rewrites only what really differs. python-iptables (libiptc) sees
only the legacy flavour and parses rules into objects, not this text, so it
serves as an independent cross-check on legacy hosts
(:meth:`Runner.iptc_chain_counts`, shown by ``dump``), not the sync path.
"""

from __future__ import annotations

from collections.abc import Callable

import attrs

from dataplane.backends.iptables._exec import Runner
from dataplane.backends.iptables.store import TABLES, ChainKey, Rules, SetSpec

BUILTINS = frozenset({"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"})


@attrs.define
class Installed:
    """The kernel state this instance owns, as last read or written."""

    chains: dict[ChainKey, Rules] = attrs.field(factory=dict)
    hooks: dict[tuple[str, str], list[str]] = attrs.field(factory=dict)
    sets: dict[str, SetSpec] = attrs.field(factory=dict)
    members: dict[str, frozenset[str]] = attrs.field(factory=dict)


def parse_save(text: str, table: str, owns: Callable[[str], bool], into: Installed) -> None:
    """Own chains and own jumps found in builtin chains of save output; ``table`` until a
    ``*table`` line says otherwise (save without ``-t`` prints every table)."""
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":"):
            name = line[1:].split(" ", 1)[0]
            if owns(name):
                into.chains[(table, name)] = ()
        elif line.startswith("-A "):
            _, chain, rest = line.split(" ", 2)
            if owns(chain):
                key = (table, chain)
                into.chains[key] = (*into.chains.get(key, ()), rest)
            elif chain in BUILTINS and _targets_own(rest, owns):
                into.hooks.setdefault((table, chain), []).append(rest)


def _targets_own(rule: str, owns: Callable[[str], bool]) -> bool:
    words = rule.split()
    return any(
        w in ("-j", "-g") and i + 1 < len(words) and owns(words[i + 1]) for i, w in enumerate(words)
    )


def parse_ipset_save(text: str, owns: Callable[[str], bool], into: Installed) -> None:
    members: dict[str, set[str]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) < 3 or not owns(words[1]):
            continue
        if words[0] == "create":
            timeout = int(words[words.index("timeout") + 1]) if "timeout" in words else None
            into.sets[words[1]] = SetSpec(words[1], words[2], timeout)
            members.setdefault(words[1], set())
        elif words[0] == "add":
            members.setdefault(words[1], set()).add(words[2])
    into.members.update({name: frozenset(m) for name, m in members.items()})


def read(runner: Runner, save_tool: str, owns: Callable[[str], bool]) -> Installed:
    """Everything this instance owns in the namespace, read from the kernel.

    One ``save`` without ``-t`` reads every table that exists: iptables-nft fetches
    the whole ruleset for any save, so four ``-t`` calls cost four times as much
    (10k services: 2.4 s instead of 4.3 s); a table that does not exist holds
    nothing of ours, and legacy does not load one just to print it.
    """
    installed = Installed()
    parse_save(runner.run([save_tool]), TABLES[0], owns, installed)
    parse_ipset_save(runner.ipset_save(), owns, installed)
    return installed
