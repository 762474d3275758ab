"""Incremental changes: collect upserts and deletes, commit them as one delta."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dataplane.model import ObjectKey, StateObject

if TYPE_CHECKING:
    from dataplane.engine.dataplane import Dataplane


class Transaction:
    """Used as ``with dp.transaction() as tx:``; commits on a clean exit, discards on error.

    Nothing reaches the backend until the block ends, and the resulting state
    is validated as a whole first, so a bad object leaves everything as it was.
    """

    def __init__(self, dataplane: Dataplane) -> None:
        self._dp = dataplane
        self._upserts: dict[ObjectKey, StateObject] = {}
        self._deletes: set[ObjectKey] = set()

    def upsert(self, *objects: StateObject) -> None:
        for obj in objects:
            self._deletes.discard(obj.key)
            self._upserts[obj.key] = obj

    def delete(self, *keys: ObjectKey | StateObject) -> None:
        for k in keys:
            key = k if isinstance(k, ObjectKey) else k.key
            self._upserts.pop(key, None)
            self._deletes.add(key)

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None and (self._upserts or self._deletes):
            self._dp._commit(self._upserts.values(), self._deletes)
