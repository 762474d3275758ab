"""Which iptables the namespace uses: legacy (x_tables) or nft (iptables-nft).

Both rule sets are enforced by the kernel, so writing to the flavour other
software does not use splits the policy in two. Like Felix's
``iptablesBackend: auto`` (and the Kubernetes iptables-wrapper), pick the
flavour that already has rules — our own chains first, then whichever holds
more rules — and fall back to the distribution's default ``iptables``
(Debian 12: nft). ``config.option("iptables_flavour")`` ("legacy", "nft" or
"auto") overrides the guess.

The two flavours differ in cost: legacy replaces a whole table per restore
(fast full sync, ~0.4 s per update at 130k rules); nft writes only the chains
named, but the kernel validates every rule reachable in the table whenever a
rule is added (~0.14 s per update at 130k rules; see docs/iptables.md).
"""

from __future__ import annotations

import attrs

from dataplane.backends.iptables._exec import Runner, available
from dataplane.errors import BackendError, BackendUnavailableError, ConfigError

FLAVOURS = ("legacy", "nft")
NFT_MAX_NAMES = 1000


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
    def max_names(self) -> int | None:
        """How many chains one restore may mention (see ``restore``): iptables-nft 1.8.9
        searches a sorted list of them per command; legacy replaces the whole table per
        restore, so splitting would only multiply that."""
        return NFT_MAX_NAMES if self.name == "nft" else None

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
