"""engine: the Dataplane an agent talks to, its config, transactions and status."""

from dataplane.engine.config import DataplaneConfig
from dataplane.engine.dataplane import Dataplane
from dataplane.engine.status import Status
from dataplane.engine.transaction import Transaction

__all__ = ["Dataplane", "DataplaneConfig", "Status", "Transaction"]
