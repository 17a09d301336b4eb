"""`kubelite up` and `kubelite down`: a working cluster on this machine with one command.

    kubelite up                 etcd + API server + scheduler + controllers (one `kubelite server`
                                process) and one `kubelite agent` on this machine
    kubelite up --nodes 3       the same control plane, and three agents, each the kubelet of a
                                simulated host: a network namespace on a bridge (fabric.py)
    kubelite down               stops all of it and removes every container, mount, cgroup,
                                namespace and link it made

Everything lives under one state directory (default /var/lib/kubelite/up), recorded in
`cluster.json` so that `down` knows what to remove. Each node keeps its own runtime state
and image store under `<state>/nodes/<name>/`; its kubelet imports busybox:latest there.

A cluster registry (registry.py) runs beside the control plane; every kubelet pulls docker.io
names through it first (`--registry-mirror`), and `kubelite build` pushes there, so an image
built on this machine runs on every node.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console

from cli.local import daemons, registry
from cli.local.fabric import GATEWAY, Fabric
from runtime.images.errors import ImageError

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


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise UpError(f"{url} did not answer within {timeout:.0f}s")


def write_kubeconfig(path: Path, server: str, *, registry_address: str = "") -> None:
    """An admin kubeconfig; the cluster registry, if any, rides along as a cluster extension."""
    extension = (f"    extensions:\n    - name: {registry.EXTENSION}\n      extension:\n"
                 f"        address: {registry_address}\n        mirrors: docker.io\n") if registry_address else ""
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: kubelite\n  cluster:\n    server: {server}\n{extension}"
        "contexts:\n- name: kubelite\n  context:\n    cluster: kubelite\n    user: admin\n    namespace: default\n"
        "current-context: kubelite\nusers:\n- name: admin\n  user: {}\n")
    path.chmod(0o600)


def agent_argv(*, server: str, node: dict[str, str]) -> list[str]:
    """A node's kubelet. A simulated host's kubelet runs inside that host's network namespace
    (nsenter changes only the network namespace, so its containers' mounts stay visible), and
    reaches the API server over the unix socket, since the filesystem is shared."""
    argv = [KUBELITE, "agent", "--server", server, "--node-name", node["name"], "--root-dir", node["root_dir"],
            "--node-ip", node["node_ip"], "--port", node["port"], "--cgroup-parent", node["cgroup_parent"]]
    for mirror in node.get("registry_mirrors", "").split():
        argv += ["--registry-mirror", mirror]
    if node.get("netns"):
        argv = ["nsenter", f"--net=/run/netns/{node['netns']}", *argv]
    return argv


async def _nodes_ready(server: str, names: list[str], timeout: float) -> None:
    from api.client import Client
    from api.core import Node

    deadline = time.monotonic() + timeout
    async with Client(server) as client:
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
    sock = state_dir / "apiserver.sock"
    state = ClusterState(state_dir=str(state_dir), port=port, prefix=prefix)
    state.save()

    with console.status("starting the control plane (etcd, API server, scheduler, controllers)"):
        daemons.start("server", [KUBELITE, "server", "--data-dir", str(state_dir / "server"), "--port", str(port),
                                 "--unix-socket", str(sock), "--node-monitor-grace-period", grace_period,
                                 "--pod-eviction-timeout", eviction_timeout], state_dir)
        _wait_http(f"http://127.0.0.1:{port}/readyz", 60)
    console.print(f"[green]✓[/] control plane on http://127.0.0.1:{port}  (logs: {state_dir}/server.log)")

    if nodes == 1:
        # One node on this machine itself: its kubelet listens on loopback only, and hostPorts
        # answer on 127.0.0.1 as with `docker run -p`.
        name = f"{prefix}-node1"
        state.nodes = [{"name": name, "root_dir": str(state_dir / "nodes" / name), "netns": "",
                        "node_ip": "127.0.0.1", "port": str(kubelet_port), "cgroup_parent": name}]
        server = f"http://127.0.0.1:{port}"
    else:
        hosts = Fabric(prefix).create(nodes)
        state.nodes = [{"name": h.name, "root_dir": str(state_dir / "nodes" / h.name), "netns": h.name,
                        "node_ip": h.address, "port": "10250", "cgroup_parent": h.name} for h in hosts]
        server = f"unix://{sock}"
        console.print(f"[green]✓[/] {nodes} simulated hosts on {prefix}-br0 ({GATEWAY}/24)")
    state.save()
    # Where every node reaches it: loopback is the node's own for one node; simulated hosts
    # reach this machine at the bridge's gateway address.
    state.registry = _start_registry(state_dir, f"{'127.0.0.1' if nodes == 1 else GATEWAY}:{registry_port}")
    for node in state.nodes:
        if state.registry:
            node["registry_mirrors"] = " ".join(registry.mirror_settings(state.registry))
    state.save()
    for node in state.nodes:
        Path(node["root_dir"]).mkdir(parents=True, exist_ok=True)
        daemons.start(f"agent-{node['name']}", agent_argv(server=server, node=node), state_dir)
    asyncio.run(_nodes_ready(f"http://127.0.0.1:{port}", [n["name"] for n in state.nodes], 90))
    console.print(f"[green]✓[/] {len(state.nodes)} node(s) Ready")

    path = kubeconfig or state_dir / "kubeconfig"
    write_kubeconfig(path, f"http://127.0.0.1:{port}", registry_address=state.registry)
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
    from api.client import Client
    from api.core import Node

    async def ask() -> dict[str, str]:
        async with Client(f"http://127.0.0.1:{state.port}", timeout=5) as client:
            nodes = (await client.list(Node)).items
        return {n.metadata.name or "": n.spec.pod_cidr for n in nodes if n.spec and n.spec.pod_cidr}

    try:
        return asyncio.run(ask())
    except (OSError, ConnectionError, TimeoutError) as err:
        console.print(f"[yellow]warning:[/] cannot ask the API server for pod CIDRs ({err}); "
                      "pod networks are left for a re-run")
        return {}


def _clean_network(node: dict[str, str], pod_cidr: str | None) -> None:
    from runtime.network import NodeNetwork

    if pod_cidr is None:
        return
    NodeNetwork(Path(node["root_dir"]) / "network", pod_cidr=pod_cidr, node_ip=node["node_ip"],
                node_netns=node.get("netns") or None).teardown()


async def _clean_node(node: dict[str, str]) -> None:
    """Remove what a node's kubelet leaves running by design (containers outlive it)."""
    from cli.local.cleanup import clean_node

    await clean_node(Path(node["root_dir"]), cgroup_parent=node.get("cgroup_parent", "kubelite"))
