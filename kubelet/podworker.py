"""The pod worker: `sync(pod_uid)` converges one pod's containers to its spec and reports status.

Keys are pod uids, not names: a pod deleted and re-created under the same name is another
pod, and a pod already gone from the API (so from the cache) must still be torn down.
The workqueue gives each uid to one worker at a time (client-go semantics): that is the
"one worker per pod" of Kubernetes' pod workers.

    sync(uid):  pod gone from the API       -> kill and remove everything of uid
                pod has deletionTimestamp   -> SIGTERM all, grace, SIGKILL; remove; free the IP;
                                               delete the object (grace 0, uid precondition)
                otherwise                   -> sandbox + network -> configMap/secret volumes
                                               (configvolumes.py; FailedMount holds every start)
                                               -> observe -> plan_pod (pure)
                                               -> remove/kill/pull/start -> observe -> status

Every step is idempotent, so a sync that raises is simply retried (with backoff) by the queue.
Cached pods are read-only: statuses are written on copies.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from api.base import now as api_now
from api.client import Client
from api.core import Container, Pod, Probe
from api.errors import Conflict, NotFound
from api.events import EventRecorder
from api.informer import Informer
from api.services import Service
from api.workqueue import WorkQueue
from kubelet import events as ev
from kubelet.atomicwriter import WriteError
from kubelet.configsources import ConfigSources, Ref, SyncTimeout, pod_refs
from kubelet.configvolumes import VolumeError, is_config_volume, payload, setup
from kubelet.cri import NeverPull, PodError, PodRuntime
from kubelet.decide import Backoff, BackoffPolicy, ContainerView, Observed, next_backoff, plan_pod
from kubelet.envvars import EnvError, container_env
from kubelet.network import PodNetwork
from kubelet.podhosts import HostnameError, hosts_file, pod_names
from kubelet.podstatus import TERMINAL, Observation, pod_status, same_status
from kubelet.probes import Kind, ProbeManager, Target
from kubelet.resolvconf import parse as parse_resolv_conf
from kubelet.resolvconf import pod_dns
from kubelet.servicelinks import service_env
from runtime.container import ContainerError, SandboxError
from runtime.images import ImageError

log = logging.getLogger(__name__)

UID_INDEX = "uid"


def uid_index(pod: Pod) -> list[str]:
    return [pod.metadata.uid] if pod.metadata.uid else []


@dataclass(slots=True)
class PodMemory:
    """What the kubelet remembers of a pod between syncs (in memory, as Kubernetes does)."""

    backoffs: dict[str, Backoff] = field(default_factory=dict)
    pull_backoffs: dict[str, tuple[float, Backoff, str]] = field(default_factory=dict)  # until, backoff, message
    image_ids: dict[str, str] = field(default_factory=dict)
    resolv_conf_written: bool = False


@dataclass(frozen=True, slots=True)
class DNSSettings:
    """The kubelet's `--cluster-dns` addresses, `--cluster-domain` and the node's resolv.conf
    (what `dnsPolicy: Default` pods get)."""

    cluster_dns: tuple[str, ...] = ("10.43.0.10",)
    domain: str = "cluster.local"
    node_resolv_conf: Path = Path("/etc/resolv.conf")


class PodWorkers:
    def __init__(self, client: Client, pods: Informer[Pod], runtime: PodRuntime, network: PodNetwork,
                 probes: ProbeManager, recorder: EventRecorder, queue: WorkQueue, *, host_ip: str,
                 clock: Callable[[], float], backoff: BackoffPolicy = BackoffPolicy(),
                 orphan_grace: float = 2.0, allocatable: Mapping[str, str] | None = None,
                 services: Informer[Service] | None = None, dns: DNSSettings = DNSSettings(),
                 configs: ConfigSources | None = None) -> None:
        self.client = client
        self.pods = pods
        self.runtime = runtime
        self.network = network
        self.probes = probes
        self.recorder = recorder
        self.queue = queue
        self.host_ip = host_ip
        self.clock = clock
        self.backoff = backoff
        self.orphan_grace = orphan_grace
        self.allocatable = dict(allocatable or {})  # the node's, for resourceFieldRef of unset limits
        self.services = services  # every namespace's, for the containers' service variables
        self.dns = dns
        self.configs = configs  # the ConfigMaps and Secrets the node's pods use
        self.memory: dict[str, PodMemory] = {}
        self.ips: dict[str, str | None] = {}

    def pod(self, uid: str) -> Pod | None:
        found = self.pods.by_index(UID_INDEX, uid)
        return found[0] if found else None

    async def sync(self, uid: str) -> None:
        pod = self.pod(uid)
        if pod is None:
            await self._teardown(uid, grace=self.orphan_grace)
            return
        if pod.metadata.deletion_timestamp is not None:
            await self._terminate(pod)
            return
        await self._converge(pod)

    # ------------------------------------------------------------ removal

    async def _teardown(self, uid: str, *, grace: float) -> None:
        self.probes.keep_only(uid, set())
        if uid in self.runtime.pod_uids():
            await self._stop_all(uid, grace)
            await self.runtime.remove_pod(uid, grace=0)
        await self.network.detach(uid)
        if self.configs is not None:
            self.configs.forget(uid)
        self.memory.pop(uid, None)
        self.ips.pop(uid, None)

    async def _stop_all(self, uid: str, grace: float) -> None:
        running = [o for o in self.runtime.containers(uid).latest.values() if o.state == "running"]
        async with asyncio.TaskGroup() as tg:
            for o in running:
                tg.create_task(self.runtime.stop(o.id, grace=grace))

    async def _terminate(self, pod: Pod) -> None:
        uid = pod.metadata.uid or ""
        grace = pod.metadata.deletion_grace_period_seconds
        if grace is None:
            grace = pod.spec.termination_grace_period_seconds if pod.spec.termination_grace_period_seconds \
                is not None else 30
        for o in self.runtime.containers(uid).latest.values():
            if o.state == "running":
                self.recorder.event(pod, "Normal", ev.KILLING, ev.stopping(o.name))
        await self._teardown(uid, grace=float(grace))
        with contextlib.suppress(NotFound, Conflict):
            await self.client.delete(Pod, pod.metadata.name or "", namespace=pod.metadata.namespace,
                                     grace_period_seconds=0, uid=uid)

    # ------------------------------------------------------------ convergence

    async def _converge(self, pod: Pod) -> None:
        uid = pod.metadata.uid or ""
        mem = self.memory.setdefault(uid, PodMemory())
        terminal = pod.status is not None and pod.status.phase in TERMINAL
        waiting: dict[str, tuple[str, str]] = {}
        plan_requeue: float | None = None
        init_failed = False
        if not (terminal and self.runtime.sandbox(uid) is None):
            try:
                names = pod_names(pod, domain=self.dns.domain)
            except HostnameError as e:
                self.recorder.event(pod, "Warning", ev.FAILED_SANDBOX, f"Failed to create pod sandbox: {e}")
                self.queue.add_after(uid, self.backoff.initial)
                await self._write_status(pod, waiting, init_failed)
                return
            sb = await self.runtime.ensure_sandbox(pod, hostname=names.uts)
            if not mem.resolv_conf_written:
                self._write_resolv_conf(pod, sb.dir / "etc" / "resolv.conf")
                mem.resolv_conf_written = True
            if uid not in self.ips or self.ips[uid] is None:
                ip = await self.network.attach(uid, sb.netns_path, host_ports=host_ports(pod))
                self.ips[uid] = ip
                (sb.dir / "etc" / "hosts").write_text(hosts_file(pod, names, ip))
            mount_error = await self._config_volumes(pod, sb.volume_dir)
            obs = self.runtime.containers(uid)
            specs = {c.name: c for c in [*(pod.spec.init_containers or []), *pod.spec.containers]}
            views = [ContainerView(c.name, init=True) for c in pod.spec.init_containers or []]
            views += [ContainerView(c.name) for c in pod.spec.containers]
            unhealthy = frozenset(o.id for o in obs.latest.values()
                                  if o.state == "running" and self.probes.unhealthy(o.id))
            now = self.clock()
            plan = plan_pod(views, obs.latest, restart_policy=pod.spec.restart_policy or "Always",
                            terminating=False, terminal=terminal, unhealthy=unhealthy, backoffs=mem.backoffs,
                            now=now, policy=self.backoff, pod_name=ev.pod_ref(pod))
            waiting.update(plan.waiting)
            plan_requeue, init_failed = plan.requeue_after, plan.init_failed
            for name in plan.waiting:
                self.recorder.event(pod, "Warning", ev.BACK_OFF, ev.restart_back_off(name, pod))
            for cid in plan.remove:
                await self.runtime.remove(cid)
            for cid, _why in plan.kill:
                name, kind = _name(obs.latest, cid), self.probes.failed_kind(cid)
                self.recorder.event(pod, "Normal", ev.KILLING,
                                    ev.failed_probe_kill(name, kind) if kind else ev.stopping(name))
                await self.runtime.stop(cid, grace=float(pod.spec.termination_grace_period_seconds or 0))
            if plan.kill:
                self.queue.add(uid)  # restart what the policy restarts, in the next pass
            if mount_error is not None and plan.start:
                self.queue.add_after(uid, self.backoff.initial)  # the watch also wakes it on a change
            for name in plan.start if mount_error is None else []:
                result = await self._start(pod, sb, specs[name], mem)
                if result is not None:
                    waiting[name] = result
            for cid in self.runtime.containers(uid).stale:
                await self.runtime.remove(cid)
            self._probe(pod, uid, sb.netns_path)
        for name, (until, _, message) in mem.pull_backoffs.items():
            if name not in waiting and until > self.clock():
                waiting[name] = ("ImagePullBackOff", message)
                plan_requeue = min(plan_requeue or 1e9, until - self.clock())
        if plan_requeue is not None:
            self.queue.add_after(uid, max(0.05, plan_requeue))
        await self._write_status(pod, waiting, init_failed)

    async def _start(self, pod: Pod, sb: object, c: Container, mem: PodMemory) -> tuple[str, str] | None:
        """Pull, create and start one container, with the kubelet's events for each step;
        (reason, message) of a waiting state when it cannot."""
        uid = pod.metadata.uid or ""
        image = c.image or ""
        prev = self.runtime.containers(uid).latest.get(c.name)
        now = self.clock()
        pb = mem.pull_backoffs.get(c.name)
        if pb is not None and pb[0] > now:
            self.recorder.event(pod, "Normal", ev.BACK_OFF, ev.pull_back_off(image))
            self.recorder.event(pod, "Warning", ev.FAILED, "Error: ImagePullBackOff")
            return ("ImagePullBackOff", pb[2])
        try:
            pulled = await self.runtime.pull(
                c, pulling=lambda: self.recorder.event(pod, "Normal", ev.PULLING, ev.pulling(image)))
        except NeverPull as e:
            self.recorder.event(pod, "Warning", ev.NEVER_PULL, str(e))
            self.recorder.event(pod, "Warning", ev.FAILED, "Error: ErrImageNeverPull")
            self.queue.add_after(uid, self.backoff.initial)  # the image may be imported meanwhile
            return ("ErrImageNeverPull", str(e))
        except ImageError as e:
            delay = next_backoff(pb[1] if pb else None, ran_for=0, policy=self.backoff)
            mem.pull_backoffs[c.name] = (now + delay.delay, delay, ev.pull_back_off(image))
            self.recorder.event(pod, "Warning", ev.FAILED, ev.pull_failed(image, e))
            self.recorder.event(pod, "Warning", ev.FAILED, "Error: ErrImagePull")
            self.queue.add_after(uid, delay.delay)
            return ("ErrImagePull", ev.pull_failed(image, e))
        mem.pull_backoffs.pop(c.name, None)
        if pulled.fallback is not None:
            self.recorder.event(pod, "Warning", ev.FAILED, ev.pull_failed(image, pulled.fallback))
        if pulled.pulled:
            self.recorder.event(pod, "Normal", ev.PULLED, ev.pulled(image, pulled.seconds, pulled.size))
        else:
            self.recorder.event(pod, "Normal", ev.PULLED, ev.already_present(image))
        if prev is not None and prev.state == "exited":
            ran_for = (prev.finished_at or now) - (prev.started_at or prev.finished_at or now)
            mem.backoffs[c.name] = next_backoff(mem.backoffs.get(c.name), ran_for=ran_for, policy=self.backoff)
        attempt = prev.attempt + 1 if prev is not None and prev.state != "created" else (prev.attempt if prev else 0)
        try:
            cid = await self.runtime.create(pod, sb, c, attempt=attempt,  # type: ignore[arg-type]
                                            env_for=lambda image_env: self._env(pod, c, image_env))
        except EnvError as e:
            self.recorder.event(pod, "Warning", ev.FAILED, f"Error: {e}")
            self.queue.add_after(uid, self.backoff.initial)
            return ("CreateContainerConfigError", str(e))
        except (ContainerError, SandboxError, PodError, ImageError, OSError) as e:
            self.recorder.event(pod, "Warning", ev.FAILED, f"Error: {e}")
            self.queue.add_after(uid, self.backoff.initial)
            return ("CreateContainerError", str(e))
        self.recorder.event(pod, "Normal", ev.CREATED, ev.created(c.name))
        try:
            await self.runtime.start(cid)
        except (ContainerError, OSError) as e:
            self.recorder.event(pod, "Warning", ev.FAILED, f"Error: {e}")
            self.queue.add_after(uid, self.backoff.initial)
            return ("RunContainerError", str(e))
        with contextlib.suppress(ImageError, OSError):
            mem.image_ids[cid] = self.runtime.images.resolve(image)
        self.recorder.event(pod, "Normal", ev.STARTED, ev.started(c.name))
        return None

    async def _config_volumes(self, pod: Pod, volume_dir: Callable[[str], Path]) -> str | None:
        """Watch the ConfigMaps and Secrets the pod names, and (re)write its configMap and secret
        volumes (a no-op when nothing changed; `atomicwriter`). Returns why its containers may
        not start yet (a FailedMount event says it for each volume), None when they may."""
        if self.configs is None:
            return None
        uid, ns = pod.metadata.uid or "", pod.metadata.namespace or "default"
        refs = pod_refs(pod)
        self.configs.track(uid, refs)
        if not refs:
            return None
        try:
            await self.configs.wait(refs)
        except SyncTimeout as e:
            return str(e)
        failed: str | None = None
        for v in pod.spec.volumes or []:
            if not is_config_volume(v):
                continue
            ref: Ref = ("configmap", ns, v.config_map.name or "") if v.config_map is not None \
                else ("secret", ns, (v.secret.secret_name if v.secret else None) or "")
            try:
                setup(volume_dir(v.name), payload(v, self.configs.get(ref)), memory=v.secret is not None)
            except (VolumeError, WriteError, OSError) as e:
                self.recorder.event(pod, "Warning", ev.FAILED_MOUNT, ev.mount_failed(v.name, e))
                failed = failed or str(e)
        return failed

    def _env(self, pod: Pod, c: Container, image_env: dict[str, str]) -> dict[str, str]:
        ns = pod.metadata.namespace or "default"
        links = {}
        if self.services is not None:
            links = service_env(self.services.list(), ns, enable_links=pod.spec.enable_service_links is not False)
        configs = self.configs
        skipped: list[str] = []
        env = container_env(pod, c, image_env, pod_ip=self.ips.get(pod.metadata.uid or ""), host_ip=self.host_ip,
                            allocatable=self.allocatable, service_env=links, skipped=skipped,
                            lookup=(lambda kind, name: configs.get((kind, ns, name)))  # type: ignore[arg-type]
                            if configs is not None else None)
        for message in skipped:
            self.recorder.event(pod, "Warning", ev.INVALID_ENV_NAMES, message)
        return env

    def _write_resolv_conf(self, pod: Pod, path: Path) -> None:
        """The pod's resolv.conf by its dnsPolicy (`kubelet.resolvconf`); what its limits cut is
        a Warning event, as the kubelet's DNSConfigForming."""
        try:
            node = parse_resolv_conf(self.dns.node_resolv_conf.read_text())
        except OSError as e:
            log.warning("kubelet: cannot read the node's %s: %s", self.dns.node_resolv_conf, e)
            node = parse_resolv_conf("")
        got = pod_dns(pod.spec, pod.metadata.namespace or "default", node=node, cluster_dns=self.dns.cluster_dns,
                      domain=self.dns.domain)
        for reason, message in got.warnings:
            self.recorder.event(pod, "Warning", reason, message)
        path.write_text(got.conf.text())

    def _probe(self, pod: Pod, uid: str, netns: object) -> None:
        latest = self.runtime.containers(uid).latest
        named = {p.name: p.container_port for c in pod.spec.containers for p in c.ports or [] if p.name}
        running: set[str] = set()
        for c in pod.spec.containers:
            o = latest.get(c.name)
            if o is None or o.state != "running":
                continue
            running.add(o.id)
            kinds: list[tuple[Kind, Probe | None]] = [("startup", c.startup_probe), ("liveness", c.liveness_probe),
                                                      ("readiness", c.readiness_probe)]
            for kind, probe in kinds:
                if probe is not None:
                    self.probes.ensure(kind, Target(pod_uid=uid, container_id=o.id, container_name=c.name,
                                                    probe=probe, started_at=o.started_at or self.clock(),
                                                    netns=netns,  # type: ignore[arg-type]
                                                    pod_ip=self.ips.get(uid), named_ports=named))
        self.probes.keep_only(uid, running)

    def probe_failed(self, target: Target, kind: str, output: str) -> None:
        """A probe attempt failed: the kubelet's Unhealthy event (aggregated when repeated)."""
        pod = self.pod(target.pod_uid)
        if pod is not None and pod.metadata.deletion_timestamp is None:
            self.recorder.event(pod, "Warning", ev.UNHEALTHY, ev.probe_failed(kind, output))

    # ------------------------------------------------------------ status

    def observation(self, pod: Pod, waiting: dict[str, tuple[str, str]], init_failed: bool) -> Observation:
        uid = pod.metadata.uid or ""
        obs = self.runtime.containers(uid)
        mem = self.memory.get(uid) or PodMemory()
        ready: dict[str, bool] = {}
        started: dict[str, bool] = {}
        for o in obs.latest.values():
            r = self.probes.result(o.id, "readiness")
            if r is not None:
                ready[o.id] = r
            s = self.probes.result(o.id, "startup")
            if s is not None:
                started[o.id] = s
        specs = {c.name: c for c in [*(pod.spec.init_containers or []), *pod.spec.containers]}

        def with_message(o: Observed) -> Observed:
            c = specs.get(o.name)
            if o.state != "exited" or o.message or c is None:
                return o
            return dataclasses.replace(o, message=self.runtime.termination_message(pod, c, o))

        obs = dataclasses.replace(obs, latest={n: with_message(o) for n, o in obs.latest.items()},
                                  previous={n: with_message(o) for n, o in obs.previous.items()})
        return Observation(latest=obs.latest, previous=obs.previous, waiting=waiting, ready=ready, started=started,
                           image_ids=mem.image_ids, init_failed=init_failed, host_ip=self.host_ip,
                           pod_ip=self.ips.get(uid))

    async def _write_status(self, pod: Pod, waiting: dict[str, tuple[str, str]], init_failed: bool) -> None:
        obs = self.observation(pod, waiting, init_failed)
        status = pod_status(pod, obs, now=api_now())
        if same_status(pod.status, status):
            return
        fresh = pod.copy_deep()
        fresh.status = status
        try:
            await self.client.update_status(fresh)
        except Conflict:
            live = await self.client.get(Pod, pod.metadata.name or "", namespace=pod.metadata.namespace)
            if live.metadata.uid != pod.metadata.uid:
                return
            live.status = pod_status(live, obs, now=api_now())
            await self.client.update_status(live)
        except NotFound:
            return


def _name(latest: Mapping[str, Observed], cid: str) -> str:
    for name, o in latest.items():
        if o.id == cid:
            return name
    return cid[:12]


def host_ports(pod: Pod) -> list[tuple[int, int, str]]:
    return [(p.host_port, p.container_port, p.protocol or "TCP")
            for c in pod.spec.containers for p in c.ports or [] if p.host_port]
