"""Small Kubernetes-like clusters made of network namespaces, for real-packet tests.

See ``docs/lab.md`` for the topology, the address plan and the safety rules.
"""

from dataplane.lab.errors import LabError
from dataplane.lab.handles import Capture, Connection
from dataplane.lab.lab import Lab
from dataplane.lab.plan import ClientInfo, LabPlan, NodeInfo, PodInfo, RouterInfo
from dataplane.lab.results import (
    CapturedPacket,
    ConnectionStatus,
    ProbeRequest,
    ProbeResult,
)
from dataplane.lab.spec import ClientSpec, LabSpec, NodeSpec, PodSpec, PortSpec, SpecError
from dataplane.model.naming import workload_interface_name

__all__ = [
    "Capture",
    "CapturedPacket",
    "ClientInfo",
    "ClientSpec",
    "Connection",
    "ConnectionStatus",
    "Lab",
    "LabError",
    "LabPlan",
    "LabSpec",
    "NodeInfo",
    "NodeSpec",
    "PodInfo",
    "PodSpec",
    "PortSpec",
    "ProbeRequest",
    "ProbeResult",
    "RouterInfo",
    "SpecError",
    "workload_interface_name",
]
