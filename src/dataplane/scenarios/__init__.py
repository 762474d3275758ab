"""Behaviour scenarios: desired state + probes + expected outcomes, as data.

One scenario is written once and checked against every backend: first the
fake backend's reference trace (:mod:`dataplane.scenarios.reference`), then
real packets in a lab for the kernel backends (:mod:`dataplane.scenarios.run`).
"""

from dataplane.scenarios.cluster import STANDARD_SPEC, base_objects, cluster_facts
from dataplane.scenarios.types import Expect, Outcome, Probe, Scenario

__all__ = [
    "STANDARD_SPEC",
    "Expect",
    "Outcome",
    "Probe",
    "Scenario",
    "base_objects",
    "cluster_facts",
]
