"""Demo `oom`: a container that allocates more than its memory limit is OOMKilled.

    limits.memory: 32Mi   -> the runtime writes it to the container's memory cgroup
    dd bs=200M            -> the kernel's OOM killer kills dd (SIGKILL, exit 137)
    the runtime           -> sees the cgroup's OOM kill count rise: reason OOMKilled
    the kubelet           -> reports it; with restartPolicy Never the pod ends Failed
"""

from __future__ import annotations

from cli.demos.stage import Stage
from cli.demos.view import main_container

NAME = "oom"
SUMMARY = "a container that allocates 200 MiB under a 32 MiB memory limit is OOMKilled (exit 137)"
POD = "memory-hog"


async def run(stage: Stage) -> None:
    await stage.step("Create a pod limited to 32 MiB of memory whose container allocates 200 MiB.")
    stage.say("The kubelet asks the runtime for a container whose memory cgroup has a 32 MiB limit. dd fills a "
              "200 MiB buffer; at 32 MiB the kernel's OOM killer kills it with SIGKILL. The runtime sees the "
              "cgroup's OOM kill counter go up and reports reason OOMKilled, exit code 137 (128 + 9); the pod's "
              "restartPolicy is Never, so it ends Failed.")
    await stage.apply("oom.yaml")

    def failed() -> bool:
        pod = stage.pod_informer.get(f"{stage.namespace}/{POD}")
        return pod is not None and pod.status is not None and pod.status.phase == "Failed"

    held = await stage.wait_for(f"{POD} Failed", failed, timeout=90)
    stage.check(f"{POD} is Failed", held)
    pod = stage.pod_informer.get(f"{stage.namespace}/{POD}")
    status = main_container(pod) if pod else None
    term = status.state.terminated if status and status.state else None
    if term is not None:
        stage.say(f"state.terminated: reason {term.reason}, exitCode {term.exit_code}")
    stage.check("its container was OOMKilled with exit code 137",
                term is not None and term.reason == "OOMKilled" and term.exit_code == 137)
