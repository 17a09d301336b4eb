"""`kubelite dns`: the cluster DNS server (the CoreDNS role) against an API server.

    kubelite dns --server https://198.51.100.1:6443 --kubeconfig dns.kubeconfig \
        [--bind-address 198.51.100.1] [--port 53] [--upstream 1.1.1.1[:53]]... \
        [--cluster-domain cluster.local] [--cluster-dns-ip 10.43.0.10]

`kubelite server` runs the same thing in its own task (see cli/servers.py).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path
from typing import Any

from api.client import Client
from cli.config import ConfigError, from_kubeconfig
from cli.daemon import setup_logging, stop_on_signals
from dns.forward import Address, parse_upstream
from dns.run import DEFAULT_CLUSTER_DNS_IP, DnsOptions, run_dns

__all__ = ["add_dns_flags", "register", "run_dns"]


def _upstream(text: str) -> Address:
    try:
        return parse_upstream(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"--upstream wants IP or IP:PORT, got {text!r} ({err})") from err


def _ip(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an IP address: {text!r}") from err


def add_dns_flags(p: argparse.ArgumentParser, *, prefix: str = "") -> None:
    """The resolver flags shared by `kubelite dns` and `kubelite server` (there with `dns-` in front)."""
    p.add_argument(f"--{prefix}upstream", dest="upstream", type=_upstream, action="append", metavar="IP[:PORT]",
                   help="resolver for names outside the cluster domain (repeatable; default: the "
                        "nameservers of /etc/resolv.conf)")
    p.add_argument("--cluster-domain", default="cluster.local", help="the cluster's DNS zone (default cluster.local)")
    p.add_argument("--cluster-dns-ip", type=_ip, default=DEFAULT_CLUSTER_DNS_IP,
                   help=f"ClusterIP of the kube-system/kube-dns Service (default {DEFAULT_CLUSTER_DNS_IP})")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("dns", help="run the cluster DNS server (answers cluster.local, forwards the rest)")
    p.add_argument("--server", metavar="URL", help="API server URL, e.g. https://127.0.0.1:6443 "
                   "(default: the kubeconfig's)")
    p.add_argument("--kubeconfig", type=Path, metavar="FILE",
                   help="credentials (the system:kube-dns identity: dns.kubeconfig in the server's data dir)")
    p.add_argument("--bind-address", type=_ip, default="127.0.0.1", help="address to answer on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=53, help="UDP and TCP port (default 53)")
    p.add_argument("--advertise-address", type=_ip,
                   help="address written into the kube-dns endpoints (default: the bind address)")
    p.add_argument("--no-kube-dns-service", dest="keep_service", action="store_false",
                   help="do not create or keep the kube-system/kube-dns Service and endpoints")
    add_dns_flags(p)
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    p.set_defaults(func=_main)


def options_from(args: argparse.Namespace, *, bind: str, port: int) -> DnsOptions:
    return DnsOptions(bind=bind, port=port, upstreams=args.upstream, domain=args.cluster_domain,
                      cluster_dns_ip=args.cluster_dns_ip, advertise=getattr(args, "advertise_address", None),
                      keep_service=getattr(args, "keep_service", True))


async def _main(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    if args.bind_address in ("0.0.0.0", "::") and args.advertise_address is None and args.keep_service:
        print("error: with --bind-address 0.0.0.0, say which address the kube-dns endpoints carry "
              "(--advertise-address IP)", file=sys.stderr)
        return 2
    if not 0 <= args.port < 65536:
        print(f"error: --port {args.port} is out of range", file=sys.stderr)
        return 2
    server, ssl, token = args.server, None, None
    if args.kubeconfig is not None:
        try:
            target = from_kubeconfig(args.kubeconfig)
        except ConfigError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        server, ssl, token = server or target.server, target.ssl, target.token
    if server is None:
        print("error: say where the API server is: --server URL or --kubeconfig FILE", file=sys.stderr)
        return 2
    stop = stop_on_signals()
    code = 0
    async with Client(server, ssl=ssl, token=token, user_agent="kubelite-dns") as client:
        try:
            await run_dns(client, options_from(args, bind=args.bind_address, port=args.port), stop=stop)
        except* OSError as group:
            print(f"error: cannot listen on {args.bind_address} port {args.port}: {group.exceptions[0]}",
                  file=sys.stderr)
            code = 1
    return code
