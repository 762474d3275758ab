"""The only module of this backend that runs commands (iptables-restore, nft, ipset, conntrack).

Every command runs inside ``config.netns`` through ``nsenter --net``: iptables
(both flavours), ipset and conntrack state are per network namespace, so the
caller's own namespace is never touched. ``nsenter`` only switches the
network namespace (``ip netns exec`` also remounts /sys), which keeps the
per-command cost to a fork and exec. The xtables lock file is global to the
machine, so restores wait for it (``-w``) instead of failing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence

import attrs

from dataplane.errors import BackendError, BackendUnavailableError, TransientBackendError

NETNS_DIR = "/run/netns"
LOCK_WAIT_SECONDS = "10"
_RESOURCE_PROBLEM = 4  # iptables-restore's exit status for a held lock

# Run in a child inside the namespace: libiptc reads the tables of the
# namespace it runs in, and the child keeps this process out of it.
_IPTC_COUNTS = """
import json, sys, iptc
prefix, out = sys.argv[1], {}
for name in sys.argv[2:]:
    table = iptc.Table(name, autocommit=False)
    table.refresh()
    for chain in table.chains:
        if chain.name.startswith(prefix):
            out[name + "/" + chain.name] = len(chain.rules)
print(json.dumps(out))
"""


def available(tool: str) -> bool:
    return shutil.which(tool) is not None


@attrs.frozen
class Runner:
    """Runs commands in one network namespace (None: the caller's own)."""

    netns: str | None

    def argv(self, argv: Sequence[str]) -> list[str]:
        if self.netns is None:
            return list(argv)
        return ["nsenter", f"--net={NETNS_DIR}/{self.netns}", "--", *argv]

    def run(self, argv: Sequence[str], stdin: str | None = None, ok: Sequence[int] = (0,)) -> str:
        """Run ``argv`` and return its stdout; exit statuses outside ``ok`` raise."""
        if not available(argv[0]):
            raise BackendUnavailableError(f"{argv[0]} is not installed")
        try:
            done = subprocess.run(
                self.argv(argv),
                input=stdin,
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError as exc:
            raise BackendError(f"cannot run {argv[0]}: {exc}") from exc
        if done.returncode not in ok:
            message = f"{' '.join(argv[:3])} failed ({done.returncode}): {done.stderr.strip()}"
            if done.returncode == _RESOURCE_PROBLEM and "lock" in done.stderr.lower():
                raise TransientBackendError(message)
            raise BackendError(message)
        return done.stdout

    def restore(self, tool: str, payload: str) -> None:
        """Apply ``payload`` with ``iptables-*-restore --noflush`` (atomic per table)."""
        self.run([tool, "--noflush", "-w", LOCK_WAIT_SECONDS], stdin=payload)

    def ipset_restore(self, payload: str, *, busy_wait: float = 0.0) -> None:
        """``ipset restore``; with ``busy_wait``, retry while a set is still "in use".

        iptables-nft releases a deleted rule's set reference asynchronously, so
        a destroy right after the restore that removed the rule can be refused
        for a moment.
        """
        if not payload:
            return
        deadline = time.monotonic() + busy_wait
        while True:
            try:
                self.run(["ipset", "-exist", "restore"], stdin=payload)
                return
            except BackendError as exc:
                if "in use" not in str(exc) or time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    def nft(self, script: str) -> None:
        """Apply an ``nft -f`` script: one kernel transaction, all or nothing."""
        self.run(["nft", "-f", "-"], stdin=script)

    def nft_works(self) -> bool:
        """Whether nft runs here: the tool is installed and the kernel has nf_tables."""
        if not available("nft"):
            return False
        try:
            self.run(["nft", "list", "tables"])
        except BackendError:
            return False
        return True

    def nft_list_table(self, family: str, table: str) -> str | None:
        """``nft list table``; None when the table (or the nft tool) is not there."""
        if not available("nft"):
            return None
        try:
            return self.run(["nft", "list", "table", family, table])
        except BackendError as exc:
            if "No such file or directory" in str(exc):
                return None
            raise

    def nft_delete_table(self, family: str, table: str) -> None:
        """Delete the table if it is there (``destroy`` needs nft 1.0.8; Debian 12 has 1.0.6)."""
        if not available("nft"):
            return
        try:
            self.run(["nft", "delete", "table", family, table])
        except BackendError as exc:
            if "No such file or directory" not in str(exc):
                raise

    def ipset_save(self) -> str:
        return self.run(["ipset", "save"])

    def conntrack_delete(self, args: Sequence[str]) -> None:
        """``conntrack -D`` with a filter; "0 flow entries deleted" (status 1) is fine."""
        self.run(["conntrack", "-D", *args], ok=(0, 1))

    def iptc_chain_counts(self, prefix: str, tables: Sequence[str]) -> dict[str, int]:
        """Own chains and rule counts as python-iptables (libiptc, legacy only) sees them."""
        out = self.run([sys.executable, "-c", _IPTC_COUNTS, prefix, *tables])
        counts: dict[str, int] = json.loads(out)
        return counts
