"""`kubelite up` and `kubelite down` (the work is in cli/local/)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_STATE = Path("/var/lib/kubelite/up")


def register(subparsers: Any) -> None:
    up = subparsers.add_parser("up", help="start a local cluster: control plane and N nodes on this machine")
    up.add_argument("--nodes", type=int, default=1, help="number of nodes; more than one are simulated hosts "
                    "in network namespaces on 198.51.100.0/24 (default 1)")
    up.add_argument("--data-dir", type=Path, default=DEFAULT_STATE, help=f"cluster state (default {DEFAULT_STATE})")
    up.add_argument("--port", type=int, default=6443, help="API server port (HTTPS) on 127.0.0.1 (one node) or "
                    "198.51.100.1, the simulated hosts' gateway (default 6443)")
    up.add_argument("--node-monitor-grace-period", default="20s", metavar="DURATION",
                    help="how long a node may miss Lease renewals (every 10s) before it is NotReady (default 20s)")
    up.add_argument("--pod-eviction-timeout", default="30s", metavar="DURATION")
    up.add_argument("--kubeconfig", type=Path, default=Path("/var/lib/kubelite/admin.kubeconfig"),
                    help="where to write the kubeconfig that kubelite and kubectl use (default "
                    "/var/lib/kubelite/admin.kubeconfig)")
    up.add_argument("--registry-port", type=int, default=5000,
                    help="port of the cluster registry that `kubelite build` pushes to and nodes pull from, on "
                    "127.0.0.1 (one node) or 198.51.100.1 (simulated hosts) (default 5000)")
    up.add_argument("--name-prefix", default="kl", help=argparse.SUPPRESS)  # tests use "kltest"
    up.set_defaults(func=_up)

    down = subparsers.add_parser("down", help="stop the local cluster and remove everything it made, keys included")
    down.add_argument("--data-dir", type=Path, default=DEFAULT_STATE)
    down.set_defaults(func=_down)


def _up(args: argparse.Namespace) -> int:
    from cli.local.up import UpError, console, up

    if args.nodes < 1:
        console.print("error: --nodes must be at least 1")
        return 2
    try:
        state = up(nodes=args.nodes, state_dir=args.data_dir, port=args.port,
                   prefix=args.name_prefix, grace_period=args.node_monitor_grace_period,
                   eviction_timeout=args.pod_eviction_timeout, kubeconfig=args.kubeconfig,
                   registry_port=args.registry_port)
    except UpError as err:
        console.print(f"[red]error:[/] {err}")
        console.print(f"logs are in {args.data_dir}; `kubelite down --data-dir {args.data_dir}` cleans up")
        return 1
    console.print(f"\ncluster ready. kubectl: export KUBECONFIG={state.kubeconfig}\n"
                  f"try: kubelite apply -f manifests/web.yaml && kubelite get pods -o wide")
    if state.registry:
        console.print("your own image: kubelite build -t my-app . && kubelite run my-app --image=my-app -p 4000:8080 "
                      "(the build is pushed to the cluster registry; see docs/registry.md)")
    return 0


def _down(args: argparse.Namespace) -> int:
    from cli.local.up import down

    down(state_dir=args.data_dir)
    return 0
