"""The kubelet's Event reasons and messages, worded as Kubernetes' kubelet words them.

People read these in `kubectl describe pod` and search the web with them, so reason and
message follow the kubelet's (pkg/kubelet/events and the image manager), in the order a
container meets them:

    Pulling    Normal   Pulling image "busybox:latest"
    Pulled     Normal   Successfully pulled image "X" in 1.2s (1.2s including waiting). Image size: N bytes.
               Normal   Container image "X" already present on machine
    Failed     Warning  Failed to pull image "X": <why>      then  Error: ErrImagePull
    BackOff    Normal   Back-off pulling image "X"           then  Error: ImagePullBackOff
    ErrImageNeverPull   Container image "X" is not present with pull policy of Never
    Created    Normal   Created container: web
    Started    Normal   Started container web
    Failed     Warning  Error: <why the container could not be created or started>
    Unhealthy  Warning  Liveness probe failed: <probe output>
    Killing    Normal   Container web failed liveness probe, will be restarted / Stopping container web
    BackOff    Warning  Back-off restarting failed container web in pod web_default(<uid>)

Durations print as Go's `time.Duration` does (`1.5s`, `250ms`, `1m20s`), since that is how
Kubernetes prints them in these messages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from api.core import Pod

PULLING = "Pulling"
PULLED = "Pulled"
FAILED = "Failed"
BACK_OFF = "BackOff"
NEVER_PULL = "ErrImageNeverPull"
CREATED = "Created"
STARTED = "Started"
KILLING = "Killing"
UNHEALTHY = "Unhealthy"
FAILED_SANDBOX = "FailedCreatePodSandBox"
FAILED_MOUNT = "FailedMount"
INVALID_ENV_NAMES = "InvalidEnvironmentVariableNames"


def go_duration(seconds: float) -> str:
    """`time.Duration.String()` to millisecond precision: 250ms, 1.5s, 1m20s, 5m0s, 1h2m3s."""
    ms = round(seconds * 1000)
    if ms < 1000:
        return f"{ms}ms" if ms else "0s"
    whole, frac = divmod(ms, 1000)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    sec_text = f"{secs + frac / 1000:g}s"
    if not hours and not minutes:
        return sec_text
    return (f"{hours}h" if hours else "") + f"{minutes}m" + sec_text


def pod_ref(pod: Pod) -> str:
    """The kubelet's `format.Pod`: name_namespace(uid)."""
    m = pod.metadata
    return f"{m.name}_{m.namespace or 'default'}({m.uid})"


def pulling(image: str) -> str:
    return f'Pulling image "{image}"'


def pulled(image: str, seconds: float, size: int) -> str:
    took = go_duration(seconds)
    return f'Successfully pulled image "{image}" in {took} ({took} including waiting). Image size: {size} bytes.'


def already_present(image: str) -> str:
    return f'Container image "{image}" already present on machine'


def pull_failed(image: str, why: object) -> str:
    return f'Failed to pull image "{image}": {why}'


def pull_back_off(image: str) -> str:
    return f'Back-off pulling image "{image}"'


def never_pull(image: str) -> str:
    return f'Container image "{image}" is not present with pull policy of Never'


def created(container: str) -> str:
    return f"Created container: {container}"


def started(container: str) -> str:
    return f"Started container {container}"


def stopping(container: str) -> str:
    return f"Stopping container {container}"


def probe_failed(kind: str, output: str) -> str:
    return f"{kind.capitalize()} probe failed: {output}"


def failed_probe_kill(container: str, kind: str) -> str:
    return f"Container {container} failed {kind} probe, will be restarted"


def restart_back_off(container: str, pod: Pod) -> str:
    return f"Back-off restarting failed container {container} in pod {pod_ref(pod)}"


def restart_back_off_waiting(container: str, pod: Pod, delay: float) -> str:
    """The CrashLoopBackOff waiting message of the container's status."""
    return f"back-off {go_duration(delay)} restarting failed container={container} pod={pod_ref(pod)}"


def mount_failed(volume: str, why: object) -> str:
    return f'MountVolume.SetUp failed for volume "{volume}" : {why}'
