"""Demo `crash-loop`: a container that keeps failing is restarted with growing delays.

    exit 1 -> the kubelet restarts it at once (restartCount 1)
    exit 1 -> it waits 10 s (STATUS CrashLoopBackOff), restarts it (restartCount 2)
    exit 1 -> it waits 20 s, then 40 s, ... capped at 5 minutes

The delays are kept per container by the kubelet (kubelet/decide.py); the waiting
reason and message ("back-off 20s restarting failed container=...") are in the pod's
status, which is what `kubectl get pods` turns into the STATUS column. The demo stops
once it has seen the back-off grow (restartCount 2, back-off 20 s): about 15 seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from cli.demos.stage import Stage
from cli.demos.view import main_container

NAME = "crash-loop"
SUMMARY = "a container that exits 1 is restarted, then held in CrashLoopBackOff with growing delays"
POD = "crasher"


@dataclass
class Timeline:
    """When each restart was first seen, and the back-off messages seen, at every pod event."""

    start: float = field(default_factory=time.monotonic)
    restarts: dict[int, float] = field(default_factory=dict)  # restartCount -> seconds since start
    backoffs: list[str] = field(default_factory=list)  # distinct CrashLoopBackOff messages, in order

    def observe(self, stage: Stage) -> None:
        pod = stage.pod_informer.get(f"{stage.namespace}/{POD}")
        status = main_container(pod) if pod else None
        if status is None:
            return
        self.restarts.setdefault(status.restart_count, time.monotonic() - self.start)
        waiting = status.state.waiting if status.state else None
        if waiting and waiting.reason == "CrashLoopBackOff" and waiting.message:
            if not self.backoffs or self.backoffs[-1] != waiting.message:
                self.backoffs.append(waiting.message)


async def run(stage: Stage) -> None:
    await stage.step("Create a pod whose container prints a line and exits 1 after a second.")
    stage.say("The scheduler binds it; the kubelet starts it. When it exits, restartPolicy Always says restart it: "
              "the first restart is immediate, then the kubelet waits 10 s, 20 s, 40 s ... (up to 5 min) between "
              "attempts, and the pod shows CrashLoopBackOff while it waits.")
    timeline = Timeline()
    stage.on_pod_change(lambda: timeline.observe(stage))
    await stage.apply("crash-loop.yaml")

    def second_backoff() -> bool:
        pod = stage.pod_informer.get(f"{stage.namespace}/{POD}")
        status = main_container(pod) if pod else None
        waiting = status.state.waiting if status and status.state else None
        return (status is not None and status.restart_count >= 2 and waiting is not None
                and waiting.reason == "CrashLoopBackOff")

    held = await stage.wait_for("CrashLoopBackOff after the second restart", second_backoff, timeout=90)
    for count, at in sorted(timeline.restarts.items()):
        stage.say(f"restartCount {count} seen at {at:5.1f}s")
    for message in timeline.backoffs:
        stage.say(f"waiting: CrashLoopBackOff, {message}")
    stage.check("the pod is in CrashLoopBackOff with restartCount 2 or more", held)
    first = timeline.restarts.get(1, 0.0) - timeline.restarts.get(0, 0.0)
    second = timeline.restarts.get(2, 0.0) - timeline.restarts.get(1, 0.0)
    stage.check(f"the delay grew: {first:.0f}s between the first two starts, {second:.0f}s before the third",
                1 in timeline.restarts and 2 in timeline.restarts and second >= first + 5)
    seen = " ".join(timeline.backoffs)
    stage.check("the kubelet's back-off grew: 10s, then 20s", "back-off 10s" in seen and "back-off 20s" in seen)
    pod = stage.pod_informer.get(f"{stage.namespace}/{POD}")
    status = main_container(pod) if pod else None
    last = status.last_state.terminated if status and status.last_state else None
    stage.check(f"the last attempt exited with code 1 ({last.exit_code if last else 'none'}, "
                f"reason {last.reason if last else 'none'})", last is not None and last.exit_code == 1)
