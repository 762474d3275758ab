"""Stale UDP conntrack entries after a frontend's backends change.

UDP has no connection end, so a conntrack entry keeps steering a client's
flow to a backend that is gone (kubernetes#19029), or keeps a flow created
while the frontend had no backends pointing nowhere (kubernetes#48370), for as
long as the client keeps sending. kube-proxy therefore deletes entries after
a sync; this does the same, per frontend:

* a backend left → entries of the frontend NATed to that backend;
* the frontend gained its first backend (or appeared with backends), or went
  away → all its entries.

The caller asks only about changes it saw: after a restart the previous IR
is unknown and nothing is deleted, so established UDP flows survive.
"""

from __future__ import annotations

from collections.abc import Iterator

from dataplane.calc.ir import Frontend
from dataplane.model import Protocol


def _backends(fe: Frontend | None) -> set[str]:
    if fe is None:
        return set()
    return {str(b.address) for r in fe.routes for b in r.backends}


def stale_filters(old: Frontend | None, new: Frontend | None) -> Iterator[list[str]]:
    """``conntrack -D`` filter arguments for one frontend's change (UDP only)."""
    fe = new or old
    if fe is None or fe.protocol is not Protocol.UDP or fe.address.version != 4:
        return
    base = ["-p", "udp", "--orig-dst", str(fe.address), "--orig-port-dst", str(fe.port)]
    before, after = _backends(old), _backends(new)
    if (not before and after) or (new is None and before):
        yield base
        return
    for address in sorted(before - after):
        yield [*base, "--dst-nat", address]
