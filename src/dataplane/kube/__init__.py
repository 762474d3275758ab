"""Kubernetes and Calico API objects → :mod:`dataplane.model` objects.

An agent that watches the API server (or reads manifests) hands the objects
here and gets model values back, so the rest of the library sees one
vocabulary whatever the source::

    from dataplane import kube

    docs = kube.load_manifests("manifests/")          # YAML/JSON, List kinds flattened
    result = kube.convert(docs, node_name="node-a")    # objects, skipped, unknown
    state = kube.to_desired_state(docs, node_name="node-a")

Objects may be dicts as the API server returns them or models of the
official ``kubernetes`` client (recognised by ``to_dict()`` and
``attribute_map``; the client is never imported). A malformed object raises
:class:`~dataplane.errors.ManifestError` naming it (``Service default/web``)
and listing every problem by manifest path (``spec.ports[0].port``).
``docs/kube.md`` has the field-by-field mapping.
"""

from dataplane.kube.converter import (
    ConversionResult,
    SkippedObject,
    UnknownObject,
    convert,
    to_desired_state,
)
from dataplane.kube.loader import load_manifests

__all__ = [
    "ConversionResult",
    "SkippedObject",
    "UnknownObject",
    "convert",
    "load_manifests",
    "to_desired_state",
]
