"""Demo `rolling-update`: v1 -> v2 pod by pod, a broken v3 that stalls, `rollout undo`.

    kubelite apply -f rolling-update-v2.yaml        (a new pod template)
      -> Deployment controller: new ReplicaSet (revision 2); then, repeatedly,
         scale it up by maxSurge, wait until its pods are available (Ready for
         minReadySeconds), scale the old one down, never below replicas - maxUnavailable
    a v3 whose readiness probe never passes -> the new pod is never available, so no old
         pod may go: the rollout stalls with v2 still serving
    kubelite rollout undo deployment/web -> the v2 template again; its ReplicaSet is
         scaled back up and v3's down to 0
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from api.core import Pod
from cli import rollout
from cli.demos.stage import Stage
from cli.demos.view import ready

NAME = "rolling-update"
SUMMARY = "roll v1 -> v2 with maxSurge 1 / maxUnavailable 0, stall on a v3 that never gets Ready, roll back"
REPLICAS, MAX_SURGE, MAX_UNAVAILABLE = 3, 1, 0


def version(pod: Pod) -> str:
    return (pod.metadata.labels or {}).get("version", "")


@dataclass
class Bounds:
    """The extremes seen during a rollout, sampled at every pod event the watch reports
    (pods being deleted do not count, as for the Deployment controller)."""

    most_pods: int = 0
    fewest_ready: int = REPLICAS
    active: bool = True

    def sample(self, pods: list[Pod]) -> None:
        self.most_pods = max(self.most_pods, len(pods))
        self.fewest_ready = min(self.fewest_ready, sum(1 for p in pods if ready(p)))


def _all_at(stage: Stage, want: str) -> bool:
    pods = stage.pods(include_terminating=True)
    return len(pods) == REPLICAS and all(version(p) == want and ready(p) for p in pods)


async def run(stage: Stage) -> None:
    await stage.step(f"Deploy v1 with {REPLICAS} replicas.")
    await stage.apply("rolling-update-v1.yaml")
    await stage.wait_for(f"{REPLICAS} v1 pods Ready", lambda: _all_at(stage, "v1"), timeout=120)
    if not stage.check(f"{REPLICAS} v1 pods are Ready", _all_at(stage, "v1")):
        return
    await _update_to_v2(stage)
    await _broken_v3(stage)
    await _undo(stage)


async def _update_to_v2(stage: Stage) -> None:
    await stage.step("Roll out v2: apply the same Deployment with a new pod template.")
    stage.say(f"The Deployment controller creates a ReplicaSet for the new template and moves over one pod at a "
              f"time: maxSurge {MAX_SURGE} lets it run {REPLICAS + MAX_SURGE} pods, maxUnavailable "
              f"{MAX_UNAVAILABLE} forbids fewer than {REPLICAS} available. So: one v2 pod starts; once its readiness "
              "probe passes and it has been Ready for minReadySeconds, one v1 pod is deleted; and again.")
    bounds = Bounds()
    stage.on_pod_change(lambda: bounds.sample(stage.pods()) if bounds.active else None)
    await stage.apply("rolling-update-v2.yaml")
    await stage.wait_for(f"{REPLICAS} v2 pods Ready, no v1 left", lambda: _all_at(stage, "v2"), timeout=180)
    bounds.active = False
    stage.check(f"all {REPLICAS} pods run v2", _all_at(stage, "v2"))
    stage.check(f"maxSurge held: at most {REPLICAS + MAX_SURGE} pods at once (saw {bounds.most_pods})",
                bounds.most_pods <= REPLICAS + MAX_SURGE)
    stage.check(f"maxUnavailable held: never fewer than {REPLICAS - MAX_UNAVAILABLE} Ready pods "
                f"(saw {bounds.fewest_ready})", bounds.fewest_ready >= REPLICAS - MAX_UNAVAILABLE)


async def _broken_v3(stage: Stage) -> None:
    await stage.step("Roll out a broken v3: it runs, but its readiness probe (GET /ready) gets 404.")
    stage.say("The controller starts one v3 pod (the surge). The kubelet runs its container but the probe fails, "
              "so the pod stays 0/1 Ready and never becomes available; with maxUnavailable 0 no v2 pod may go. "
              "The rollout stalls here, and the v2 pods keep serving.")
    await stage.apply("rolling-update-v3-broken.yaml")

    def v3_running() -> bool:
        return any(version(p) == "v3" and p.status is not None and p.status.phase == "Running" for p in stage.pods())

    await stage.wait_for("a v3 pod running", v3_running, timeout=90)
    await stage.watch_for(10, "nothing more happens: the v3 pod never gets Ready")
    pods = stage.pods()
    v2 = [p for p in pods if version(p) == "v2" and ready(p)]
    v3 = [p for p in pods if version(p) == "v3"]
    stage.check(f"the rollout is stuck: {len(v3)} v3 pod, not Ready", len(v3) == 1 and not ready(v3[0]))
    stage.check(f"all {REPLICAS} v2 pods are still Ready (saw {len(v2)})", len(v2) == REPLICAS)
    dep = await stage.conn.api.request("GET", rollout.DEPLOY.path(stage.namespace, "web"))
    message, finished = rollout.status_message(dep)
    stage.did(f"kubelite rollout status deployment/web --no-watch   # {message}")
    stage.check("rollout status says it is not finished", not finished)


async def _undo(stage: Stage) -> None:
    await stage.step("Roll back: kubelite rollout undo deployment/web.")
    stage.say("undo puts the previous revision's template (v2) back into the Deployment. Its ReplicaSet still "
              "exists with 3 Ready pods, so the controller only scales the v3 ReplicaSet to 0: the broken pod "
              "goes, and no v2 pod is touched.")
    stage.did(f"kubelite rollout undo deployment/web -n {stage.namespace}")
    args = argparse.Namespace(targets=["deployment/web"], namespace=stage.namespace, revision=None)
    await rollout.undo_cmd(args, stage.conn)
    await stage.wait_for(f"{REPLICAS} v2 pods Ready, no v3 left", lambda: _all_at(stage, "v2"), timeout=90)
    stage.check(f"back to {REPLICAS} Ready v2 pods and no v3 pod", _all_at(stage, "v2"))
