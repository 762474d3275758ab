"""Dispatch by apiVersion and kind, merge what spans documents, account for the rest.

Most kinds convert one document at a time. Two do not: EndpointSlices merge
into one EndpointSet per service, and DataplaneConfigurations into one
NodeSettings per node; both are collected first and merged at the end.

Nothing is dropped without a trace: an object that converts to nothing on
purpose (a finished pod, an ExternalName service) is in ``skipped`` with the
reason, and a kind this module does not know is in ``unknown``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from dataplane.errors import ManifestError, Problem
from dataplane.kube import calico, cluster, config, endpoints, netpol, pods, services
from dataplane.kube._fields import Skip
from dataplane.kube.loader import normalize
from dataplane.model import DesiredState, StateObject

_log = logging.getLogger(__name__)

Converter = Callable[[Mapping[str, Any]], Sequence[StateObject] | Skip]

_CONVERTERS: dict[tuple[str, str], Converter] = {
    ("v1", "Service"): services.convert_service,
    ("v1", "Pod"): pods.convert_pod,
    ("v1", "Namespace"): cluster.convert_namespace,
    ("v1", "Node"): cluster.convert_node,
    ("networking.k8s.io/v1", "NetworkPolicy"): netpol.convert_network_policy,
    ("projectcalico.org/v3", "NetworkPolicy"): calico.convert_policy,
    ("projectcalico.org/v3", "GlobalNetworkPolicy"): calico.convert_global_policy,
    ("projectcalico.org/v3", "HostEndpoint"): calico.convert_host_endpoint,
    ("projectcalico.org/v3", "Tier"): calico.convert_tier,
    ("projectcalico.org/v3", "Profile"): calico.convert_profile,
}
_ENDPOINT_SLICE = ("discovery.k8s.io/v1", "EndpointSlice")
_CONFIGURATION = ("dataplane.io/v1alpha1", "DataplaneConfiguration")


@attrs.frozen
class SkippedObject:
    """A valid object that produced nothing, on purpose; ``name`` is ``ns/name`` or ``name``."""

    kind: str
    name: str
    reason: str


@attrs.frozen
class UnknownObject:
    """An object of a kind (or apiVersion) the converter does not know."""

    api_version: str
    kind: str
    name: str


@attrs.frozen
class ConversionResult:
    objects: tuple[StateObject, ...]
    skipped: tuple[SkippedObject, ...] = ()
    unknown: tuple[UnknownObject, ...] = ()


def convert(objects: object, *, node_name: str | None = None) -> ConversionResult:
    """Convert API objects (dicts, ``kubernetes`` client models, lists) into model objects.

    ``node_name`` selects the node's ``node.<name>`` DataplaneConfiguration;
    everything else converts the same on every node (the calc decides what
    is local). The first malformed object raises
    :class:`~dataplane.errors.ManifestError` with all of its problems.
    """
    converted: list[StateObject] = []
    skipped: list[SkippedObject] = []
    unknown: list[UnknownObject] = []
    slices: list[endpoints.Slice] = []
    configurations: list[config.Configuration] = []
    for i, raw in enumerate(normalize(objects)):
        api_version, kind = _identify(i, raw)
        name = _name(raw)
        if (api_version, kind) == _ENDPOINT_SLICE:
            result: object = endpoints.read_slice(raw)
            if isinstance(result, endpoints.Slice):
                slices.append(result)
        elif (api_version, kind) == _CONFIGURATION:
            result = config.read_configuration(raw)
            if isinstance(result, config.Configuration):
                configurations.append(result)
        elif (api_version, kind) in _CONVERTERS:
            result = _CONVERTERS[api_version, kind](raw)
            if not isinstance(result, Skip):
                converted.extend(result)
        else:
            unknown.append(UnknownObject(api_version, kind, name))
            continue
        if isinstance(result, Skip):
            skipped.append(SkippedObject(kind, name, result.reason))
    sets, rejected = endpoints.merge_slices(slices)
    converted.extend(sets)
    skipped.extend(
        SkippedObject(_ENDPOINT_SLICE[1], f"{s.endpoints.namespace}/{s.name}", why)
        for s, why in rejected
    )
    settings, others = config.node_settings(configurations, node_name)
    if settings is not None:
        converted.append(settings)
    skipped.extend(SkippedObject(_CONFIGURATION[1], c.name, why) for c, why in others)
    return ConversionResult(tuple(converted), tuple(skipped), tuple(unknown))


def to_desired_state(objects: object, *, node_name: str | None) -> DesiredState:
    """Convert and build a DesiredState; skipped and unknown objects are logged.

    Use :func:`convert` to act on skipped and unknown objects yourself.
    """
    result = convert(objects, node_name=node_name)
    for s in result.skipped:
        _log.info("skipped %s %s: %s", s.kind, s.name, s.reason)
    for u in result.unknown:
        _log.warning("unknown kind %s %s (%s): not converted", u.kind, u.name, u.api_version)
    return DesiredState(result.objects)


def _identify(index: int, raw: Mapping[str, Any]) -> tuple[str, str]:
    api_version, kind = raw.get("apiVersion"), raw.get("kind")
    problems = [
        Problem(field, "required (a string)")
        for field, value in (("apiVersion", api_version), ("kind", kind))
        if not isinstance(value, str) or not value
    ]
    if problems:
        raise ManifestError(f"{kind or 'object'} {_name(raw)} (object {index + 1})", problems)
    return str(api_version), str(kind)


def _name(raw: Mapping[str, Any]) -> str:
    meta = raw.get("metadata")
    if not isinstance(meta, Mapping):
        return "<no name>"
    name, namespace = meta.get("name") or "<no name>", meta.get("namespace")
    return f"{namespace}/{name}" if namespace else str(name)
