"""The `kubelite` command: one argparse tree, one module per group of verbs.

Each module in COMMAND_MODULES exposes `register(subparsers)`, which adds its verbs
and sets `func` on each parser: a callable taking the parsed namespace and returning
the process exit code. Commands that do I/O are coroutines run on uvloop.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys
from collections.abc import Sequence

# Order is the order of `kubelite --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "cli.objects",
    "cli.expose",
    "cli.clusterinfo",
    "cli.servers",
    "cli.scheduler_cmd",
    "cli.controller_cmd",
    "cli.dns_cmd",
    "cli.agent_cmd",
    "cli.pods_cmd",
    "cli.cluster_cmd",
    "cli.images",
    "cli.demos",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubelite",
        description="A miniature Kubernetes: API server, controllers, kubelet and container runtime.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # a verb group not built yet on this branch
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    # `create deployment NAME --image I -- CMD...`: the container's command, as kubectl takes it
    # (argparse would refuse positionals after `--` once `create TYPE NAME` has taken its own).
    command: list[str] = []
    if words[:1] == ["create"] and "--" in words:
        words, command = words[:words.index("--")], words[words.index("--") + 1:]
    args = parser.parse_args(words)
    args.command = command
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        result = func(args)
        if inspect.iscoroutine(result):
            result = _run(result)
    except KeyboardInterrupt:
        return 130
    return int(result or 0)


def _run(coro: object) -> object:
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:  # pragma: no cover - uvloop is a declared dependency
        return asyncio.run(coro)  # type: ignore[arg-type]


if __name__ == "__main__":
    sys.exit(main())
