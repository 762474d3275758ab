"""Which iptables the namespace uses: legacy (x_tables) or nft (iptables-nft).

Both rule sets are enforced by the kernel, so writing to the flavour other
software does not use splits the policy in two. Like Felix's
``iptablesBackend: auto`` (and the Kubernetes iptables-wrapper), pick the
flavour that already has rules — our own chains first, then whichever holds
more rules — and fall back to the distribution's default ``iptables``
(Debian 12: nft). ``config.option("iptables_flavour")`` ("legacy", "nft" or
"auto") overrides the guess.

The two flavours differ in cost: legacy replaces a whole table per restore
(fast full sync, ~0.5 s per update at 100k rules), nft changes only the
chains written (fast updates, slower full sync).
"""

from __future__ import annotations

import attrs

from dataplane.backends.iptables._exec import Runner, available
from dataplane.errors import BackendError, BackendUnavailableError, ConfigError

FLAVOURS = ("legacy", "nft")


@attrs.frozen
class Flavour:
    name: str

    @property
    def restore(self) -> str:
        return f"iptables-{self.name}-restore"

    @property
    def save(self) -> str:
        return f"iptables-{self.name}-save"

    @property
    def installed(self) -> bool:
        return available(self.restore) and available(self.save)


def _rule_count(runner: Runner, flavour: Flavour, prefix: str) -> tuple[int, int]:
    """(own chains, rules) visible through ``flavour`` in the namespace."""
    own = rules = 0
    # Without -t, save lists only the tables that exist: detection loads none.
    for line in runner.run([flavour.save]).splitlines():
        own += line.startswith(f":{prefix}")
        rules += line.startswith("-A ")
    return own, rules


def detect(runner: Runner, prefix: str, override: object = None) -> Flavour:
    """The flavour to program in ``runner``'s namespace."""
    choice = "auto" if override is None else str(override)
    if choice not in (*FLAVOURS, "auto"):
        raise ConfigError(f"iptables_flavour must be legacy, nft or auto, not {choice!r}")
    if choice != "auto":
        flavour = Flavour(choice)
        if not flavour.installed:
            raise BackendUnavailableError(f"{flavour.restore} is not installed")
        return flavour
    candidates = [Flavour(name) for name in FLAVOURS if Flavour(name).installed]
    if not candidates:
        raise BackendUnavailableError("neither iptables-legacy nor iptables-nft is installed")
    if len(candidates) == 1:
        return candidates[0]
    counts = {f.name: _rule_count(runner, f, prefix) for f in candidates}
    best = max(counts.values())
    if best != (0, 0):
        winners = [name for name, count in counts.items() if count == best]
        if len(winners) == 1:
            return Flavour(winners[0])
    try:
        version = runner.run(["iptables", "--version"])
    except BackendError:
        version = ""
    return Flavour("legacy" if "legacy" in version else "nft")
