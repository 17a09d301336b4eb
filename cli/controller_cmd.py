"""`kubelite controller-manager`: run every controller against an API server.

    kubelite controller-manager --server http://127.0.0.1:6443 \
        [--node-monitor-grace-period 40s] [--pod-eviction-timeout 5m] \
        [--cluster-cidr 10.244.0.0/16] [--leader-elect | --no-leader-elect]

Durations are Go durations (`5s`, `2m`, `1h30m`). Leader election is on by default, as in
Kubernetes, so that starting a second controller-manager is safe.
"""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from api.client import Client
from api.durations import DurationError, parse_duration
from cli.daemon import setup_logging, stop_on_signals
from controllers.manager import run_controller_manager

__all__ = ["register", "run_controller_manager"]


def _duration(text: str) -> float:
    try:
        value = parse_duration(text)
    except DurationError as err:
        raise argparse.ArgumentTypeError(str(err)) from err
    if value <= 0:
        raise argparse.ArgumentTypeError(f"duration must be positive, got {text!r}")
    return value


def _cidr(text: str) -> str:
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"invalid CIDR {text!r}: {err}") from err
    if net.version != 4 or net.prefixlen > 24:
        raise argparse.ArgumentTypeError(f"--cluster-cidr must be an IPv4 network of /24 or larger, got {text}")
    return str(net)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("controller-manager",
                              help="run the controllers: deployments, replicasets, GC, namespaces, nodes")
    p.add_argument("--server", required=True, metavar="URL", help="API server URL, e.g. http://127.0.0.1:6443")
    p.add_argument("--node-monitor-grace-period", type=_duration, default=40.0, metavar="DURATION",
                   help="how long a node may miss Lease renewals before it is marked Unknown (default 40s)")
    p.add_argument("--pod-eviction-timeout", type=_duration, default=300.0, metavar="DURATION",
                   help="how long pods stay on an unreachable node before eviction (default 5m)")
    p.add_argument("--cluster-cidr", type=_cidr, default="10.244.0.0/16", metavar="CIDR",
                   help="pod network; each node gets a /24 of it (default 10.244.0.0/16)")
    p.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                   help="act only while holding the kube-system/kube-controller-manager Lease (default on)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    p.set_defaults(func=_main)


async def _main(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    stop = stop_on_signals()
    async with Client(args.server, user_agent="kubelite-controller-manager") as client:
        await run_controller_manager(client, node_monitor_grace_period=args.node_monitor_grace_period,
                                     pod_eviction_timeout=args.pod_eviction_timeout,
                                     cluster_cidr=args.cluster_cidr, leader_elect=args.leader_elect, stop=stop)
    return 0
