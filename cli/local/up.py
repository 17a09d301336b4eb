"""`kubelite up` and `kubelite down`: a working cluster on this machine with one command.

    kubelite up                 etcd + API server + scheduler + controllers (one `kubelite server`
                                process) and one `kubelite agent` on this machine
    kubelite up --nodes 3       the same control plane, and three agents, each the kubelet of a
                                simulated host: a network namespace on a bridge (fabric.py)
    kubelite down               stops all of it and removes every container, mount, cgroup,
                                namespace and link it made, and every key and certificate

A local cluster is secured like one spread over real hosts, so what a learner sees here is
what a real cluster does:

    kubelite server --secure        TLS, client certificates, per-identity authorization, on
      on 127.0.0.1 (one node)       loopback, or on the bridge gateway 198.51.100.1 where the
      or 198.51.100.1 (hosts)       simulated hosts (and this machine) reach it; never on the
                                    machine's real interfaces. It writes its CA, the admin
                                    credential and a `join-command` under <state>/server/.
    kubelite agent --server https://... --token T --ca-cert-hash sha256:...
                                    each node runs that join command, as a worker would: it
                                    gets a node credential and a kubelet serving certificate
                                    under <state>/nodes/<name>/pki/, and its kubelet serves
                                    logs and exec over TLS to the API server only.
    <kubeconfig>                    the admin credential (client certificate), plus the
                                    cluster registry extension (registry.py), 0600.

Everything lives under one state directory (default /var/lib/kubelite/up), recorded in
`cluster.json` so that `down` knows what to remove. Each node keeps its own runtime state
and image store under `<state>/nodes/<name>/`; its kubelet imports busybox:latest there.

A cluster registry (registry.py) runs beside the control plane; every kubelet pulls docker.io
names through it first (`--registry-mirror`), and `kubelite build` pushes there, so an image
built on this machine runs on every node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import shutil
import ssl
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from rich.console import Console

from apiserver.auth.files import write_private
from cli.local import daemons, registry
from cli.local.fabric import GATEWAY, Fabric
from runtime.images.errors import ImageError

if TYPE_CHECKING:
    from api.client import Client

console = Console(stderr=True)
KUBELITE = str(Path(sys.executable).parent / "kubelite")


@dataclass
class ClusterState:
    """What `up` made, so `down` can remove exactly that."""

    state_dir: str
    port: int
    prefix: str
    nodes: list[dict[str, str]] = field(default_factory=list)  # name, root_dir, netns, node_ip, port, ...
    kubeconfig: str = ""
    registry: str = ""  # HOST:PORT of the cluster registry (plain http), "" when none runs
    server: str = ""  # https://HOST:PORT of the API server, as nodes and kubeconfigs reach it

    @property
    def server_dir(self) -> Path:
        """The control plane's data: etcd, the PKI, admin.kubeconfig, join-command."""
        return Path(self.state_dir, "server")

    @classmethod
    def load(cls, state_dir: Path) -> ClusterState | None:
        try:
            return cls(**json.loads((state_dir / "cluster.json").read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def save(self) -> None:
        Path(self.state_dir, "cluster.json").write_text(json.dumps(asdict(self), indent=2))


class UpError(RuntimeError):
    pass


def _wait_server(state: ClusterState, timeout: float) -> None:
    """Until the API server answers /readyz over TLS, verified against the CA it made on first
    start (the CA appears before the server listens); fail early if the server exits."""
    ca = state.server_dir / "pki" / "ca.crt"
    deadline = time.monotonic() + timeout
    error: object = "no answer"
    while time.monotonic() < deadline:
        if not daemons.running("server", Path(state.state_dir)):
            log = Path(state.state_dir, "server.log").read_text(errors="replace")[-800:]
            raise UpError(f"the control plane exited:\n{log.strip()}")
        if ca.exists():
            try:
                tls = ssl.create_default_context(cafile=str(ca))
                with urllib.request.urlopen(f"{state.server}/readyz", timeout=1, context=tls) as r:
                    if r.status == 200:
                        return
            except (OSError, ssl.SSLError) as err:
                error = err
        time.sleep(0.1)
    raise UpError(f"{state.server}/readyz did not answer within {timeout:.0f}s ({error})")


def write_kubeconfig(path: Path, server: str, *, registry_address: str = "", credential: Path | None = None) -> None:
    """The user's kubeconfig for the API server at `server`, with `default` as the context's
    namespace and the cluster registry, if any, riding along as a cluster extension.

    `credential` is a kubeconfig whose CA and user this one carries: for `up`, the server's
    admin.kubeconfig (the admin's client certificate). Written 0600 from its first byte,
    since it is then the cluster's master key."""
    doc: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config", "clusters": [{"name": "kubelite", "cluster": {}}],
        "contexts": [{"name": "kubelite", "context": {"cluster": "kubelite", "user": "admin"}}],
        "current-context": "kubelite", "users": [{"name": "admin", "user": {}}]}
    if credential is not None:
        doc = yaml.safe_load(credential.read_text())
    context = next(c["context"] for c in doc["contexts"] if c["name"] == doc["current-context"])
    context.setdefault("namespace", "default")
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
    cluster["server"] = server
    if registry_address:
        cluster["extensions"] = [{"name": registry.EXTENSION,
                                  "extension": {"address": registry_address, "mirrors": "docker.io"}}]
    write_private(path, yaml.safe_dump(doc, sort_keys=False))


def agent_argv(*, node: dict[str, str], server: str | None = None) -> list[str]:
    """A node's kubelet, started with the cluster's join command as a worker runs it
    (`kubelite agent --server https://... --token ... --ca-cert-hash ...`) plus this node's
    settings. A restart runs the same command: the agent finds its credential under its root
    dir and reuses it, so an expired join token does not keep a node down.

    A simulated host's kubelet runs inside that host's network namespace (nsenter changes only
    the network namespace, so its containers' mounts stay visible) and reaches the API server
    at the bridge gateway, as a worker reaches its control plane over the network.

    `server` is ignored: it is accepted for callers written when agents used the server's unix
    socket; the join command says where the server is."""
    del server
    join = shlex.split(Path(node["join_command"]).read_text())
    if join[:2] != ["kubelite", "agent"]:
        raise UpError(f"{node['join_command']} is not a `kubelite agent` command: {' '.join(join)}")
    argv = [KUBELITE, *join[1:], "--node-name", node["name"], "--root-dir", node["root_dir"],
            "--node-ip", node["node_ip"], "--port", node["port"], "--cgroup-parent", node["cgroup_parent"]]
    for mirror in node.get("registry_mirrors", "").split():
        argv += ["--registry-mirror", mirror]
    if node.get("netns"):
        argv = ["nsenter", f"--net=/run/netns/{node['netns']}", *argv]
    return argv


def admin_client(state: ClusterState, *, timeout: float = 30) -> Client:
    """A client of the API server as the cluster admin (the server's admin.kubeconfig)."""
    from api.client import Client
    from cli.config import from_kubeconfig

    target = from_kubeconfig(state.server_dir / "admin.kubeconfig")
    return Client(target.server, ssl=target.ssl, token=target.token, timeout=timeout, user_agent="kubelite-up")


async def _nodes_ready(state: ClusterState, names: list[str], timeout: float) -> None:
    from api.core import Node

    deadline = time.monotonic() + timeout
    async with admin_client(state) as client:
        with console.status("waiting for nodes to be Ready") as status:
            while True:
                nodes = {n.metadata.name: n for n in (await client.list(Node)).items}
                ready = [name for name in names if name in nodes and _is_ready(nodes[name])]
                status.update(f"waiting for nodes to be Ready: {len(ready)}/{len(names)}")
                if len(ready) == len(names):
                    return
                if time.monotonic() > deadline:
                    missing = sorted(set(names) - set(ready))
                    raise UpError(f"nodes not Ready after {timeout:.0f}s: {', '.join(missing)}")
                await asyncio.sleep(0.3)


def _is_ready(node: object) -> bool:
    status = getattr(node, "status", None)
    cond = status.condition("Ready") if status is not None else None
    return cond is not None and cond.status == "True"


def up(*, nodes: int, state_dir: Path, port: int, prefix: str, grace_period: str, eviction_timeout: str,
       kubeconfig: Path | None, kubelet_port: int = 10250,
       registry_port: int = registry.DEFAULT_PORT) -> ClusterState:
    if os.geteuid() != 0:
        raise UpError("kubelite up needs root: containers use namespaces, cgroups and mounts (try sudo)")
    existing = ClusterState.load(state_dir)
    if existing is not None and daemons.running("server", state_dir):
        raise UpError(f"a cluster is already running from {state_dir}; `kubelite down` first")
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    state = ClusterState(state_dir=str(state_dir), port=port, prefix=prefix)
    state.save()

    join_command = str(state.server_dir / "join-command")
    if nodes == 1:
        # One node on this machine itself: the API server and the kubelet listen on loopback
        # only, and hostPorts answer on 127.0.0.1 as with `docker run -p`.
        name = f"{prefix}-node1"
        state.nodes = [{"name": name, "root_dir": str(state_dir / "nodes" / name), "netns": "",
                        "node_ip": "127.0.0.1", "port": str(kubelet_port), "cgroup_parent": name,
                        "join_command": join_command}]
        bind = "127.0.0.1"
    else:
        # The hosts first: the API server listens on their bridge's gateway address, which
        # they reach over the (virtual) network and this machine reaches as a local address.
        hosts = Fabric(prefix).create(nodes)
        state.nodes = [{"name": h.name, "root_dir": str(state_dir / "nodes" / h.name), "netns": h.name,
                        "node_ip": h.address, "port": "10250", "cgroup_parent": h.name,
                        "join_command": join_command} for h in hosts]
        bind = GATEWAY
        console.print(f"[green]✓[/] {nodes} simulated hosts on {prefix}-br0 ({GATEWAY}/24)")
    state.server = f"https://{bind}:{port}"
    state.save()

    with console.status("starting the control plane (etcd, API server, scheduler, controllers)"):
        daemons.start("server", [KUBELITE, "server", "--secure", "--data-dir", str(state.server_dir),
                                 "--bind-address", bind, "--port", str(port),
                                 "--node-monitor-grace-period", grace_period,
                                 "--pod-eviction-timeout", eviction_timeout], state_dir)
        _wait_server(state, 60)
    console.print(f"[green]✓[/] control plane on {state.server}, TLS with client certificates "
                  f"(logs: {state_dir}/server.log; CA and credentials: {state.server_dir})")

    # Where every node reaches it: loopback is the node's own for one node; simulated hosts
    # reach this machine at the bridge's gateway address.
    state.registry = _start_registry(state_dir, f"{bind}:{registry_port}")
    for node in state.nodes:
        if state.registry:
            node["registry_mirrors"] = " ".join(registry.mirror_settings(state.registry))
    state.save()
    for node in state.nodes:
        Path(node["root_dir"]).mkdir(parents=True, exist_ok=True)
        daemons.start(f"agent-{node['name']}", agent_argv(node=node), state_dir)
    asyncio.run(_nodes_ready(state, [n["name"] for n in state.nodes], 90))
    console.print(f"[green]✓[/] {len(state.nodes)} node(s) joined with the join command and Ready; "
                  "kubelets serve logs and exec over TLS to the API server only")

    path = kubeconfig or state_dir / "kubeconfig"
    write_kubeconfig(path, state.server, registry_address=state.registry,
                     credential=state.server_dir / "admin.kubeconfig")
    state.kubeconfig = str(path)
    state.save()
    return state


def down(*, state_dir: Path) -> None:
    state = ClusterState.load(state_dir)
    if state is None:
        console.print(f"no cluster recorded in {state_dir}")
        return
    cidrs = _pod_cidrs(state)  # asked before the control plane stops
    for node in state.nodes:
        with console.status(f"stopping node {node['name']}"):
            daemons.stop(f"agent-{node['name']}", state_dir)
            asyncio.run(_clean_node(node))
            _clean_network(node, cidrs.get(node["name"]))
    with console.status("stopping the control plane"):
        daemons.stop("server", state_dir, grace=15)
    registry.stop(state_dir)  # its storage goes with the state directory
    if any(n.get("netns") for n in state.nodes):
        Fabric(state.prefix).destroy()
    if state.kubeconfig and Path(state.kubeconfig).parent != state_dir:
        Path(state.kubeconfig).unlink(missing_ok=True)
    shutil.rmtree(state_dir, ignore_errors=True)
    console.print("[green]✓[/] cluster removed")


def _start_registry(state_dir: Path, address: str) -> str:
    """Start the cluster registry and seed it with busybox; its address, or "" (with a warning)
    when it cannot run: the cluster still works, with images imported on each node by hand."""
    try:
        with console.status(f"starting the cluster registry on {address}"):
            registry.start(state_dir, address=address)
            registry.seed_busybox(state_dir, address=address)
    except (registry.ClusterRegistryError, OSError, ImageError) as err:
        registry.stop(state_dir)
        console.print(f"[yellow]warning:[/] no cluster registry ({err}); images built here will not reach "
                      "the nodes by themselves (see docs/registry.md)")
        return ""
    also = f" and http://{registry.loopback_alias(address)}" if registry.loopback_alias(address) != address else ""
    console.print(f"[green]✓[/] cluster registry on http://{address}{also}  (every node's mirror of docker.io; "
                  "`kubelite build` pushes there)")
    return address


def _pod_cidrs(state: ClusterState) -> dict[str, str]:
    from api.core import Node
    from cli.config import ConfigError

    async def ask() -> dict[str, str]:
        async with admin_client(state, timeout=5) as client:
            nodes = (await client.list(Node)).items
        return {n.metadata.name or "": n.spec.pod_cidr for n in nodes if n.spec and n.spec.pod_cidr}

    try:
        return asyncio.run(ask())
    except (OSError, ConnectionError, TimeoutError, ConfigError) as err:
        console.print(f"[yellow]warning:[/] cannot ask the API server for pod CIDRs ({err}); "
                      "pod networks are left for a re-run")
        return {}


def _clean_network(node: dict[str, str], pod_cidr: str | None) -> None:
    from proxy.applier import Applier, ApplyError
    from proxy.rules import Context
    from runtime.network import NodeNetwork

    netns = f"/run/netns/{node['netns']}" if node.get("netns") else None
    with contextlib.suppress(ApplyError):  # the service dataplane's table (gone with a removed namespace)
        Applier(Context(node_name=node["name"]), netns_path=netns).teardown()
    if pod_cidr is None:
        return
    NodeNetwork(Path(node["root_dir"]) / "network", pod_cidr=pod_cidr, node_ip=node["node_ip"],
                node_netns=node.get("netns") or None).teardown()


async def _clean_node(node: dict[str, str]) -> None:
    """Remove what a node's kubelet leaves running by design (containers outlive it)."""
    from cli.local.cleanup import clean_node

    await clean_node(Path(node["root_dir"]), cgroup_parent=node.get("cgroup_parent", "kubelite"))
