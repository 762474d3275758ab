"""Restore payloads: the minimal text that turns what is installed into what is wanted.

``iptables-restore --noflush`` applies each ``*table … COMMIT`` block
atomically and leaves chains it is not told about alone; ``:CHAIN - [0:0]``
creates or flushes a chain, so a changed chain is declared and refilled in
the same transaction, and a chain to remove is flushed and then ``-X``-ed
after the rules that referenced it were rewritten. Only chains whose wanted
content differs from the installed content are written: an endpoint change
at 10k services rewrites one or two chains.

IP sets go in two ``ipset restore`` steps around the iptables write: sets and
members first (rules may only reference existing sets), destruction last
(a referenced set cannot be destroyed).

Large payloads for iptables-nft are split (``max_names``): iptables-nft 1.8.9
keeps every chain name a restore mentions (declared, appended to, jumped to)
in a sorted linked list, searched from its head for each command, so one
restore of 20k chains spends seconds in ``strcmp`` (10k services: 5.5 s
against 2.4 s for the same rules without ``--noflush``). Each split restore
mentions at most ``max_names`` chains, and they go bottom-up: a chain is
written after every chain it jumps to, changed chains that nothing references
yet stay unreachable until the chain above them is switched, and removals
come last, so every intermediate state is the old or the new version of each
chain. Such a write is atomic per chain, not per table; a failure in the
middle leaves a consistent mix that the next full apply converges.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import pairwise

import attrs

from dataplane.backends.iptables.readback import Installed
from dataplane.backends.iptables.render_nft import NFT_MEMBERS
from dataplane.backends.iptables.store import TABLES, ChainKey, Rules, SetSpec, Store


@attrs.frozen
class Plan:
    """What one apply writes: ``restores`` are successive ``iptables-restore`` inputs."""

    sets_before: str = ""
    restores: tuple[str, ...] = ()
    sets_after: str = ""

    @property
    def empty(self) -> bool:
        return not (self.sets_before or self.restores or self.sets_after)


def hook_lines(
    wanted: Mapping[tuple[str, str], str], found: Mapping[tuple[str, str], list[str]]
) -> dict[str, list[str]]:
    """Per table: insert missing jumps first in their builtin chain, delete extra ones."""
    out: dict[str, list[str]] = {}
    for key in sorted(set(wanted) | set(found)):
        table, builtin = key
        have = list(found.get(key, []))
        want = wanted.get(key)
        lines = out.setdefault(table, [])
        if want in have:
            have.remove(want)
        elif want is not None:
            lines.append(f"-I {builtin} 1 {want}")
        lines += [f"-D {builtin} {rule}" for rule in have]
    return {t: lines for t, lines in out.items() if lines}


def table_payloads(
    wanted: Mapping[ChainKey, Rules],
    installed: Mapping[ChainKey, Rules],
    keys: Iterable[ChainKey],
    hooks: Mapping[str, list[str]],
    max_names: int | None = None,
) -> dict[str, list[str]]:
    """Per table that has something to change, its restore blocks in the order to apply.

    One block per table, unless the table's changes mention more than ``max_names``
    chains (see the module docstring)."""
    changed: dict[str, dict[str, Rules | None]] = {t: {} for t in TABLES}
    for table, chain in sorted(keys):
        if table not in changed:  # the nftables table's objects: see ``nft``
            continue
        want, have = wanted.get((table, chain)), installed.get((table, chain))
        if want != have:
            changed[table][chain] = want
    out = {}
    for table in TABLES:
        chains, table_hooks = changed[table], hooks.get(table, [])
        if not (chains or table_hooks):
            continue
        if max_names is None or _mentioned(chains) <= max_names:
            out[table] = [_block(table, chains, table_hooks)]
        else:
            out[table] = _split(table, chains, table_hooks, max_names)
    return out


def _block(table: str, chains: Mapping[str, Rules | None], hooks: list[str]) -> str:
    """``:CHAIN`` for every chain (create or flush), refills, hook changes, then ``-X``
    of the chains whose wanted content is None."""
    fill = [f"-A {chain} {rule}" for chain, rules in chains.items() for rule in rules or ()]
    body = [f":{chain} - [0:0]" for chain in chains] + fill + hooks
    body += [f"-X {chain}" for chain, rules in chains.items() if rules is None]
    return "\n".join([f"*{table}", *body, "COMMIT", ""])


def _targets(chains: Mapping[str, Rules | None]) -> dict[str, set[str]]:
    """The targets each chain's rules name (``-j``/``-g``): chains, and builtins like DNAT,
    which iptables-nft lists the same way."""
    out: dict[str, set[str]] = {}
    for chain, rules in chains.items():
        pairs = (pair for rule in rules or () for pair in pairwise(rule.split()))
        out[chain] = {b for a, b in pairs if a in ("-j", "-g")}
    return out


def _mentioned(chains: Mapping[str, Rules | None]) -> int:
    return len(set(chains).union(*_targets(chains).values()))


def _split(
    table: str, chains: Mapping[str, Rules | None], hooks: list[str], max_names: int
) -> list[str]:
    """Bottom-up blocks mentioning at most ``max_names`` chains; hooks, then removals, last."""
    targets = _targets(chains)
    rewrite = {c for c, rules in chains.items() if rules is not None}
    height: dict[str, int] = {}

    def level(chain: str) -> int:
        if chain not in height:
            below = [level(t) for t in targets[chain] & rewrite if t != chain]
            height[chain] = 1 + max(below, default=-1)
        return height[chain]

    groups: list[list[str]] = [[]]
    names: set[str] = set()
    for chain in sorted(rewrite, key=lambda c: (level(c), c)):
        mentions = {chain} | targets[chain]
        if groups[-1] and len(names | mentions) > max_names:
            groups.append([])
            names = set()
        groups[-1].append(chain)
        names |= mentions
    # the hooks point at fixed chains: they change with the last rewrite, after all below it
    blocks = [
        _block(table, {c: chains[c] for c in group}, hooks if i == len(groups) - 1 else [])
        for i, group in enumerate(groups)
    ]
    gone = sorted(set(chains) - rewrite)
    chunks = [gone[i : i + max_names] for i in range(0, len(gone), max_names)]
    blocks += [_block(table, dict.fromkeys(chunk, ()), []) for chunk in chunks]  # unlink all first
    blocks += [_block(table, dict.fromkeys(chunk), []) for chunk in chunks]
    return blocks


def _set_lines(
    spec: SetSpec, have: SetSpec | None, want: frozenset[str], members: frozenset[str]
) -> list[str]:
    lines = []
    if have is not None and have != spec:
        lines.append(f"destroy {spec.name}")  # type or timeout changed: only a new set will do
        members = frozenset()
    if have != spec:
        lines.append(spec.create_line())
    if spec.timeout is None:
        lines += [f"add {spec.name} {m}" for m in sorted(want - members)]
        lines += [f"del {spec.name} {m}" for m in sorted(members - want)]
    return lines


def plan(
    store: Store,
    installed: Installed,
    chain_keys: Iterable[ChainKey],
    set_names: Iterable[str],
    hooks: Mapping[str, list[str]],
    max_names: int | None = None,
) -> Plan:
    """The writes that bring ``installed`` to ``store`` for the given chains and sets."""
    before: list[str] = []
    after: list[str] = []
    for name in sorted(set_names):
        spec = store.sets.get(name)
        if spec is None:
            if name in installed.sets:
                after.append(f"destroy {name}")
            continue
        before += _set_lines(
            spec,
            installed.sets.get(name),
            store.members_of(name),
            installed.members.get(name, frozenset()),
        )
    return Plan(
        sets_before="\n".join(before) + "\n" if before else "",
        restores=_restores(
            table_payloads(store.chains, installed.chains, chain_keys, hooks, max_names)
        ),
        sets_after="\n".join(after) + "\n" if after else "",
    )


def _restores(blocks: Mapping[str, list[str]]) -> tuple[str, ...]:
    """One restore for all tables (each block atomic), unless a table had to be split."""
    if all(len(b) == 1 for b in blocks.values()):
        return ("".join(b[0] for b in blocks.values()),) if blocks else ()
    return tuple(block for b in blocks.values() for block in b)


def record(
    installed: Installed,
    store: Store,
    chain_keys: Iterable[ChainKey],
    set_names: Iterable[str],
    hooks_now: Mapping[tuple[str, str], str],
) -> None:
    """After a successful write: ``installed`` now holds what ``store`` wanted."""
    for key in chain_keys:
        if key in store.chains:
            installed.chains[key] = store.chains[key]
        else:
            installed.chains.pop(key, None)
    for name in set_names:
        if name.startswith(NFT_MEMBERS):
            installed.members[name] = store.members_of(name)
        elif name in store.sets:
            installed.sets[name] = store.sets[name]
            installed.members[name] = store.members_of(name)
        else:
            installed.sets.pop(name, None)
            installed.members.pop(name, None)
    installed.hooks = {key: [rule] for key, rule in hooks_now.items()}


def removal(installed: Installed, *, sets: bool, max_names: int | None = None) -> Plan:
    """Everything ``installed`` holds, removed (``cleanup``); its sets too if ``sets``."""
    hooks = hook_lines({}, installed.hooks)
    tables = table_payloads({}, installed.chains, installed.chains.keys(), hooks, max_names)
    destroy = "".join(f"destroy {name}\n" for name in sorted(installed.sets)) if sets else ""
    return Plan(restores=_restores(tables), sets_after=destroy)
