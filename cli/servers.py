"""`kubelite apiserver` and `kubelite server`: the control plane processes.

`kubelite server` is the all-in-one control plane: an embedded etcd child process
(unless --etcd-servers points at one), the API server, and the scheduler and
controller-manager talking to it over HTTP like any other client. All of it lives in
one TaskGroup: if any part dies, the process exits non-zero with the reason.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from api.durations import DurationError, parse_duration
from apiserver.app import ServerConfig, create_app
from apiserver.etcd_process import EtcdNotInstalled, EtcdProcess, EtcdStartFailed

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
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")


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
    _add_serving_flags(s)
    s.set_defaults(func=run_server)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def _check_bind(address: str) -> str | None:
    try:
        if ipaddress.ip_address(address).is_loopback:
            return None
    except ValueError:
        if address == "localhost":
            return None
    return (f"refusing to listen on {address}: serving beyond loopback needs TLS and authentication, "
            "which this kubelite build does not provide yet; use --bind-address 127.0.0.1")


async def _serve(config: ServerConfig, bind: str, port: int, unix_socket: Path | None) -> web.AppRunner:
    runner = web.AppRunner(create_app(config), handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, bind, port).start()
    log.info("API server listening on http://%s:%d", bind, port)
    if unix_socket is not None:
        unix_socket.parent.mkdir(parents=True, exist_ok=True)
        unix_socket.unlink(missing_ok=True)
        await web.UnixSite(runner, str(unix_socket)).start()
        unix_socket.chmod(0o600)  # root only: the socket is as powerful as the admin credential
        log.info("API server listening on unix://%s", unix_socket)
    return runner


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)


async def run_apiserver(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose)
    if (why := _check_bind(args.bind_address)) is not None:
        print(f"error: {why}", file=sys.stderr)
        return 1
    stop = asyncio.Event()
    _stop_on_signals(stop)
    runner = await _serve(ServerConfig(etcd_servers=args.etcd_servers), args.bind_address, args.port,
                          args.unix_socket)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    return 0


async def run_server(args: argparse.Namespace) -> int:
    _setup_logging(args.verbose)
    if (why := _check_bind(args.bind_address)) is not None:
        print(f"error: {why}", file=sys.stderr)
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
    _stop_on_signals(stop)
    runner: web.AppRunner | None = None
    try:
        runner = await _serve(ServerConfig(etcd_servers=endpoint), args.bind_address, args.port, args.unix_socket)
        url = f"http://{args.bind_address}:{args.port}"
        async with asyncio.TaskGroup() as group:
            group.create_task(_until(stop))
            if not args.no_controllers:
                for starter in _control_loops(args):
                    group.create_task(starter(url, stop))
    finally:
        if runner is not None:
            await runner.cleanup()
        if etcd is not None:
            await etcd.astop()
    return 0


async def _until(stop: asyncio.Event) -> None:
    await stop.wait()


def _control_loops(args: argparse.Namespace) -> list[Any]:
    """The scheduler and the controller-manager, each a client of the API server."""
    from api.client import Client
    from controllers.manager import run_controller_manager
    from scheduler import run_scheduler

    async def scheduler(url: str, stop: asyncio.Event) -> None:
        async with Client(url, user_agent="kubelite-scheduler") as client:
            await run_scheduler(client, stop=stop, leader_elect=True)

    async def controllers(url: str, stop: asyncio.Event) -> None:
        async with Client(url, user_agent="kubelite-controller-manager") as client:
            await run_controller_manager(client, node_monitor_grace_period=args.node_monitor_grace_period,
                                         pod_eviction_timeout=args.pod_eviction_timeout,
                                         cluster_cidr=args.cluster_cidr, leader_elect=True, stop=stop)

    return [scheduler, controllers]
