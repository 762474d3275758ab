"""Getting API objects into one shape: camelCase dicts, one object each.

Objects reach the converter from three places: YAML manifests, JSON the API
server returned (often a ``ServiceList`` whose items carry no ``kind``), and
models of the official ``kubernetes`` client, whose attributes are snake
case. Everything downstream reads the API server's camelCase dict form, so
this module normalises all three once. The client is never imported: its
objects are recognised by their ``to_dict()`` and ``attribute_map``.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeGuard

import yaml

from dataplane.errors import ManifestError, Problem

__all__ = ["load_manifests", "normalize"]

Source = str | os.PathLike[str]

_MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")

# apiVersion of the built-in kinds, for client objects read from a list call:
# the API server leaves kind and apiVersion out of list items.
_BUILTIN_API_VERSIONS = {
    "Service": "v1",
    "Pod": "v1",
    "Namespace": "v1",
    "Node": "v1",
    "EndpointSlice": "discovery.k8s.io/v1",
    "NetworkPolicy": "networking.k8s.io/v1",
}
_CLIENT_CLASS = re.compile(r"V\d+(?:(?:alpha|beta)\d+)?(?P<kind>[A-Z]\w*)")


def load_manifests(sources: Source | Iterable[Source]) -> list[dict[str, Any]]:
    """Read YAML/JSON manifests (files, directories or text) into API-object dicts.

    A ``str`` holding a newline, or not naming an existing file, is YAML
    text; anything else is a path (a directory contributes its ``*.yaml``,
    ``*.yml`` and ``*.json`` files in name order). Multi-document streams are
    split, empty documents ignored and ``List`` kinds flattened into their
    items. A document that does not parse or is not an object raises
    :class:`~dataplane.errors.ManifestError` naming the source and document.
    """
    if isinstance(sources, str | os.PathLike):
        sources = [sources]
    documents: list[dict[str, Any]] = []
    for source in sources:
        for origin, text in _texts(source):
            documents.extend(_parse(origin, text))
    return documents


def _texts(source: Source) -> Iterator[tuple[str, str]]:
    if isinstance(source, str) and ("\n" in source or not os.path.isfile(source)):
        yield "<text>", source
        return
    path = Path(source)
    if path.is_dir():
        for child in sorted(path.iterdir()):
            if child.suffix in _MANIFEST_SUFFIXES and child.is_file():
                yield str(child), child.read_text(encoding="utf-8")
    else:
        yield str(path), path.read_text(encoding="utf-8")


def _parse(origin: str, text: str) -> Iterator[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        raw_documents = list(yaml.load_all(text, Loader=loader))
    except yaml.YAMLError as exc:
        raise ManifestError(origin, [Problem("", f"not valid YAML: {exc}")]) from exc
    for i, doc in enumerate(raw_documents):
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise ManifestError(
                f"{origin} document {i + 1}",
                [Problem("", f"must be an object, not {type(doc).__name__}")],
            )
        yield from _flatten(doc)


def normalize(objects: object) -> Iterator[Mapping[str, Any]]:
    """Every object as an API-server dict; lists flattened; non-objects rejected."""
    if isinstance(objects, Mapping) or _is_client_model(objects):
        objects = [objects]
    if not isinstance(objects, Iterable) or isinstance(objects, str | bytes):
        raise ManifestError("objects", [Problem("", "must be API objects or a list of them")])
    for i, obj in enumerate(objects):
        raw = _client_to_dict(obj) if _is_client_model(obj) else obj
        if not isinstance(raw, Mapping):
            raise ManifestError(
                f"object {i + 1}", [Problem("", f"must be an object, not {type(obj).__name__}")]
            )
        yield from _flatten(raw)


def _flatten(doc: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """``List`` and ``<Kind>List`` objects → their items, which gain the item kind."""
    kind = doc.get("kind")
    items = doc.get("items")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(items, list):
        item_kind = kind[: -len("List")]
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise ManifestError(kind, [Problem(f"items[{i}]", "must be an object")])
            if item_kind:
                item = {"kind": item_kind, "apiVersion": doc.get("apiVersion"), **item}
            yield from _flatten(item)
        return
    yield dict(doc)


class _ClientModel(Protocol):
    attribute_map: Mapping[str, str]

    def to_dict(self) -> Any: ...


def _is_client_model(obj: object) -> TypeGuard[_ClientModel]:
    return hasattr(obj, "to_dict") and isinstance(getattr(obj, "attribute_map", None), Mapping)


def _client_to_dict(obj: object) -> Any:
    """A ``kubernetes`` client model → the API server's dict.

    ``to_dict()`` would give snake case keys at every level, and guessing
    camel case from them would also rename label keys; walking
    ``attribute_map`` renames exactly the schema fields, as the client's own
    ``sanitize_for_serialization`` does.
    """
    if _is_client_model(obj):
        attribute_map = obj.attribute_map
        out = {
            api_name: _client_to_dict(getattr(obj, attr))
            for attr, api_name in attribute_map.items()
            if getattr(obj, attr, None) is not None
        }
        match = _CLIENT_CLASS.fullmatch(type(obj).__name__)
        if "kind" in attribute_map and "kind" not in out and match and "metadata" in out:
            out["kind"] = match.group("kind")
            if out["kind"] in _BUILTIN_API_VERSIONS:
                out.setdefault("apiVersion", _BUILTIN_API_VERSIONS[out["kind"]])
        return out
    if isinstance(obj, list | tuple):
        return [_client_to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {k: _client_to_dict(v) for k, v in obj.items()}
    if isinstance(obj, datetime.datetime | datetime.date):
        return obj.isoformat()
    return obj
