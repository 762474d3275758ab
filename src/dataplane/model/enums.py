"""Enumerations shared by the model, the IR and the backends."""

from __future__ import annotations

import enum
from typing import Any


class Protocol(enum.IntEnum):
    """IP protocols by number. Rules may also name any other number 1-255."""

    ICMP = 1
    TCP = 6
    UDP = 17
    ICMPV6 = 58
    SCTP = 132
    UDPLITE = 136

    @classmethod
    def parse(cls, value: Any) -> Any:
        """Name or number → Protocol (or plain int for unnamed numbers); else unchanged."""
        if isinstance(value, Protocol):
            return value
        if isinstance(value, str):
            name = value.strip().upper()
            if name in cls.__members__:
                return cls[name]
            if name.isdigit():
                value = int(name)
            else:
                return value
        if isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                return value
        return value

    @property
    def has_ports(self) -> bool:
        return self in (Protocol.TCP, Protocol.UDP, Protocol.SCTP, Protocol.UDPLITE)

    @property
    def is_icmp(self) -> bool:
        return self in (Protocol.ICMP, Protocol.ICMPV6)


SERVICE_PROTOCOLS = frozenset({Protocol.TCP, Protocol.UDP, Protocol.SCTP})


class _StrEnum(enum.StrEnum):
    @classmethod
    def parse(cls, value: Any) -> Any:
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for member in cls:
                if member.value.lower() == value.strip().lower():
                    return member
        return value


class ServiceType(_StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"


class TrafficPolicy(_StrEnum):
    CLUSTER = "Cluster"
    LOCAL = "Local"


class SessionAffinity(_StrEnum):
    NONE = "None"
    CLIENT_IP = "ClientIP"


class Action(_StrEnum):
    ALLOW = "Allow"
    DENY = "Deny"
    LOG = "Log"
    PASS = "Pass"


class PolicyType(_StrEnum):
    INGRESS = "Ingress"
    EGRESS = "Egress"


class TierDefault(_StrEnum):
    """What happens when a tier applies to an endpoint but no rule decided."""

    DENY = "Deny"
    PASS = "Pass"


class ExternalServiceMode(_StrEnum):
    """How NodePort traffic reaches a backend on another node (eBPF)."""

    TUNNEL = "tunnel"
    DSR = "dsr"


class EndpointToHostAction(_StrEnum):
    """Felix's DefaultEndpointToHostAction: workload → its own host."""

    DROP = "Drop"
    RETURN = "Return"
    ACCEPT = "Accept"


# Named converter functions: attrs' mypy plugin accepts only plain functions.


def to_protocol(value: Any) -> Any:
    return Protocol.parse(value)


def to_service_type(value: Any) -> Any:
    return ServiceType.parse(value)


def to_traffic_policy(value: Any) -> Any:
    return TrafficPolicy.parse(value)


def to_session_affinity(value: Any) -> Any:
    return SessionAffinity.parse(value)


def to_action(value: Any) -> Any:
    return Action.parse(value)


def to_policy_type(value: Any) -> Any:
    return PolicyType.parse(value)


def to_tier_default(value: Any) -> Any:
    return TierDefault.parse(value)


def to_external_service_mode(value: Any) -> Any:
    return ExternalServiceMode.parse(value)


def to_endpoint_to_host_action(value: Any) -> Any:
    return EndpointToHostAction.parse(value)
