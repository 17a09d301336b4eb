"""`kubelite demo [NAME] [--yes]`: reconciliation demos to watch, against any cluster.

    kubelite demo                  the list of demos, one line each
    kubelite demo scaling          narrate, pause for Enter between steps, show the pods live,
                                   check the outcome (exit 0 if it happened, 1 if not)
    kubelite demo scaling --yes    the same, unattended (what the tests run)

Each demo is one module below with `NAME`, `SUMMARY` and `async run(stage)`, and an
optional `preflight(stage)` that raises `CannotRun` (exit code 2) before anything is
created. The stage (stage.py) gives it a namespace of its own, deleted at the end, and the
narration, live view and checks. Manifests are in manifests/demos/.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from api.client import ApiConnectionError, ApiTimeout
from api.errors import ApiError

if TYPE_CHECKING:
    from cli.config import Connection

# Order of the list `kubelite demo` prints: from the simplest reconciliation to the hardest.
DEMO_MODULES = (
    "cli.demos.selfheal",
    "cli.demos.scaling",
    "cli.demos.services",
    "cli.demos.rolling",
    "cli.demos.crashloop",
    "cli.demos.oom",
    "cli.demos.nodefail",
)
DEFAULT_DATA_DIR = Path("/var/lib/kubelite/up")


def demos() -> dict[str, ModuleType]:
    out: dict[str, ModuleType] = {}
    for name in DEMO_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # not written yet on this branch
                continue
            raise
        out[module.NAME] = module
    return out


def register(subparsers: Any) -> None:
    from cli.config import add_connection_flags

    p = subparsers.add_parser("demo", help="watch the cluster reconcile: self-healing, scaling, rollouts, failures",
                              description="Run a narrated reconciliation demo against the cluster; "
                              "without NAME, list the demos.")
    p.add_argument("name", nargs="?", metavar="NAME", help="the demo to run (omit to list them)")
    p.add_argument("--yes", "-y", action="store_true", help="run unattended: do not pause between steps")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                   help="state directory of the `kubelite up` cluster, for demos that reach into nodes "
                   f"(default {DEFAULT_DATA_DIR})")
    add_connection_flags(p)
    p.set_defaults(func=demo_cmd)


def _list(catalogue: dict[str, ModuleType]) -> int:
    width = max(len(name) for name in catalogue)
    print("Demos (run one with `kubelite demo NAME`, add --yes to run it unattended):\n")
    for name, module in catalogue.items():
        print(f"  {name.ljust(width)}  {module.SUMMARY}")
    return 0


async def demo_cmd(args: argparse.Namespace) -> int:
    from cli.objects import run

    catalogue = demos()
    if not args.name:
        return _list(catalogue)
    module = catalogue.get(args.name)
    if module is None:
        print(f"error: no demo named {args.name!r}; one of: {', '.join(catalogue)}", file=sys.stderr)
        return 2
    # Connecting and reporting the server's errors as kubectl does: as every object verb.
    return await run(lambda args, conn: _run_demo(module, args, conn))(args)


async def _run_demo(module: ModuleType, args: argparse.Namespace, conn: Connection) -> int:
    from rich.markup import escape

    from api.core import Node
    from cli.demos.stage import CannotRun, Stage

    await conn.api.list(Node)  # fail fast, with kubectl's words, if the server is not there
    async with Stage(conn, demo=module.NAME, yes=args.yes, data_dir=args.data_dir) as stage:
        stage.title(f"demo {module.NAME}: {module.SUMMARY}")
        try:
            if hasattr(module, "preflight"):
                module.preflight(stage)
        except CannotRun as err:
            stage.console.print(f"[yellow]cannot run this demo here:[/] {escape(str(err))}")
            return 2
        await stage.fresh_namespace()
        try:
            await module.run(stage)
        except (ApiError, ApiConnectionError, ApiTimeout) as err:
            stage.check(f"the demo ran to its end (it stopped: {err})", False)
        finally:
            await stage.step("Clean up: delete the demo's namespace and everything in it.", pause=False)
            await stage.delete_namespace()
        stage.summary()
        return stage.exit_code
