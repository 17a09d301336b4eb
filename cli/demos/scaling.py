"""Demo `scaling`: 3 replicas, then 5, then 1, and who does what each time.

    kubelite scale deployment/web --replicas 5
      -> Deployment controller: sets its ReplicaSet's replicas to 5
      -> ReplicaSet controller: sees 3 of 5 pods, creates 2
      -> scheduler: binds each new pod to a node, spreading pods of one owner
      -> kubelets: start the containers; the readiness probe makes them Ready
"""

from __future__ import annotations

from api.apps import Deployment
from cli.demos.stage import Stage
from cli.demos.view import node_of, node_ready, ready

NAME = "scaling"
SUMMARY = "scale a Deployment 3 -> 5 -> 1 and watch pods appear, spread over the nodes, and go"
MANIFEST = "scaling.yaml"


def _ready_count(stage: Stage) -> int:
    return sum(1 for p in stage.pods() if ready(p))


async def run(stage: Stage) -> None:
    nodes = [n.metadata.name or "" for n in stage.nodes() if node_ready(n)]
    up, down = max(5, len(nodes)), 1
    stage.say(f"The cluster has {len(nodes)} Ready node(s): {', '.join(sorted(nodes))}.")

    await stage.step("Create a Deployment `web` with 3 replicas.")
    stage.say("The Deployment controller creates a ReplicaSet; the ReplicaSet controller sees 0 of 3 pods and "
              "creates 3; the scheduler binds each to a node; each node's kubelet starts the container and marks "
              "the pod Ready when its readiness probe passes.")
    await stage.apply(MANIFEST)
    await stage.wait_for("3 pods Ready", lambda: _ready_count(stage) == 3 and len(stage.pods()) == 3, timeout=120)
    stage.check("3 pods are Ready", _ready_count(stage) == 3)

    await stage.step(f"Scale up to {up} replicas.")
    stage.say(f"Only the number changes (the /scale subresource). The Deployment controller sets its ReplicaSet to "
              f"{up}; the ReplicaSet controller sees 3 of {up} and creates {up - 3}; the scheduler prefers nodes "
              "with fewer pods of the same owner, so the pods spread out.")
    await stage.conn.api.update_scale(Deployment, "web", up, namespace=stage.namespace)
    stage.did(f"kubelite scale deployment/web --replicas {up} -n {stage.namespace}")
    await stage.wait_for(f"{up} pods Ready", lambda: _ready_count(stage) == up, timeout=120)
    stage.check(f"{up} pods are Ready", _ready_count(stage) == up)
    used = {node_of(p) for p in stage.pods()}
    spread = min(up, len(nodes))
    stage.check(f"the pods run on {spread} different nodes ({', '.join(sorted(used))})", len(used) >= spread)

    await stage.step(f"Scale down to {down} replica.")
    stage.say(f"The ReplicaSet controller sees {up} of {down} and deletes {up - down}, choosing pods that are "
              "not ready or are the newest first. Each deleted pod shows Terminating while its kubelet stops the "
              "container (SIGTERM, then SIGKILL when the grace period ends), then disappears.")
    await stage.conn.api.update_scale(Deployment, "web", down, namespace=stage.namespace)
    stage.did(f"kubelite scale deployment/web --replicas {down} -n {stage.namespace}")
    await stage.wait_for(f"{down} pod left, the others gone",
                         lambda: len(stage.pods(include_terminating=True)) == down and _ready_count(stage) == down,
                         timeout=90)
    stage.check(f"exactly {down} pod is left and it is Ready",
                len(stage.pods(include_terminating=True)) == down and _ready_count(stage) == down)
