"""The iptables backend: services and policy as iptables chains, IP sets and conntrack hygiene.

See ``docs/iptables.md`` for the chain layout, the dispatch tree and the sync design.
"""

from dataplane.backends.iptables.backend import IptablesBackend

__all__ = ["IptablesBackend"]
