"""`kubelite apiserver` and `kubelite server`: the control plane processes.

`kubelite server` is the all-in-one control plane: an embedded etcd child process
(unless --etcd-servers points at one), the API server, and the scheduler, the
controller-manager and the cluster DNS (UDP and TCP port 53 of the bind address) talking to it
over HTTP like any other client. All of it lives in one TaskGroup: if any part dies, the
process exits non-zero with the reason (the DNS only retries a port it cannot bind).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import socket
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from api.durations import DurationError, parse_duration
from apiserver.allocator import DEFAULT_CLUSTER_IP_RANGE, DEFAULT_NODE_PORT_RANGE, parse_port_range
from apiserver.app import ServerConfig, create_app, tune_gc
from apiserver.auth.config import SecurityMaterial, ensure_security
from apiserver.auth.pki import PKIError
from apiserver.etcd_process import EtcdNotInstalled, EtcdProcess, EtcdStartFailed
from cli.daemon import setup_logging, stop_on_signals
from cli.dns_cmd import add_dns_flags

log = logging.getLogger("kubelite")


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except DurationError as err:
        raise argparse.ArgumentTypeError(str(err)) from err


def _add_serving_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bind-address", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=6443, help="port to listen on (default 6443)")
    p.add_argument("--unix-socket", type=Path, help="also serve on this unix socket (for nodes in other "
                   "network namespaces of this machine)")
    p.add_argument("--service-cluster-ip-range", default=DEFAULT_CLUSTER_IP_RANGE, metavar="CIDR",
                   help=f"Services' ClusterIPs come from here (default {DEFAULT_CLUSTER_IP_RANGE})")
    p.add_argument("--service-node-port-range", type=parse_port_range, default=DEFAULT_NODE_PORT_RANGE,
                   metavar="LOW-HIGH", help="Services' NodePorts come from here (default 30000-32767)")
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")


def _service_config(args: argparse.Namespace, advertise: str) -> dict[str, Any]:
    """ServerConfig settings for Services: the ranges, and where the `kubernetes` Service points."""
    return {"service_cluster_ip_range": args.service_cluster_ip_range,
            "service_node_port_range": args.service_node_port_range,
            "advertise_address": advertise, "advertise_port": args.port}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("apiserver", help="run the API server against an etcd cluster")
    p.add_argument("--etcd-servers", required=True, help="etcd client URL, e.g. http://127.0.0.1:2379")
    _add_serving_flags(p)
    p.set_defaults(func=run_apiserver)

    s = subparsers.add_parser("server", help="run the control plane: etcd, API server, scheduler, controllers")
    s.add_argument("--etcd-servers", help="use this etcd instead of starting one (e.g. http://127.0.0.1:2379)")
    s.add_argument("--data-dir", type=Path, default=Path("/var/lib/kubelite/server"),
                   help="where the embedded etcd keeps its data (default /var/lib/kubelite/server)")
    s.add_argument("--node-monitor-grace-period", type=_duration, default=40.0, metavar="DURATION",
                   help="how long a node may miss Lease renewals before it is NotReady (default 40s)")
    s.add_argument("--pod-eviction-timeout", type=_duration, default=300.0, metavar="DURATION",
                   help="how long pods stay on an unreachable node before eviction (default 5m)")
    s.add_argument("--cluster-cidr", default="10.244.0.0/16", help="pod network; each node gets a /24")
    s.add_argument("--no-controllers", action="store_true", help="run only etcd and the API server")
    s.add_argument("--no-dns", action="store_true", help="do not run the cluster DNS server")
    s.add_argument("--dns-port", type=int, default=53, metavar="PORT",
                   help="UDP and TCP port of the cluster DNS, on the bind address (default 53)")
    add_dns_flags(s, prefix="dns-")
    s.add_argument("--secure", action="store_true",
                   help="serve TLS with authentication even on loopback (always on for other addresses)")
    s.add_argument("--advertise-address", help="address nodes and clients use to reach this server "
                   "(default: the bind address, or this host's primary address for 0.0.0.0)")
    s.add_argument("--tls-san", action="append", default=[], metavar="NAME_OR_IP",
                   help="an extra name or address for the server certificate (repeatable)")
    s.add_argument("--join-token-ttl", type=_duration, default=24 * 3600.0, metavar="DURATION",
                   help="lifetime of the join token written on first start (default 24h, 0: never expires)")
    _add_serving_flags(s)
    s.set_defaults(func=run_server)


def _check_bind(address: str) -> str | None:
    try:
        if ipaddress.ip_address(address).is_loopback:
            return None
    except ValueError:
        if address == "localhost":
            return None
    return (f"refusing to listen on {address}: serving beyond loopback needs TLS and authentication, "
            "which `kubelite apiserver` does not serve; use `kubelite server` (TLS, authentication and "
            "authorization beyond loopback) or --bind-address 127.0.0.1")


async def _serve(config: ServerConfig, bind: str, port: int, unix_socket: Path | None) -> web.AppRunner:
    runner = web.AppRunner(create_app(config), handle_signals=False, access_log=None)
    await runner.setup()
    tls = config.auth.ssl_context() if config.auth is not None else None
    await web.TCPSite(runner, bind, port, ssl_context=tls).start()
    log.info("API server listening on %s://%s:%d", "https" if tls else "http", bind, port)
    if unix_socket is not None:
        unix_socket.parent.mkdir(parents=True, exist_ok=True)
        unix_socket.unlink(missing_ok=True)
        await web.UnixSite(runner, str(unix_socket)).start()
        unix_socket.chmod(0o600)  # root only: the socket is as powerful as the admin credential
        log.info("API server listening on unix://%s", unix_socket)
    tune_gc()
    return runner


async def run_apiserver(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    if (why := _check_bind(args.bind_address)) is not None:
        print(f"error: {why}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    stop_on_signals(stop)
    config = ServerConfig(etcd_servers=args.etcd_servers, **_service_config(args, args.bind_address))
    runner = await _serve(config, args.bind_address, args.port, args.unix_socket)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0


def _primary_address() -> str:
    """The address of the interface holding the default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("203.0.113.1", 9))  # TEST-NET-3: never answered, only routed
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def _security(args: argparse.Namespace) -> SecurityMaterial | None:
    """Certificates and credentials, made on first start: required beyond loopback."""
    if _check_bind(args.bind_address) is None and not args.secure:
        return None
    wildcard = args.bind_address in ("0.0.0.0", "::")
    advertise = _advertised(args)
    names = [advertise, *args.tls_san, socket.gethostname()]
    if not wildcard:
        names.append(args.bind_address)
    ips, dns = [], []
    for name in dict.fromkeys(names):
        try:
            ipaddress.ip_address(name)
            ips.append(name)
        except ValueError:
            dns.append(name)
    local = "127.0.0.1" if wildcard else args.bind_address
    ttl = dt.timedelta(seconds=args.join_token_ttl) if args.join_token_ttl else None
    return ensure_security(args.data_dir, advertise_url=f"https://{_host(advertise)}:{args.port}", ips=ips,
                           dns_names=dns, local_url=f"https://{_host(local)}:{args.port}", join_token_ttl=ttl)


