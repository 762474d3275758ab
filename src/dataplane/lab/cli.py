"""``dataplane lab up|down|status|clean``.

``register(subparsers)`` adds the ``lab`` command to the main ``dataplane``
parser; each subcommand sets ``func`` (``args.func(args) -> int`` exit code).
``main()`` runs the same commands standalone for ``python -m dataplane.lab``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dataplane.lab import cleanup, state
from dataplane.lab.lab import Lab
from dataplane.lab.spec import LabSpec


def _spec(args: argparse.Namespace) -> LabSpec:
    if args.spec:
        return LabSpec.from_dict(json.loads(Path(args.spec).read_text()))
    return LabSpec.uniform(
        args.nodes,
        args.pods_per_node,
        fabric_clients=args.clients,
        remote_clients=args.remote_clients,
    )


def _summary(lab: Lab) -> dict[str, Any]:
    return {
        "prefix": lab.prefix,
        "state_file": str(state.path(lab.prefix)),
        "hosts": {h.key: {"netns": h.netns, "ip": h.ip} for h in lab.plan.hosts()},
    }


def _up(args: argparse.Namespace) -> int:
    lab = Lab(_spec(args), prefix=args.prefix)
    lab.start()
    lab.detach()
    print(json.dumps(_summary(lab), indent=2))
    return 0


def _down(args: argparse.Namespace) -> int:
    prefixes = args.prefix or [s.prefix for s in state.all_states() if s.detached]
    if not args.prefix and len(prefixes) != 1:
        print(f"name the lab to bring down; detached labs: {prefixes}", file=sys.stderr)
        return 2
    for prefix in prefixes:
        if state.read(prefix) is None and not cleanup.lab_namespaces(prefix):
            print(f"no lab {prefix}", file=sys.stderr)
            return 1
    cleanup.clean(prefixes)
    return 0


def _status(args: argparse.Namespace) -> int:
    rows = []
    for prefix in sorted(cleanup.known_prefixes()):
        lab_state = state.read(prefix)
        rows.append(
            {
                "prefix": prefix,
                "owner_pid": lab_state.owner_pid if lab_state else None,
                "detached": lab_state.detached if lab_state else False,
                "abandoned": cleanup.abandoned(prefix),
                "namespaces": cleanup.lab_namespaces(prefix),
            }
        )
    print(json.dumps(rows, indent=2))
    return 0


def _clean(args: argparse.Namespace) -> int:
    removed = cleanup.clean(args.prefix or None, include_live=args.all)
    print(json.dumps({"removed": removed, "remaining": cleanup.all_lab_namespaces()}))
    return 0


def add_commands(parser: argparse.ArgumentParser) -> None:
    """Add up/down/status/clean below ``parser``."""
    commands = parser.add_subparsers(dest="lab_command", required=True)

    up = commands.add_parser("up", help="build a lab and leave it running")
    up.add_argument("--nodes", type=int, default=2)
    up.add_argument("--pods-per-node", type=int, default=2)
    up.add_argument("--clients", type=int, default=1, help="clients on the fabric")
    up.add_argument("--remote-clients", type=int, default=1, help="clients behind the router")
    up.add_argument("--spec", help="JSON file in LabSpec.to_dict() form (overrides the counts)")
    up.add_argument("--prefix", help="use this prefix (dpl + 5 hex digits) instead of a random one")
    up.set_defaults(func=_up)

    down = commands.add_parser("down", help="remove a lab started with `up`")
    down.add_argument("prefix", nargs="*", help="lab prefix (default: the only detached lab)")
    down.set_defaults(func=_down)

    status = commands.add_parser("status", help="list labs on this machine")
    status.set_defaults(func=_status)

    clean = commands.add_parser(
        "clean", help="remove leftovers of crashed labs (namespaces, processes, BPF pins)"
    )
    clean.add_argument("--prefix", action="append", help="remove this lab whatever its state")
    clean.add_argument("--all", action="store_true", help="also remove labs whose owner still runs")
    clean.set_defaults(func=_clean)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``lab`` to the main ``dataplane`` command line."""
    add_commands(subparsers.add_parser("lab", help="network-namespace test clusters"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dataplane.lab")
    add_commands(parser)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result
