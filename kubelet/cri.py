"""The kubelet's thin adapter over `runtime`: pods and containers in Kubernetes terms.

    <root>/                 the runtime's own dirs (pods/, containers/, launcher.sock)
    <root>/images/          the image store
    <root>/logs/<ns>_<pod>_<uid>/<container>/<attempt>.log    container logs (CRI format)

The attempt number (a container's restartCount) is in its log path, which the runtime
keeps in `state.json`: a restarted kubelet reads restart counts back from the runtime and
`--previous` logs are simply `<attempt-1>.log`. Logs live outside the container dirs, so
removing an old container instance keeps its log until the pod goes.

Per container name the adapter keeps at most two instances, the latest and the one before
(for `lastState`); older ones are removed as soon as a newer one has started.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from api.core import Container, Pod
from api.quantity import cpu_millis, to_bytes
from kubelet.configvolumes import is_config_volume, unmount_under
from kubelet.decide import Observed
from kubelet.envvars import expand
from kubelet.logs import parse_records
from runtime.container import ContainerSpec, ContainerState, Mount, Phase, Resources, Runtime, Sandbox
from runtime.images import ImageError, ImageStore, Mirrors, ensure_image

log = logging.getLogger(__name__)


MAX_TERMINATION_MESSAGE = 4096  # bytes read from a termination file
FALLBACK_LOG_LINES, FALLBACK_LOG_BYTES = 80, 2048  # FallbackToLogsOnError: the log's tail


class PodError(Exception):
    """A pod could not be set up as asked (bad volume, bad spec); the message says which part."""


class NeverPull(Exception):
    """The image is not on the node and the pull policy is Never (Kubernetes' ErrImageNeverPull)."""

    def __init__(self, image: str) -> None:
        super().__init__(f'Container image "{image}" is not present with pull policy of Never')
        self.image = image


@dataclass(frozen=True, slots=True)
class Pulled:
    """What `PodRuntime.pull` did: nothing (`pulled` False: the image was already there, or the
    pull failed and the local copy runs, `fallback` saying why), or a pull of `size` bytes that
    took `seconds`."""

    image: str
    pulled: bool
    seconds: float = 0.0
    size: int = 0
    fallback: str | None = None


def _observed(st: ContainerState) -> Observed:
    state = {Phase.CREATED: "created", Phase.RUNNING: "running", Phase.EXITED: "exited"}[st.phase]
    return Observed(
        id=st.id, name=st.name, attempt=attempt_of(st), state=state,  # type: ignore[arg-type]
        started_at=st.started_at_ns / 1e9 if st.started_at_ns else None,
        finished_at=st.finished_at_ns / 1e9 if st.finished_at_ns else None,
        exit_code=st.exit_code, reason=st.reason, message=st.message,
    )


def attempt_of(st: ContainerState) -> int:
    stem = Path(st.log_path).stem
    return int(stem) if stem.isdigit() else 0


@dataclass(frozen=True, slots=True)
class PodContainers:
    latest: dict[str, Observed]
    previous: dict[str, Observed]
    stale: list[str]  # ids of instances older than the previous one


def group(states: list[ContainerState]) -> PodContainers:
    by_name: dict[str, list[ContainerState]] = {}
    for st in states:
        by_name.setdefault(st.name, []).append(st)
    latest, previous, stale = {}, {}, []
    for name, items in by_name.items():
        items.sort(key=lambda s: (attempt_of(s), s.created_at_ns), reverse=True)
        latest[name] = _observed(items[0])
        if len(items) > 1:
            previous[name] = _observed(items[1])
        stale += [s.id for s in items[2:]]
    return PodContainers(latest, previous, stale)


def argv_for(c: Container, entrypoint: list[str], cmd: list[str], env: dict[str, str]) -> list[str]:
    """command/args over the image's ENTRYPOINT/CMD, by Kubernetes' four rules."""
    if c.command:
        argv = list(c.command) + list(c.args or [])
    elif c.args:
        argv = entrypoint + list(c.args)
    else:
        argv = entrypoint + cmd
    return [expand(a, env) for a in argv]


def resources_for(c: Container) -> Resources:
    limits = (c.resources.limits if c.resources else None) or {}
    requests = (c.resources.requests if c.resources else None) or {}
    cpu_req = requests.get("cpu", limits.get("cpu"))
    return Resources(
        memory_limit=to_bytes(limits["memory"]) if "memory" in limits else None,
        cpu_limit_millis=cpu_millis(limits["cpu"]) if "cpu" in limits else None,
        cpu_request_millis=cpu_millis(cpu_req) if cpu_req is not None else None,
    )


class PodRuntime:
    def __init__(self, rt: Runtime, images: ImageStore, root: Path, *, mirrors: Mirrors | None = None) -> None:
        self.rt = rt
        self.images = images
        self.root = root
        self.mirrors = mirrors or Mirrors()
        (root / "logs").mkdir(parents=True, exist_ok=True)

    @classmethod
    async def open(cls, root: Path, *, cgroup_root: Path, cgroup_parent: str,
                   mirrors: Mirrors | None = None) -> PodRuntime:
        rt = await Runtime.open(root, cgroup_root=cgroup_root, cgroup_parent=cgroup_parent)
        return cls(rt, ImageStore(root / "images"), root, mirrors=mirrors)

    async def close(self) -> None:
        await self.rt.close()

    # ------------------------------------------------------------ observe

    def containers(self, pod_uid: str) -> PodContainers:
        return group(self.rt.list(pod_uid=pod_uid))

    def pod_uids(self) -> set[str]:
        return {sb.pod_uid for sb in self.rt.sandboxes()} | {st.pod_uid for st in self.rt.list()}

    def snapshot(self) -> dict[str, tuple[str, str]]:
        """container id -> (pod uid, phase), for the relister."""
        return {st.id: (st.pod_uid, st.phase.value) for st in self.rt.list()}

    def sandbox(self, pod_uid: str) -> Sandbox | None:
        return next((sb for sb in self.rt.sandboxes() if sb.pod_uid == pod_uid), None)

    def log_dir(self, pod: Pod) -> Path:
        m = pod.metadata
        return self.root / "logs" / f"{m.namespace or 'default'}_{m.name}_{m.uid}"

    def log_path(self, pod: Pod, container: str, attempt: int) -> Path:
        return self.log_dir(pod) / container / f"{attempt}.log"

    def termination_log(self, pod: Pod, container: str, attempt: int) -> Path:
        """The host file behind the container's terminationMessagePath (bind-mounted, as the
        kubelet does), kept beside its log so it outlives the container instance."""
        return self.log_dir(pod) / container / f"{attempt}.termination-log"

    def termination_message(self, pod: Pod, c: Container, o: Observed) -> str:
        """An exited container's `state.terminated.message`: its termination file (at most 4096
        bytes); with FallbackToLogsOnError, a failed container with an empty file gives the tail
        of its log instead (the last 80 lines, at most 2048 bytes), as Kubernetes does."""
        try:
            with self.termination_log(pod, c.name, o.attempt).open("rb") as f:
                text = f.read(MAX_TERMINATION_MESSAGE)
        except OSError:
            text = b""
        if not text.strip() and c.termination_message_policy == "FallbackToLogsOnError" and o.exit_code != 0:
            try:
                data = self.log_path(pod, c.name, o.attempt).read_bytes()[-(1 << 20):]
            except OSError:
                data = b""
            records, _ = parse_records(data)
            text = b"".join(r.text + b"\n" for r in records[-FALLBACK_LOG_LINES:])[-FALLBACK_LOG_BYTES:]
        return text.decode(errors="replace")

    # ------------------------------------------------------------ act

    async def ensure_sandbox(self, pod: Pod, *, hostname: str) -> Sandbox:
        """The pod's namespaces, its uts name `hostname` (`kubelet.podhosts`); idempotent."""
        m = pod.metadata
        return await self.rt.create_sandbox(m.uid or "", m.name or "", hostname=hostname)

    async def pull(self, c: Container, *, pulling: Callable[[], None] = lambda: None) -> Pulled:
        """Make the image present per imagePullPolicy (Always for :latest by default, as Kubernetes).
        Calls `pulling()` just before a registry is asked (the kubelet's "Pulling" event). Raises
        `NeverPull` for a missing image under policy Never, and `runtime.images.ImageError`
        (PullError) when a pull fails.

        A pull tries the node's registry mirrors first (`kubelite up` runs a cluster registry
        that mirrors docker.io, so `my-app:latest` built and pushed there is pulled on every
        start, as Always means). Deviation, for nodes that cannot reach Docker Hub: an Always
        pull of a Docker Hub name that is present locally (busybox:latest, imported by the
        kubelet) is skipped when no mirror covers docker.io, and when every host fails the
        local copy runs, with a warning in the kubelet's log and `Pulled.fallback` saying why."""
        image, policy = c.image or "", pull_policy(c)
        present = self.images.has_image(image)
        local_hub_copy = policy == "Always" and not explicit_registry(image) and present
        if policy == "Never" and not present:
            raise NeverPull(image)
        if (present and policy != "Always") or (local_hub_copy and not self.mirrors.endpoints(image)):
            return Pulled(image=image, pulled=False)
        pulling()
        began = time.monotonic()
        try:
            await ensure_image(self.images, image, policy=policy, mirrors=self.mirrors)  # type: ignore[arg-type]
        except ImageError as err:
            if not local_hub_copy:
                raise
            log.warning("kubelet: running the local copy of %s, as no registry has it: %s", image, err)
            return Pulled(image=image, pulled=False, fallback=str(err))
        return Pulled(image=image, pulled=True, seconds=time.monotonic() - began, size=self.image_size(image))

    def image_size(self, image: str) -> int:
        """Bytes of the image's config and layers as stored (compressed), as `crictl images` shows."""
        try:
            manifest = self.images.manifest(self.images.resolve(image))
        except (ImageError, OSError, ValueError):
            return 0
        return manifest.config.size + sum(layer.size for layer in manifest.layers)

    async def create(self, pod: Pod, sb: Sandbox, c: Container, *, attempt: int,
                     env_for: Callable[[dict[str, str]], dict[str, str]] | None = None) -> str:
        """Record one container instance (not started); returns its id. The image must be present.
        `env_for` builds the container's environment from the image's (`kubelet.envvars`); it may
        raise `EnvError`, and then nothing is created."""
        uid = pod.metadata.uid or ""
        cfg = self.images.config(self.images.resolve(c.image or ""))
        env = env_for(dict(cfg.env_dict)) if env_for is not None else dict(cfg.env_dict)
        lease = f"{uid}_{c.name}_{attempt}"
        rootfs = await self.images.rootfs(c.image or "", lease=lease)
        term = self.termination_log(pod, c.name, attempt)
        term.parent.mkdir(parents=True, exist_ok=True)
        term.touch()
        term.chmod(0o666)  # whatever user the container runs as may write it
        mounts = [*self.mounts(pod, sb, c), Mount(str(term), c.termination_message_path or "/dev/termination-log")]
        spec = ContainerSpec(
            name=c.name, argv=argv_for(c, list(cfg.entrypoint or ()), list(cfg.cmd or ()), env),
            lowerdirs=[str(p) for p in rootfs.lowerdirs], env=env,
            working_dir=c.working_dir or cfg.working_dir or "/", user=cfg.user,
            mounts=mounts, resources=resources_for(c),
            log_path=str(self.log_path(pod, c.name, attempt)),
        )
        Path(spec.log_path or "").parent.mkdir(parents=True, exist_ok=True)
        st = await self.rt.create_container(sb, spec)
        return st.id

    async def start(self, container_id: str) -> None:
        """Start a created container instance."""
        await self.rt.start(container_id)

    def mounts(self, pod: Pod, sb: Sandbox, c: Container) -> list[Mount]:
        volumes = {v.name: v for v in pod.spec.volumes or []}
        out = []
        for vm in c.volume_mounts or []:
            v = volumes.get(vm.name)
            if v is None:
                raise PodError(f"container {c.name} mounts volume {vm.name}, which the pod does not declare")
            if v.empty_dir is not None:
                source = sb.volume_dir(v.name)
            elif v.host_path is not None:
                source = Path(v.host_path.path)
                kind = v.host_path.type or ""
                if kind == "DirectoryOrCreate":
                    source.mkdir(parents=True, exist_ok=True)
                elif kind == "FileOrCreate" and not source.exists():
                    source.parent.mkdir(parents=True, exist_ok=True)
                    source.touch()
                elif not source.exists():
                    raise PodError(f"hostPath {source} of volume {v.name} does not exist")
            elif is_config_volume(v):
                # Written by the pod worker (kubelet.configvolumes) before any container starts;
                # always read-only, as Kubernetes mounts them. A subPath names one file, whose
                # inode the bind keeps: it is not updated, as in Kubernetes.
                source = sb.volume_dir(v.name)
                if vm.sub_path:
                    source = source / vm.sub_path
                    if not source.exists():
                        raise PodError(f"subPath {vm.sub_path} of volume {v.name} does not exist")
                out.append(Mount(str(source), vm.mount_path, read_only=True))
                continue
            else:
                raise PodError(f"volume {v.name}: only emptyDir, hostPath, configMap and secret volumes are "
                               "supported")
            if vm.sub_path:
                source = source / vm.sub_path
                source.mkdir(parents=True, exist_ok=True)
            out.append(Mount(str(source), vm.mount_path, read_only=bool(vm.read_only)))
        return out

    async def stop(self, container_id: str, *, grace: float) -> None:
        await self.rt.stop(container_id, grace=grace)

    async def remove(self, container_id: str) -> None:
        st = self.rt.status(container_id)
        await self.rt.remove(container_id)
        self.images.release(f"{st.pod_uid}_{st.name}_{attempt_of(st)}")

    async def remove_pod(self, pod_uid: str, *, grace: float) -> None:
        """Stop every container of the pod (SIGTERM, grace, SIGKILL), then remove them, the sandbox
        and the pod's logs."""
        states = self.rt.list(pod_uid=pod_uid)
        for st in states:
            if st.phase is Phase.RUNNING:
                await self.rt.stop(st.id, grace=grace)
        for st in states:
            await self.remove(st.id)
        sb = self.sandbox(pod_uid)
        if sb is not None:
            unmount_under(sb.dir / "volumes")  # secret tmpfs volumes, before the pod dir goes
        await self.rt.remove_sandbox(pod_uid)
        for d in (self.root / "logs").glob(f"*_{pod_uid}"):
            shutil.rmtree(d, ignore_errors=True)


def pull_policy(c: Container) -> str:
    if c.image_pull_policy:
        return c.image_pull_policy
    image = c.image or ""
    tagged = ":" in image.rsplit("/", 1)[-1]
    return "Always" if (not tagged or image.endswith(":latest")) and "@" not in image else "IfNotPresent"


def explicit_registry(image: str) -> bool:
    """True when the reference names its registry (`localhost:5000/app`, `registry.example/x`)."""
    first, sep, _ = image.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")
