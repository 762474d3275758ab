"""The desired-state vocabulary: frozen, validated attrs values.

Constructing any of these validates it; bad input raises
:class:`dataplane.errors.ValidationError` naming the object and field, so
nothing malformed ever reaches ``calc`` or a backend.
"""

from dataplane.model._base import FrozenLabels, IPAddress, IPNetwork, ObjectKey
from dataplane.model.cluster import Namespace, Node
from dataplane.model.endpoints import HostEndpoint, NamedPort, WorkloadEndpoint
from dataplane.model.enums import (
    Action,
    EndpointToHostAction,
    ExternalServiceMode,
    PolicyType,
    Protocol,
    ServiceType,
    SessionAffinity,
    TierDefault,
    TrafficPolicy,
)
from dataplane.model.policy import (
    DEFAULT_TIER,
    EntityMatch,
    IcmpMatch,
    Policy,
    PortRange,
    Profile,
    Rule,
    Tier,
)
from dataplane.model.service import Endpoint, EndpointPort, EndpointSet, Service, ServicePort
from dataplane.model.settings import NodeSettings, ProtoPort
from dataplane.model.state import DesiredState, StateObject

__all__ = [
    "DEFAULT_TIER",
    "Action",
    "DesiredState",
    "Endpoint",
    "EndpointPort",
    "EndpointSet",
    "EndpointToHostAction",
    "EntityMatch",
    "ExternalServiceMode",
    "FrozenLabels",
    "HostEndpoint",
    "IPAddress",
    "IPNetwork",
    "IcmpMatch",
    "NamedPort",
    "Namespace",
    "Node",
    "NodeSettings",
    "ObjectKey",
    "Policy",
    "PolicyType",
    "PortRange",
    "Profile",
    "ProtoPort",
    "Protocol",
    "Rule",
    "Service",
    "ServicePort",
    "ServiceType",
    "SessionAffinity",
    "StateObject",
    "Tier",
    "TierDefault",
    "TrafficPolicy",
    "WorkloadEndpoint",
]
