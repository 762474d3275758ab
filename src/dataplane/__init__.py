"""dataplane: program a node's packet path through swappable backends.

Public API only; importing this module imports no backend.
"""

from dataplane.calc.evaluate import Packet, TraceResult, Verdict
from dataplane.engine import Dataplane, DataplaneConfig, Status, Transaction
from dataplane.model import DesiredState

__all__ = [
    "Dataplane",
    "DataplaneConfig",
    "DesiredState",
    "Packet",
    "Status",
    "TraceResult",
    "Transaction",
    "Verdict",
]
__version__ = "0.1.0"