def _advertised(args: argparse.Namespace) -> str:
    wildcard = args.bind_address in ("0.0.0.0", "::")
    return str(args.advertise_address or (_primary_address() if wildcard else args.bind_address))


def _host(address: str) -> str:
    return f"[{address}]" if ":" in address else address


async def run_server(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    try:
        material = _security(args)
    except (OSError, PKIError) as err:
        print(f"error: cannot prepare TLS and credentials in {args.data_dir}: {err}", file=sys.stderr)
        return 1
    etcd: EtcdProcess | None = None
    endpoint = args.etcd_servers
    if endpoint is None:
        etcd = EtcdProcess(args.data_dir / "etcd", client_port=None, log_file=args.data_dir / "etcd.log")
        try:
            args.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            await etcd.astart()
        except (EtcdNotInstalled, EtcdStartFailed, PermissionError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        endpoint = etcd.url
        log.info("embedded etcd at %s, data in %s", endpoint, args.data_dir / "etcd")
    stop = asyncio.Event()
    stop_on_signals(stop)
    runner: web.AppRunner | None = None
    try:
        config = ServerConfig(etcd_servers=endpoint, auth=material.config if material else None,
                              **_service_config(args, _advertised(args)))
        runner = await _serve(config, args.bind_address, args.port, args.unix_socket)
        if material is not None:
            log.info("admin kubeconfig: %s", material.admin_kubeconfig)
            log.info("join a node with: %s", material.join_command())
        async with asyncio.TaskGroup() as group:
            group.create_task(_until(stop))
            if not args.no_controllers:
                for starter in _control_loops(args, material):
                    group.create_task(starter(stop))
    finally:
        if runner is not None:
            await runner.cleanup()
        if etcd is not None:
            await etcd.astop()
    return 0


async def _until(stop: asyncio.Event) -> None:
    await stop.wait()


def _control_loops(args: argparse.Namespace, material: SecurityMaterial | None) -> list[Any]:
    """The scheduler, the controller-manager and the cluster DNS, each a client of the API server
    under its own identity when the server is secured."""
    from api.client import Client
    from cli.config import from_kubeconfig
    from cli.dns_cmd import options_from
    from controllers.manager import run_controller_manager
    from dns.run import run_dns
    from scheduler import run_scheduler

    def client_for(kubeconfig: Path | None, agent: str) -> Client:
        if kubeconfig is None:
            return Client(f"http://{_host(args.bind_address)}:{args.port}", user_agent=agent)
        target = from_kubeconfig(kubeconfig)
        return Client(target.server, ssl=target.ssl, token=target.token, user_agent=agent)

    async def scheduler(stop: asyncio.Event) -> None:
        kubeconfig = material.scheduler_kubeconfig if material is not None else None
        async with client_for(kubeconfig, "kubelite-scheduler") as client:
            await run_scheduler(client, stop=stop, leader_elect=True)

    async def controllers(stop: asyncio.Event) -> None:
        kubeconfig = material.controller_manager_kubeconfig if material is not None else None
        async with client_for(kubeconfig, "kubelite-controller-manager") as client:
            await run_controller_manager(client, node_monitor_grace_period=args.node_monitor_grace_period,
                                         pod_eviction_timeout=args.pod_eviction_timeout,
                                         cluster_cidr=args.cluster_cidr, leader_elect=True, stop=stop)

    async def dns(stop: asyncio.Event) -> None:
        kubeconfig = material.dns_kubeconfig if material is not None else None
        bind = args.bind_address
        options = options_from(args, bind=bind, port=args.dns_port)
        options.advertise = args.advertise_address or (_primary_address() if bind in ("0.0.0.0", "::") else None)
        delay = 1.0
        async with client_for(kubeconfig, "kubelite-dns") as client:
            while not stop.is_set():
                try:
                    await run_dns(client, options, stop=stop)
                except* OSError as group:
                    # A taken port is the machine's business, not a reason to stop the control
                    # plane: say so and try again, as a supervisor restarting it would.
                    log.error("the cluster DNS cannot listen on %s port %d: %s; retrying in %.0fs "
                              "(or use --dns-port / --no-dns)", bind, args.dns_port, group.exceptions[0], delay)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await stop.wait()
                delay = min(delay * 2, 30.0)

    return [scheduler, controllers] + ([] if args.no_dns else [dns])
