"""``dataplane``: apply manifests, trace packets, inspect and clean up a backend.

Every subcommand that touches a backend takes ``--backend/--netns/--node``;
tabular output takes ``--output json``. Bad input exits 2 with a readable
error and applies nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from dataplane.errors import DataplaneError, ValidationError

EXIT_BAD_INPUT = 2
EXIT_BACKEND = 3


def _backend_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default=None, help="fake, iptables, ebpf, windows-hns or auto")
    p.add_argument("--netns", default=None, help="program this network namespace")
    p.add_argument("--node", default=None, help="node name (default: hostname)")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="backend option, e.g. iptables_flavour=legacy",
    )


def _config(args: argparse.Namespace) -> Any:
    from dataplane.engine.config import DataplaneConfig

    overrides: dict[str, Any] = {"resync_period": 0}
    if args.backend:
        overrides["backend"] = args.backend
    if args.netns:
        overrides["netns"] = args.netns
    if args.node:
        overrides["node_name"] = args.node
    options = dict(kv.split("=", 1) for kv in args.option)
    if options:
        overrides["options"] = options
    return DataplaneConfig.from_env(**overrides)


def _state(files: Sequence[str], node: str) -> Any:
    from dataplane.kube import load_manifests, to_desired_state

    docs = load_manifests([Path(f) for f in files])
    return to_desired_state(docs, node_name=node)


def _print(data: Any, output: str) -> None:
    if output == "json":
        print(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, dict | list):
                print(f"{key}:")
                print("  " + json.dumps(value, indent=2, default=str).replace("\n", "\n  "))
            else:
                print(f"{key}: {value}")
    else:
        print(data)


def cmd_apply(args: argparse.Namespace) -> int:
    from dataplane.engine import Dataplane

    cfg = _config(args)
    state = _state(args.file, cfg.node_name)
    with Dataplane(cfg) as dp:
        dp.apply(state)
        print(f"applied {len(state)} objects with backend {dp.backend.name}")
        if not args.watch:
            return 0
        mtimes = {f: Path(f).stat().st_mtime for f in args.file}
        last_resync = time.monotonic()
        while True:
            time.sleep(args.interval)
            now = {f: Path(f).stat().st_mtime for f in args.file}
            if now != mtimes:
                mtimes = now
                try:
                    dp.apply(_state(args.file, cfg.node_name))
                    print("re-applied after change")
                except ValidationError as exc:
                    print(f"not applied: {exc}", file=sys.stderr)
            if time.monotonic() - last_resync >= args.resync:
                dp.resync()
                last_resync = time.monotonic()


def cmd_trace(args: argparse.Namespace) -> int:
    from dataplane.backends.fake import FakeBackend
    from dataplane.calc.evaluate import Packet
    from dataplane.engine import Dataplane

    cfg = _config(args)
    from dataplane.engine.config import DataplaneConfig

    fake_cfg = DataplaneConfig(
        backend="fake",
        node_name=cfg.node_name,
        resync_period=0,
        options={"mimic": args.mimic} if args.mimic else {},
    )
    state = _state(args.file, cfg.node_name)
    with Dataplane(fake_cfg) as dp:
        dp.apply(state)
        backend = dp.backend
        assert isinstance(backend, FakeBackend)
        result = backend.trace(
            Packet(
                src=args.src,
                dst=args.dst,
                protocol=args.protocol,
                dst_port=args.port,
                ingress_interface=args.interface,
            )
        )
    out = {
        "verdict": result.verdict.value,
        "reason": result.reason,
        "service": result.frontend,
        "masquerade": result.masquerade,
        "dnat": [f"{a}:{p}" for a, p in result.dnat],
        "steps": list(result.steps),
    }
    print(json.dumps(out, indent=2))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from dataplane.engine import Dataplane

    with Dataplane(_config(args)) as dp:
        st = dp.status()
        _print(
            {
                "backend": st.backend,
                "node": st.node,
                "netns": st.netns,
                "capabilities": attrs.asdict(st.capabilities),
                "warnings": list(st.warnings),
                "installed": {
                    k: len(v) for k, v in dp.backend.dump().items() if isinstance(v, dict | list)
                },
            },
            args.output,
        )
    return 0


def cmd_dump(args: argparse.Namespace) -> int:
    from dataplane.engine import Dataplane

    with Dataplane(_config(args)) as dp:
        _print(dict(dp.backend.dump()), args.output)
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    from dataplane.engine import Dataplane

    dp = Dataplane(_config(args))
    dp.backend.cleanup()
    print(f"removed everything instance {dp.config.instance_name} installed")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from dataplane.demo import run

    return run(args.backend)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dataplane", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("apply", help="reconcile a node to the objects in manifests")
    p.add_argument("-f", "--file", action="append", required=True)
    p.add_argument("--watch", action="store_true", help="re-apply on change")
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--resync", type=float, default=90.0)
    _backend_options(p)
    p.set_defaults(func=cmd_apply)

    p = sub.add_parser("trace", help="ask the reference model what happens to a packet")
    p.add_argument("-f", "--file", action="append", required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--dst", required=True)
    p.add_argument("--port", type=int)
    p.add_argument("--protocol", default="TCP")
    p.add_argument("--interface", default=None, help="ingress interface on this node")
    p.add_argument("--mimic", default=None, help="use this backend's capabilities")
    _backend_options(p)
    p.set_defaults(func=cmd_trace)

    for name, func, text in (
        ("status", cmd_status, "backend, capabilities and what is installed"),
        ("dump", cmd_dump, "what the backend has installed"),
        ("cleanup", cmd_cleanup, "remove everything the backend installed"),
    ):
        p = sub.add_parser(name, help=text)
        _backend_options(p)
        if name != "cleanup":
            p.add_argument("--output", choices=("table", "json"), default="table")
        p.set_defaults(func=func)

    p = sub.add_parser("demo", help="a lab cluster, real traffic, a table of what happened")
    p.add_argument("--backend", default=None)
    p.set_defaults(func=cmd_demo)

    from dataplane.lab.cli import register

    register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DataplaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BACKEND
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
