"""`kubelite agent`: run the kubelet of this node against an API server.

`run_agent` is importable so that `kubelite up` can run agents itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

from api.client import Client
from cli.daemon import setup_logging, stop_on_signals
from kubelet.kubelet import Kubelet, KubeletConfig

__all__ = ["register", "run_agent"]


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("agent", help="run the node agent (kubelet): registers the node and runs its pods")
    p.add_argument("--server", required=True, metavar="URL", help="API server URL, e.g. http://127.0.0.1:6443")
    p.add_argument("--node-name", required=True, metavar="NAME", help="name of this node's Node object")
    p.add_argument("--root-dir", default="/var/lib/kubelite", metavar="DIR",
                   help="state: containers, images, logs, network (default /var/lib/kubelite)")
    p.add_argument("--node-ip", metavar="IP", help="InternalIP of the node (default: the default route's source)")
    p.add_argument("--cgroup-root", default="/sys/fs/cgroup", metavar="PATH",
                   help="cgroup mount (default /sys/fs/cgroup)")
    p.add_argument("--cgroup-parent", default="kubelite", metavar="NAME", help="cgroup for the pods (default kubelite)")
    p.add_argument("--port", type=int, default=10250, help="port of the logs/exec server (default 10250)")
    p.add_argument("--bind-address", metavar="IP",
                   help="address of the logs/exec server (default: --node-ip if given, else all addresses)")
    p.add_argument("--token", help="join token (kubeadm format) for a secured server; see its join-command file")
    p.add_argument("--ca-cert-hash", metavar="sha256:HEX",
                   help="pin of the cluster CA's public key, required with --token")
    p.add_argument("--kubeconfig", type=Path, metavar="FILE",
                   help="use this node credential instead of joining (default after a join: <root-dir>/pki)")
    p.add_argument("--network", choices=("bridge", "none"), default="bridge",
                   help="pod network: a bridge from the node's podCIDR (default), or loopback only")
    p.add_argument("--registry-mirror", action="append", default=[], metavar="REGISTRY=URL",
                   help="pull REGISTRY's images from this mirror first, then from REGISTRY itself "
                   "(containerd's hosts.toml mirrors), e.g. docker.io=http://198.51.100.1:5000; repeatable")
    p.add_argument("--cluster-dns", action="append", default=None, metavar="IP",
                   help="nameserver of pods with dnsPolicy ClusterFirst (default 10.43.0.10, the kube-dns "
                   "Service); repeatable; an empty value: pods use the node's resolver")
    p.add_argument("--cluster-domain", default="cluster.local", metavar="DOMAIN",
                   help="the cluster's DNS domain, searched by pods (default cluster.local)")
    _register_proxy(p)
    p.add_argument("-v", "--verbose", action="store_true", help="log at debug level")
    p.set_defaults(func=_main)


def _register_proxy(p: Any) -> None:
    p.add_argument("--proxy", action=argparse.BooleanOptionalAction, default=True,
                   help="run the service dataplane (kube-proxy's role, nftables table ip kubelite-svc) beside the "
                   "kubelet (default: on)")
    p.add_argument("--cluster-cidr", default="10.244.0.0/16", metavar="CIDR",
                   help="the pods' addresses, for the proxy's masquerade decisions (default 10.244.0.0/16)")
    p.add_argument("--service-cluster-ip-range", default="10.43.0.0/16", metavar="CIDR",
                   help="the ClusterIPs (the API server's flag of that name; default 10.43.0.0/16)")


def _proxy_settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"proxy": args.proxy, "cluster_cidr": args.cluster_cidr,
            "service_cidr": args.service_cluster_ip_range}


async def _run_proxier(client: Client, node_name: str, *, node_netns: str | None, cluster_cidr: str,
                       service_cidr: str) -> None:
    """The service dataplane of this node (proxy/), until cancelled; its rules stay in place
    (like kube-proxy's, so that a restart does not interrupt traffic)."""
    from proxy.proxier import Proxier
    from proxy.rules import Context

    path = (node_netns if "/" in node_netns else f"/run/netns/{node_netns}") if node_netns else None
    ctx = Context(node_name=node_name, cluster_cidr=cluster_cidr, service_cidr=service_cidr)
    await Proxier(client, ctx, netns_path=path).run()


async def credentials(server: str, node_name: str, *, root_dir: Path, token: str | None,
                      ca_cert_hash: str | None, kubeconfig: Path | None) -> tuple[str, Any, str | None]:
    """(server URL, TLS context, bearer token) for the kubelet's client.

    Against a secured server a node joins once with the token and the pinned CA hash
    (kubeadm's flow) and keeps the node certificate it receives under <root-dir>/pki; later
    starts reuse it, so an expired join token does not stop a restart."""
    from cli.config import from_kubeconfig

    if kubeconfig is None and token is not None:
        from apiserver.auth.join import join

        if not ca_cert_hash:
            raise SystemExit("error: --token needs --ca-cert-hash (printed by `kubelite server`)")
        kubeconfig = (await join(server, token, ca_cert_hash, node_name, root_dir / "pki")).kubeconfig
    if kubeconfig is None:
        return server, None, None
    target = from_kubeconfig(kubeconfig)
    return target.server, target.ssl, target.token


async def serving_tls(server: str, client_ssl: Any, node_name: str, *, node_ip: str | None,
                      root_dir: Path) -> dict[str, Any]:
    """KubeletConfig settings for a node of a secured cluster: the kubelet serves logs and exec
    over TLS with a certificate the cluster CA signs for this node, to the API server only."""
    from apiserver.auth.kubeletcert import KUBELET_CLIENT_USERS, ensure_kubelet_serving
    from kubelet.node import node_ip_guess

    serving = await ensure_kubelet_serving(server, client_ssl, node_name, [node_ip or node_ip_guess()],
                                           root_dir / "pki")
    return {"tls": serving.ssl_context(), "tls_clients": KUBELET_CLIENT_USERS}


async def run_agent(server: str, node_name: str, *, root_dir: str | Path = "/var/lib/kubelite",
                    node_ip: str | None = None, cgroup_root: str | Path = "/sys/fs/cgroup",
                    cgroup_parent: str = "kubelite", port: int = 10250, network: str = "bridge",
                    node_netns: str | None = None, stop: asyncio.Event | None = None,
                    ready: asyncio.Event | None = None, ssl: Any = None, token: str | None = None,
                    proxy: bool = False, cluster_cidr: str = "10.244.0.0/16", service_cidr: str = "10.43.0.0/16",
                    **extra: Any) -> None:
    """Run the kubelet (and with `proxy` the service dataplane beside it) until `stop` is set
    (containers and service rules keep working after it returns)."""
    stop = stop or asyncio.Event()
    config = KubeletConfig(node_name=node_name, root_dir=Path(root_dir), node_ip=node_ip,
                           cgroup_root=Path(cgroup_root), cgroup_parent=cgroup_parent, port=port, network=network,
                           node_netns=node_netns, **extra)
    async with Client(server, ssl=ssl, token=token, user_agent=f"kubelet/{node_name}") as client:
        kubelet = Kubelet(client, config)
        async with asyncio.TaskGroup() as tg:
            proxier = tg.create_task(_run_proxier(client, node_name, node_netns=node_netns, cluster_cidr=cluster_cidr,
                                                  service_cidr=service_cidr), name="proxy") if proxy else None

            async def kubelet_then_proxy() -> None:
                await kubelet.run(stop)
                if proxier is not None:
                    proxier.cancel()

            tg.create_task(kubelet_then_proxy(), name="kubelet")
            if ready is not None:
                await kubelet.ready.wait()
                ready.set()


async def _main(args: argparse.Namespace) -> int:
    setup_logging(args.verbose)
    stop = stop_on_signals()
    from apiserver.auth.join import JoinError
    from runtime.images import MirrorError, Mirrors

    try:
        Mirrors.parse(args.registry_mirror)
    except MirrorError as err:
        print(f"error: --registry-mirror: {err}", file=sys.stderr)
        return 2
    try:
        server, ssl, token = await credentials(args.server, args.node_name, root_dir=Path(args.root_dir),
                                               token=args.token, ca_cert_hash=args.ca_cert_hash,
                                               kubeconfig=args.kubeconfig)
    except JoinError as err:
        print(f"error: cannot join the cluster at {args.server}: {err}", file=sys.stderr)
        return 1
    tls: dict[str, Any] = {}
    if ssl is not None:
        from apiserver.auth.kubeletcert import ServingCertError

        try:
            tls = await serving_tls(server, ssl, args.node_name, node_ip=args.node_ip, root_dir=Path(args.root_dir))
        except ServingCertError as err:
            print(f"error: cannot obtain the kubelet's serving certificate (is --kubeconfig a node credential, "
                  f"system:node:{args.node_name}?): {err}", file=sys.stderr)
            return 1
    agent = asyncio.create_task(run_agent(
        server, args.node_name, ssl=ssl, token=token, root_dir=args.root_dir, node_ip=args.node_ip,
        cgroup_root=args.cgroup_root, cgroup_parent=args.cgroup_parent, port=args.port, network=args.network,
        stop=stop, bind_address=args.bind_address or args.node_ip or "0.0.0.0",
        registry_mirrors=args.registry_mirror, cluster_dns=[a for a in args.cluster_dns or ["10.43.0.10"] if a],
        cluster_domain=args.cluster_domain, **_proxy_settings(args), **tls))
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({agent, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not agent.done():
        # A kubelet still starting (e.g. retrying its registration) only sees `stop` once it
        # runs; give it a bounded grace, then cancel: its containers keep running either way.
        try:
            await asyncio.wait_for(asyncio.shield(agent), 10)
        except TimeoutError:
            agent.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await agent
            return 0
    agent.result()
    return 0
