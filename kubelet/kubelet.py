"""The kubelet: one readable `run()` that owns every task of the node agent.

    register Node + Lease --> TaskGroup:
        pod informer (fieldSelector spec.nodeName=NAME) --handlers--> WorkQueue of pod uids
        N workers: PodWorkers.sync(uid)
        relister: runtime state diff every `relist` s --> enqueue uids whose containers changed;
                  uids the runtime has but the API does not (orphans) --> enqueue (sync removes them)
        heartbeat: Lease every `lease_renew` s, Node status on change / every `status_report` s
        node informer: podCIDR for the bridge network, peers' podCIDRs for host-gw routes
        service informer (all namespaces): the Docker-link variables of containers that start
        config sources: one watch per ConfigMap/Secret the node's pods name (configsources.py)
        HTTP server: logs, exec and stats for the API server's proxy (TLS + client check when
                     `tls` is set: see server.py)

Stopping (the `stop` event) cancels the tasks and leaves every container running: the next
kubelet re-adopts them from the runtime's state on disk. A task that dies takes the kubelet
down with its exception (TaskGroup), rather than leaving a half-working agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from api.client import Client
from api.core import Node, Pod
from api.errors import ApiError
from api.events import EventRecorder
from api.informer import Informer
from api.services import Service
from api.worker import run_workers
from api.workqueue import WorkQueue
from kubelet.configsources import ConfigSources
from kubelet.cri import PodRuntime
from kubelet.decide import BackoffPolicy
from kubelet.network import BridgeNetwork, NoNetwork, PodNetwork
from kubelet.node import NodeAgent, capacity, node_images, node_ip_guess, read_machine
from kubelet.podworker import UID_INDEX, DNSSettings, PodWorkers, uid_index
from kubelet.probes import ProbeManager, Target
from kubelet.server import KubeletServer
from runtime.images import Mirrors

log = logging.getLogger(__name__)


@dataclass
class KubeletConfig:
    node_name: str
    root_dir: Path = Path("/var/lib/kubelite")
    node_ip: str | None = None
    cgroup_root: Path = Path("/sys/fs/cgroup")
    cgroup_parent: str = "kubelite"
    port: int = 10250
    bind_address: str = "0.0.0.0"
    network: str = "bridge"  # or "none"
    bridge: str = "kl0"
    node_netns: str | None = None
    masquerade: bool = False
    lease_renew: float = 10.0
    lease_duration: int = 40
    status_report: float = 60.0
    relist: float = 1.0
    workers: int = 32
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    import_busybox: bool = True
    registry_mirrors: list[str] = field(default_factory=list)  # "docker.io=http://HOST:PORT", tried in order
    labels: dict[str, str] = field(default_factory=dict)
    # Pods' resolvers (dnsPolicy ClusterFirst): the kube-dns Service's address and the cluster's domain;
    # `dnsPolicy: Default` pods get the node's resolv.conf.
    cluster_dns: list[str] = field(default_factory=lambda: ["10.43.0.10"])
    cluster_domain: str = "cluster.local"
    resolv_conf: Path = Path("/etc/resolv.conf")
    # TLS for the logs/exec server (client certificate required) and the client identities it
    # accepts; None serves plain http to anyone (loopback development clusters only).
    tls: ssl.SSLContext | None = None
    tls_clients: frozenset[str] = frozenset()


class Kubelet:
    def __init__(self, client: Client, config: KubeletConfig) -> None:
        self.client = client
        self.config = config
        self.node_ip = config.node_ip or node_ip_guess()
        self.queue = WorkQueue(name="kubelet-pods", base_delay=0.5, max_delay=30)
        self.pods: Informer[Pod] = Informer(client, Pod, field_selector=f"spec.nodeName={config.node_name}",
                                            indexers={UID_INDEX: uid_index})
        self.nodes: Informer[Node] = Informer(client, Node)
        # Every namespace's Services: the Docker-link variables of a container starting now.
        self.services: Informer[Service] = Informer(client, Service)
        self.network: PodNetwork = NoNetwork()
        self.runtime: PodRuntime | None = None
        self.workers: PodWorkers | None = None
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        cfg = self.config
        cfg.root_dir.mkdir(parents=True, exist_ok=True)
        self.runtime = rt = await PodRuntime.open(cfg.root_dir, cgroup_root=cfg.cgroup_root,
                                                  cgroup_parent=cfg.cgroup_parent,
                                                  mirrors=Mirrors.parse(cfg.registry_mirrors))
        try:
            if cfg.import_busybox and not rt.images.has_image("busybox:latest"):
                from runtime.images.busybox import import_busybox

                with contextlib.suppress(Exception):
                    await asyncio.to_thread(import_busybox, rt.images)
            agent = NodeAgent(self.client, cfg.node_name, node_ip=self.node_ip, port=cfg.port,
                              root_dir=cfg.root_dir, labels=cfg.labels, lease_duration=cfg.lease_duration,
                              images=lambda: node_images(rt.images.list_images()))
            await self._retry(agent.register, "register the node")
            async with EventRecorder(self.client, component="kubelet", host=cfg.node_name) as recorder, \
                    asyncio.TaskGroup() as tg:
                probes = ProbeManager(tg, exec_fn=self._exec_probe, on_change=self.queue.add, clock=time.time,
                                      on_failure=lambda t, kind, out: self._probe_failed(t, kind, out))
                configs = ConfigSources(self.client, tg, on_change=self.queue.add)
                self.workers = PodWorkers(self.client, self.pods, rt, self.network, probes, recorder, self.queue,
                                          host_ip=self.node_ip, clock=time.time, backoff=cfg.backoff,
                                          allocatable=capacity(read_machine(cfg.root_dir)),
                                          services=self.services,
                                          dns=DNSSettings(cluster_dns=tuple(cfg.cluster_dns),
                                                          domain=cfg.cluster_domain,
                                                          node_resolv_conf=cfg.resolv_conf),
                                          configs=configs)
                self.pods.add_handler(on_add=self._enqueue, on_update=lambda _o, n: self._enqueue(n),
                                      on_delete=self._enqueue)
                server = KubeletServer(self.pods, rt, allowed_clients=cfg.tls_clients if cfg.tls else None)
                runner = web.AppRunner(server.app(), handle_signals=False, shutdown_timeout=1)
                await runner.setup()
                await web.TCPSite(runner, cfg.bind_address, cfg.port, reuse_address=True, ssl_context=cfg.tls).start()
                tasks = [tg.create_task(self.nodes.run(), name="kubelet-node-informer"),
                         tg.create_task(self.services.run(), name="kubelet-service-informer"),
                         tg.create_task(self._heartbeat(agent), name="kubelet-heartbeat")]
                await self.nodes.wait_synced()
                await self.services.wait_synced()  # no container starts without its service variables
                if cfg.network == "bridge":
                    await self._setup_bridge()
                tasks += [tg.create_task(self.pods.run(), name="kubelet-pod-informer"),
                          tg.create_task(run_workers(self.queue, self.workers.sync, workers=cfg.workers,
                                                     name="kubelet-pods"), name="kubelet-workers"),
                          tg.create_task(self._relist(), name="kubelet-relist")]
                await self.pods.wait_synced()
                for uid in rt.pod_uids():
                    self.queue.add(uid)
                self.ready.set()
                await stop.wait()
                self.queue.shut_down()
                probes.cancel_all()
                for t in tasks:
                    t.cancel()
                await configs.stop()
                await runner.cleanup()
        finally:
            await rt.close()

    def _enqueue(self, pod: Pod) -> None:
        if pod.metadata.uid:
            self.queue.add(pod.metadata.uid)

    async def _retry(self, fn: object, what: str) -> None:
        delay = 0.2
        while True:
            try:
                await fn()  # type: ignore[operator]
                return
            except (ApiError, ConnectionError, TimeoutError) as e:
                log.warning("kubelet: failed to %s, retrying in %.1fs: %s", what, delay, e)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)

    async def _exec_probe(self, container_id: str, argv: list[str]) -> tuple[int, str]:
        """Run an exec probe; its exit code and output (stdout then stderr, at most 10 KiB, as
        Kubernetes keeps)."""
        assert self.runtime is not None
        proc = await self.runtime.rt.exec(container_id, argv)
        result = await proc.communicate()
        output = (result.stdout + result.stderr)[:10 << 10]
        return result.exit_code, output.decode(errors="replace").strip()

    def _probe_failed(self, target: Target, kind: str, output: str) -> None:
        if self.workers is not None:
            self.workers.probe_failed(target, kind, output)

    async def _setup_bridge(self) -> None:
        """Wait for the node's podCIDR (the IPAM controller assigns it), then build the bridge."""
        cfg = self.config
        while True:
            node = self.nodes.get(cfg.node_name)
            cidr = node.spec.pod_cidr if node is not None and node.spec else None
            if cidr:
                break
            log.info("kubelet: waiting for node %s to get a podCIDR", cfg.node_name)
            await asyncio.sleep(0.5)
        net = BridgeNetwork(cfg.root_dir / "network", pod_cidr=cidr, node_ip=self.node_ip, bridge=cfg.bridge,
                            node_netns=cfg.node_netns, masquerade=cfg.masquerade)
        await net.setup()
        self.network = net
        if self.workers is not None:
            self.workers.network = net
        self.nodes.add_handler(on_add=lambda _n: self._routes_soon(), on_update=lambda _o, _n: self._routes_soon(),
                               on_delete=lambda _n: self._routes_soon())
        await self._set_routes()

    def _routes_soon(self) -> None:
        self._routes_dirty = True

    async def _set_routes(self) -> None:
        self._routes_dirty = False
        peers = {}
        for n in self.nodes.list():
            if n.metadata.name == self.config.node_name or n.spec is None or not n.spec.pod_cidr:
                continue
            ip = next((a.address for a in (n.status.addresses if n.status else None) or []
                       if a.type == "InternalIP"), None)
            if ip:
                peers[n.spec.pod_cidr] = ip
        await self.network.set_routes(peers)

    async def _heartbeat(self, agent: NodeAgent) -> None:
        last_status = time.monotonic()
        while True:
            await asyncio.sleep(min(self.config.lease_renew, self.config.status_report))
            try:
                await agent.renew_lease()
                if time.monotonic() - last_status >= min(10.0, self.config.status_report):
                    await agent.update_status(report_every=self.config.status_report)
                    last_status = time.monotonic()
            except (ApiError, ConnectionError, TimeoutError) as e:
                log.warning("kubelet: heartbeat failed: %s", e)

    async def _relist(self) -> None:
        assert self.runtime is not None
        before = self.runtime.snapshot()
        last_gc = time.monotonic()
        while True:
            await asyncio.sleep(self.config.relist)
            now = self.runtime.snapshot()
            changed = {uid for cid, (uid, phase) in now.items() if before.get(cid, ("", ""))[1] != phase}
            changed |= {uid for cid, (uid, _) in before.items() if cid not in now}
            for uid in changed:
                self.queue.add(uid)
            before = now
            if getattr(self, "_routes_dirty", False):
                try:
                    await self._set_routes()
                except Exception as e:
                    log.warning("kubelet: failed to set routes: %s", e)
            if time.monotonic() - last_gc > 10:
                last_gc = time.monotonic()
                known = {p.metadata.uid for p in self.pods.list()}
                for uid in self.runtime.pod_uids() - known:
                    self.queue.add(uid)  # an orphan: its sync removes it
                with contextlib.suppress(Exception):
                    await self.network.gc(known - {None})  # type: ignore[arg-type]
