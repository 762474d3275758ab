"""The desired kernel state, kept in pieces so an update re-renders only what changed.

Each IR object (a frontend, an endpoint, an IP set, the dispatch trees…)
renders to a :class:`Piece`: the chains, IP sets and set members it needs.
The :class:`Store` holds the pieces of the current IR and their union, with
reference counts because pieces share content-named chains (a policy used by
many endpoints, a backend pool used by a service's ClusterIP and NodePort
frontends) and set members (hairpin entries). Replacing a piece marks the
chains and sets it touched as *dirty*; the restore builder then compares only
those with what is installed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping

import attrs

TABLES = ("raw", "mangle", "nat", "filter")
Rules = tuple[str, ...]
ChainKey = tuple[str, str]  # (table, chain)


@attrs.frozen
class SetSpec:
    """An IP set's name and type. Sets with a ``timeout`` hold dynamic members (affinity
    clients the kernel adds itself), so their members are never managed, only the set."""

    name: str
    type: str
    timeout: int | None = None

    def create_line(self) -> str:
        extra = f" timeout {self.timeout}" if self.timeout is not None else ""
        return f"create {self.name} {self.type} family inet maxelem 1048576{extra}"


@attrs.frozen
class Piece:
    """What one IR object needs installed."""

    chains: Mapping[ChainKey, Rules] = attrs.field(factory=dict)
    sets: tuple[SetSpec, ...] = ()
    members: Mapping[str, frozenset[str]] = attrs.field(factory=dict)


EMPTY = Piece()


def merge(*pieces: Piece) -> Piece:
    """One piece holding all of ``pieces`` (chains must not conflict; sets are deduplicated)."""
    chains: dict[ChainKey, Rules] = {}
    sets: dict[str, SetSpec] = {}
    members: dict[str, frozenset[str]] = {}
    for piece in pieces:
        chains.update(piece.chains)
        sets.update((spec.name, spec) for spec in piece.sets)
        for name, values in piece.members.items():
            members[name] = members.get(name, frozenset()) | values
    return Piece(chains=chains, sets=tuple(sets.values()), members=members)


@attrs.define
class Store:
    """The union of all pieces, with reference counts and the dirty sets since the last flush."""

    pieces: dict[Hashable, Piece] = attrs.field(factory=dict)
    chains: dict[ChainKey, Rules] = attrs.field(factory=dict)
    sets: dict[str, SetSpec] = attrs.field(factory=dict)
    members: dict[str, Counter[str]] = attrs.field(factory=dict)
    _chain_refs: Counter[ChainKey] = attrs.field(factory=Counter)
    _set_refs: Counter[str] = attrs.field(factory=Counter)
    dirty_chains: set[ChainKey] = attrs.field(factory=set)
    dirty_sets: set[str] = attrs.field(factory=set)

    def put(self, key: Hashable, piece: Piece) -> None:
        """Install ``piece`` under ``key``, replacing what was there."""
        old = self.pieces.get(key, EMPTY)
        if old == piece:
            return
        self._add(piece)
        self._remove(old)
        if piece.chains or piece.sets or piece.members:
            self.pieces[key] = piece
        else:
            self.pieces.pop(key, None)

    def drop(self, key: Hashable) -> None:
        self.put(key, EMPTY)

    def keys(self) -> Iterable[Hashable]:
        return self.pieces.keys()

    def _add(self, piece: Piece) -> None:
        for ck, rules in piece.chains.items():
            self._chain_refs[ck] += 1
            if self.chains.get(ck) != rules:
                self.chains[ck] = rules
                self.dirty_chains.add(ck)
        for spec in piece.sets:
            self._set_refs[spec.name] += 1
            if self.sets.get(spec.name) != spec:
                self.sets[spec.name] = spec
                self.dirty_sets.add(spec.name)
        for name, members in piece.members.items():
            counts = self.members.setdefault(name, Counter())
            for member in members:
                counts[member] += 1
            self.dirty_sets.add(name)

    def _remove(self, piece: Piece) -> None:
        for ck in piece.chains:
            self._chain_refs[ck] -= 1
            if not self._chain_refs[ck]:
                del self._chain_refs[ck]
                del self.chains[ck]
                self.dirty_chains.add(ck)
        for spec in piece.sets:
            self._set_refs[spec.name] -= 1
            if not self._set_refs[spec.name]:
                del self._set_refs[spec.name]
                del self.sets[spec.name]
                self.dirty_sets.add(spec.name)
        for name, members in piece.members.items():
            counts = self.members[name]
            for member in members:
                counts[member] -= 1
                if not counts[member]:
                    del counts[member]
            if not counts:
                del self.members[name]
            self.dirty_sets.add(name)

    def members_of(self, name: str) -> frozenset[str]:
        return frozenset(self.members.get(name, ()))

    def take_dirty(self) -> tuple[set[ChainKey], set[str]]:
        chains, sets = self.dirty_chains, self.dirty_sets
        self.dirty_chains, self.dirty_sets = set(), set()
        return chains, sets
