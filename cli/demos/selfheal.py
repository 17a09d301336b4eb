"""Demo `self-healing`: a killed process comes back in the same pod; a deleted pod is replaced.

    process killed  -> the kubelet on that node sees the container exit and, as
                       restartPolicy is Always, starts it again: same pod, restartCount 1
    pod deleted     -> the ReplicaSet controller sees 2 of 3 pods and creates a new one,
                       which the scheduler places on a node

How the process is killed (see cli/demos/local.py): from the host, with the pid the
container runtime recorded, as `docker kill` does. `kubelite exec POD -- kill -9 1` would
not work: inside its PID namespace the main process is PID 1, and the kernel drops
signals sent to it from inside unless it handles them. A cluster not made by
`kubelite up` on this machine has its nodes elsewhere, so that half is skipped there.
"""

from __future__ import annotations

from api.core import Pod
from cli.demos.local import NotLocal
from cli.demos.stage import Stage
from cli.demos.view import main_container, node_of, ready, restarts

NAME = "self-healing"
SUMMARY = "kill a container's process (the kubelet restarts it), delete a pod (the ReplicaSet replaces it)"
MANIFEST = "self-healing.yaml"
REPLICAS = 3


def _all_ready(stage: Stage) -> bool:
    pods = stage.pods(include_terminating=True)
    return len(pods) == REPLICAS and all(ready(p) for p in pods)


async def run(stage: Stage) -> None:
    await stage.step(f"Create a Deployment `web` with {REPLICAS} replicas and wait for them.")
    await stage.apply(MANIFEST)
    await stage.wait_for(f"{REPLICAS} pods Ready", lambda: _all_ready(stage), timeout=120)
    if not stage.check(f"{REPLICAS} pods are Ready", _all_ready(stage)):
        return
    await _kill_process(stage)
    await _delete_pod(stage)


async def _kill_process(stage: Stage) -> None:
    victim = sorted(stage.pods(), key=lambda p: p.metadata.name or "")[0]
    name, uid = victim.metadata.name or "", victim.metadata.uid
    status = main_container(victim)
    await stage.step(f"Kill the main process (httpd) of pod {name}, as a crash would.")
    try:
        cluster = stage.local_cluster()
        pid = cluster.kill_container(node_of(victim), (status.container_id if status else None) or "")
    except NotLocal as err:
        stage.say(f"Skipped: {err}. On a real node you would find the container's host pid with the "
                  "runtime (like `docker inspect`) and `kill -9` it there.")
        return
    stage.did(f"kill -9 {pid}   # the host pid of {name}'s container, from the runtime's state.json on "
              f"{node_of(victim)}")
    stage.say("The kubelet on that node sees the container exit with code 137 (128 + SIGKILL). The pod's "
              "restartPolicy is Always, so it starts the container again, in the same pod, at once: the first "
              "restart has no back-off. The pod keeps its name and IP; only restartCount goes up.")

    def restarted() -> bool:
        pod = _by_name(stage, name)
        return pod is not None and restarts(pod) >= 1 and ready(pod)

    await stage.wait_for(f"{name} restarted and Ready again", restarted, timeout=60)
    pod = _by_name(stage, name)
    stage.check(f"{name} is the same pod (same uid), Ready, with restartCount 1",
                pod is not None and pod.metadata.uid == uid and ready(pod) and restarts(pod) == 1)
    last = main_container(pod) if pod else None
    code = last.last_state.terminated.exit_code if last and last.last_state and last.last_state.terminated else None
    stage.check(f"its last state says the container was killed (exit code {code}, want 137)", code == 137)


async def _delete_pod(stage: Stage) -> None:
    victim = sorted(stage.pods(), key=lambda p: p.metadata.name or "")[-1]
    name = victim.metadata.name or ""
    await stage.step(f"Delete pod {name} altogether.")
    await stage.conn.api.delete(Pod, name, namespace=stage.namespace)
    stage.did(f"kubelite delete pod {name} -n {stage.namespace}")
    stage.say(f"The pod is marked for deletion and its kubelet stops it. The ReplicaSet controller no longer "
              f"counts it: it sees {REPLICAS - 1} of {REPLICAS} pods and creates a replacement, with a new name; "
              "the scheduler binds it to a node and that node's kubelet starts it.")

    def replaced() -> bool:
        return _all_ready(stage) and _by_name(stage, name) is None

    await stage.wait_for(f"{name} gone and {REPLICAS} pods Ready", replaced, timeout=90)
    names = sorted(p.metadata.name or "" for p in stage.pods())
    stage.check(f"{REPLICAS} pods are Ready again and {name} is not one of them ({', '.join(names)})", replaced())


def _by_name(stage: Stage, name: str) -> Pod | None:
    return stage.pod_informer.get(f"{stage.namespace}/{name}")
