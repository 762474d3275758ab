"""DesiredState: every object an agent wants, keyed by identity.

It is an immutable snapshot. ``apply()`` hands the engine a whole one;
transactions derive a new one with :meth:`DesiredState.changed`. Checks that
need more than one object (a policy naming a missing tier, two objects with
one key) live here, so they run for both paths.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
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

    __slots__ = ("_by_key", "_by_kind")

    def __init__(self, objects: Iterable[StateObject] = ()) -> None:
        by_key: dict[ObjectKey, StateObject] = {}
        for obj in objects:
            if not isinstance(obj, STATE_TYPES):
                raise ValidationError.single(
                    "DesiredState", "objects", f"not a desired-state object: {obj!r}"
                )
            if obj.key in by_key and by_key[obj.key] != obj:
                raise ValidationError.single(
                    str(obj.key), "name", "given twice with different contents"
                )
            by_key[obj.key] = obj
        self._by_key = by_key
        self._by_kind: dict[str, dict[ObjectKey, StateObject]] = {}
        for key, obj in by_key.items():
            self._by_kind.setdefault(key.kind, {})[key] = obj
        self._check_references()

    @classmethod
    def _trusted(cls, by_key: dict[ObjectKey, StateObject]) -> DesiredState:
        state = cls.__new__(cls)
        state._by_key = by_key
        state._by_kind = {}
        for key, obj in by_key.items():
            state._by_kind.setdefault(key.kind, {})[key] = obj
        state._check_references()
        return state

    def _check_references(self) -> None:
        tiers = {k.name for k in self._by_kind.get("Tier", {})} | {DEFAULT_TIER}
        for key, obj in self._by_kind.get("Policy", {}).items():
            assert isinstance(obj, Policy)
            if obj.tier not in tiers:
                raise ValidationError(str(key), [Problem("tier", f"no tier named {obj.tier!r}")])

    # ------------------------------------------------------------ reading
    def __iter__(self) -> Iterator[StateObject]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DesiredState) and self._by_key == other._by_key

    __hash__ = None  # type: ignore[assignment]

    def get(self, key: ObjectKey) -> StateObject | None:
        return self._by_key.get(key)

    @property
    def by_key(self) -> Mapping[ObjectKey, StateObject]:
        return self._by_key

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
        """A new state with ``upserts`` put and ``deletes`` removed (unknown keys are fine)."""
        by_key = dict(self._by_key)
        for key in deletes:
            by_key.pop(key, None)
        for obj in upserts:
            if not isinstance(obj, STATE_TYPES):
                raise ValidationError.single(
                    "transaction", "upsert", f"not a desired-state object: {obj!r}"
                )
            by_key[obj.key] = obj
        return DesiredState._trusted(by_key)

    def diff(self, old: DesiredState) -> tuple[list[StateObject], list[ObjectKey]]:
        """What turns ``old`` into this state: (upserted objects, deleted keys)."""
        ups = [o for k, o in self._by_key.items() if old._by_key.get(k) != o]
        dels = [k for k in old._by_key if k not in self._by_key]
        return ups, dels

    def __repr__(self) -> str:
        return f"DesiredState({self.counts()})"
