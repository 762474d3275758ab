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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import attrs

from dataplane.backends.iptables.readback import Installed
from dataplane.backends.iptables.store import TABLES, ChainKey, Rules, SetSpec, Store


@attrs.frozen
class Plan:
    """What one apply writes."""

    sets_before: str = ""
    tables: Mapping[str, str] = attrs.field(factory=dict)
    sets_after: str = ""

    @property
    def empty(self) -> bool:
        return not (self.sets_before or self.tables or self.sets_after)


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
) -> dict[str, str]:
    """One restore block per table that has something to change."""
    declare: dict[str, list[str]] = {t: [] for t in TABLES}
    fill: dict[str, list[str]] = {t: [] for t in TABLES}
    delete: dict[str, list[str]] = {t: [] for t in TABLES}
    for key in sorted(keys):
        table, chain = key
        want, have = wanted.get(key), installed.get(key)
        if want == have:
            continue
        declare[table].append(f":{chain} - [0:0]")
        if want is None:
            delete[table].append(f"-X {chain}")
        else:
            fill[table].extend(f"-A {chain} {rule}" for rule in want)
    out = {}
    for table in TABLES:
        body = declare[table] + fill[table] + hooks.get(table, []) + delete[table]
        if body:
            out[table] = "\n".join([f"*{table}", *body, "COMMIT", ""])
    return out


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
        tables=table_payloads(store.chains, installed.chains, chain_keys, hooks),
        sets_after="\n".join(after) + "\n" if after else "",
    )


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
        if name in store.sets:
            installed.sets[name] = store.sets[name]
            installed.members[name] = store.members_of(name)
        else:
            installed.sets.pop(name, None)
            installed.members.pop(name, None)
    installed.hooks = {key: [rule] for key, rule in hooks_now.items()}


def removal(installed: Installed, *, sets: bool) -> Plan:
    """Everything ``installed`` holds, removed (``cleanup``); its sets too if ``sets``."""
    hooks = hook_lines({}, installed.hooks)
    tables = table_payloads({}, installed.chains, installed.chains.keys(), hooks)
    destroy = "".join(f"destroy {name}\n" for name in sorted(installed.sets)) if sets else ""
    return Plan(tables=tables, sets_after=destroy)
