"""`kubelite scheduler`: run the scheduler against an API server.

`run_scheduler` is re-exported for `kubelite server`, which runs the scheduler in
its own process next to the API server.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from api.client import Client
from cli.daemon import setup_logging, stop_on_signals
from scheduler import run_scheduler
from scheduler.run import LeadershipLost

__all__ = ["register", "run_scheduler"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("scheduler", help="assign pending pods to nodes")
    p.add_argument("--server", required=True, metavar="URL", help="API server URL, e.g. http://127.0.0.1:6443")
    p.add_argument("--leader-elect", action="store_true",
                   help="schedule only while holding the kube-system/kube-scheduler Lease "
                        "(run several schedulers safely)")
    p.add_argument("--scheduler-name", default="default-scheduler",
                   help="schedule pods whose spec.schedulerName is this (default default-scheduler)")
    p.add_argument("--bind-concurrency", type=int, default=64, metavar="N",
                   help="bindings in flight at once (default 64)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    p.set_defaults(func=_main)


async def _main(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    if args.bind_concurrency < 1:
        print("error: --bind-concurrency must be at least 1", file=sys.stderr)
        return 2
    stop = stop_on_signals()
    async with Client(args.server, user_agent="kubelite-scheduler") as client:
        try:
            await run_scheduler(client, stop=stop, leader_elect=args.leader_elect,
                                scheduler_name=args.scheduler_name, bind_concurrency=args.bind_concurrency)
        except LeadershipLost as err:
            # As kube-scheduler does: a scheduler that lost the lease exits, and its
            # supervisor (systemd) starts a fresh one that queues up as a candidate.
            print(f"error: {err}", file=sys.stderr)
            return 1
    return 0
