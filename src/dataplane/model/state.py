"""DesiredState: every object an agent wants, keyed by identity.

It is an immutable snapshot. ``apply()`` hands the engine a whole one;
transactions derive a new one with :meth:`DesiredState.changed`. Checks that
need more than one object (a policy naming a missing tier, two objects with
one key) live here, so they run for both paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

from dataplane.errors import Problem, ValidationError
from dataplane.model._base import ObjectKey
from dataplane.model.cluster import Namespace, Node
from dataplane.model.endpoints import HostEndpoint, WorkloadEndpoint
from dataplane.model.policy import DEFAULT_TIER, Policy, Profile, Tier
from dataplane.model.service import EndpointSet, Service
from dataplane.model.settings import NodeSettings

StateObject = (
    Service
    | EndpointSet
    | Node
    | Namespace
    | WorkloadEndpoint
    | HostEndpoint
    | Policy
    | Profile
    | Tier
    | NodeSettings
)
STATE_TYPES: tuple[type, ...] = StateObject.__args__

T = TypeVar("T")


class DesiredState:
    """An immutable set of desired-state objects, at most one per key."""

    __slots__ = ("_by_kind",)

    def __init__(self, objects: Iterable[StateObject] = ()) -> None:
        by_kind: dict[str, dict[ObjectKey, StateObject]] = {}
        for obj in objects:
            if not isinstance(obj, STATE_TYPES):
                raise ValidationError.single(
                    "DesiredState", "objects", f"not a desired-state object: {obj!r}"
                )
            key = obj.key
            kind = by_kind.setdefault(key.kind, {})
            if key in kind and kind[key] != obj:
                raise ValidationError.single(
                    str(key), "name", "given twice with different contents"
                )
            kind[key] = obj
        self._by_kind = by_kind
        self._check_references()

    def _check_references(self) -> None:
        tiers = {k.name for k in self._by_kind.get("Tier", {})} | {DEFAULT_TIER}
        for key, obj in self._by_kind.get("Policy", {}).items():
            assert isinstance(obj, Policy)
            if obj.tier not in tiers:
                raise ValidationError(str(key), [Problem("tier", f"no tier named {obj.tier!r}")])

    # ------------------------------------------------------------ reading
    def __iter__(self) -> Iterator[StateObject]:
        for objs in self._by_kind.values():
            yield from objs.values()

    def __len__(self) -> int:
        return sum(len(objs) for objs in self._by_kind.values())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, ObjectKey) and key in self._by_kind.get(key.kind, {})

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DesiredState):
            return False
        mine = {k: v for k, v in self._by_kind.items() if v}
        theirs = {k: v for k, v in other._by_kind.items() if v}
        return mine == theirs

    __hash__ = None  # type: ignore[assignment]

    def get(self, key: ObjectKey) -> StateObject | None:
        return self._by_kind.get(key.kind, {}).get(key)

    def of_kind(self, kind: type[T]) -> list[T]:
        found = self._by_kind.get(kind.kind, {})  # type: ignore[attr-defined]
        return [obj for obj in found.values() if isinstance(obj, kind)]

    def counts(self) -> dict[str, int]:
        return {kind: len(objs) for kind, objs in sorted(self._by_kind.items())}

    @property
    def settings(self) -> NodeSettings:
        found = self.of_kind(NodeSettings)
        return found[0] if found else NodeSettings()

    # ------------------------------------------------------------ deriving
    def changed(
        self, upserts: Iterable[StateObject] = (), deletes: Iterable[ObjectKey] = ()
    ) -> DesiredState:
        """A new state with ``upserts`` put and ``deletes`` removed (unknown keys are fine).

        Only the kinds that change are copied, so a one-object change costs the
        size of its kind, not of the whole state (this is on the update path).
        """
        by_kind = dict(self._by_kind)
        copied: set[str] = set()

        def kind_of(key: ObjectKey) -> dict[ObjectKey, StateObject]:
            if key.kind not in copied:
                by_kind[key.kind] = dict(by_kind.get(key.kind, {}))
                copied.add(key.kind)
            return by_kind[key.kind]

        for key in deletes:
            kind_of(key).pop(key, None)
        for obj in upserts:
            if not isinstance(obj, STATE_TYPES):
                raise ValidationError.single(
                    "transaction", "upsert", f"not a desired-state object: {obj!r}"
                )
            kind_of(obj.key)[obj.key] = obj
        state = DesiredState.__new__(DesiredState)
        state._by_kind = by_kind
        if copied & {"Policy", "Tier"}:
            state._check_references()
        return state

    def diff(self, old: DesiredState) -> tuple[list[StateObject], list[ObjectKey]]:
        """What turns ``old`` into this state: (upserted objects, deleted keys)."""
        ups: list[StateObject] = []
        dels: list[ObjectKey] = []
        for kind in set(self._by_kind) | set(old._by_kind):
            mine = self._by_kind.get(kind, {})
            theirs = old._by_kind.get(kind, {})
            if mine is theirs:
                continue
            ups += [o for k, o in mine.items() if theirs.get(k) != o]
            dels += [k for k in theirs if k not in mine]
        return ups, dels

    def __repr__(self) -> str:
        return f"DesiredState({self.counts()})"
