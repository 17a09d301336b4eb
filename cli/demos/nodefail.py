"""Demo `node-failure`: a node of a `kubelite up --nodes N` cluster fails; its pods move.

    the node's kubelet stops, its cable is pulled   (cli/demos/local.py)
      -> no Lease renewal for --node-monitor-grace-period: the node lifecycle controller
         marks it NotReady (Unknown) and taints it node.kubernetes.io/unreachable
      -> after --pod-eviction-timeout it deletes the node's pods; they stay Terminating,
         since only their (unreachable) kubelet can confirm they stopped
      -> the ReplicaSet controller counts only pods not being deleted: it creates
         replacements, and the scheduler keeps them off the tainted node
    the node comes back -> its kubelet reports Ready, the taint goes, the stale pods are
         cleaned up; the moved pods stay where they are (nothing rebalances them)

It needs two Ready nodes or more and a cluster made by `kubelite up` on this machine, as
only there can the demo pull a host's cable; elsewhere it says why and exits 2.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from api.core import Node
from cli.demos.local import LocalCluster, NotLocal
from cli.demos.stage import CannotRun, Stage
from cli.demos.view import node_of, node_ready, ready, terminating

NAME = "node-failure"
SUMMARY = "cut a node off (kubelet stopped, cable pulled): it goes NotReady and its pods move to other nodes"
UNREACHABLE = "node.kubernetes.io/unreachable"
PER_NODE = 2


def preflight(stage: Stage) -> None:
    nodes = [n for n in stage.nodes() if node_ready(n)]
    if len(nodes) < 2:
        raise CannotRun(f"a node failure needs at least 2 Ready nodes for the pods to move to; this cluster has "
                        f"{len(nodes)}. Try `kubelite up --nodes 3`.")
    try:
        cluster = stage.local_cluster()
    except NotLocal as err:
        raise CannotRun(f"the demo fails a node by stopping its kubelet and unplugging its simulated host, which "
                        f"only works for a cluster made by `kubelite up --nodes N` on this machine: {err}") from err
    if not cluster.can_fail_nodes():
        raise CannotRun("this `kubelite up` cluster's node is this machine itself; use `kubelite up --nodes 3`")


def _taints(node: Node | None) -> list[str]:
    return [t.key for t in (node.spec.taints if node and node.spec else None) or []]


async def run(stage: Stage) -> None:
    cluster = stage.local_cluster()
    nodes = sorted(n.metadata.name or "" for n in stage.nodes() if node_ready(n))
    replicas = PER_NODE * len(nodes)
    await stage.step(f"Deploy {replicas} web pods ({PER_NODE} per Ready node).")
    await stage.apply("node-failure.yaml", replicas=replicas)

    def all_ready() -> bool:
        pods = stage.pods(include_terminating=True)
        return len(pods) == replicas and all(ready(p) for p in pods)

    await stage.wait_for(f"{replicas} pods Ready", all_ready, timeout=150)
    if not stage.check(f"{replicas} pods are Ready", all_ready()):
        return
    per_node = Counter(node_of(p) for p in stage.pods())
    victim = max(sorted(per_node), key=lambda n: per_node[n])
    try:
        await _fail(stage, cluster, victim, replicas)
    except BaseException:  # Ctrl-C or an API error: never leave a host cut off, and do not wait for Enter
        await _restore(stage, cluster, victim, pause=False)
        raise
    await _restore(stage, cluster, victim)


async def _fail(stage: Stage, cluster: LocalCluster, victim: str, replicas: int) -> None:
    grace = cluster.server_flag("--node-monitor-grace-period") or "the grace period"
    eviction = cluster.server_flag("--pod-eviction-timeout") or "the eviction timeout"
    moving = sorted(p.metadata.name or "" for p in stage.pods() if node_of(p) == victim)
    await stage.step(f"Fail node {victim} (it runs {len(moving)} of the pods): stop its kubelet, pull its cable.")
    await asyncio.to_thread(cluster.fail_node, victim)  # blocking: netlink, waiting for the kubelet to stop
    stage.did(f"kill the kubelet of {victim}; ip link set {cluster.host(victim).veth} down")
    stage.say(f"Its containers still run, but nobody reports on them. The kubelet renewed its Lease every 10 s; "
              f"after {grace} without one, the node lifecycle controller marks the node NotReady and taints it "
              f"{UNREACHABLE}, so the scheduler places nothing new there.")

    def not_ready() -> bool:
        node = stage.node_informer.get(victim)
        return node is not None and not node_ready(node) and UNREACHABLE in _taints(node)

    held = await stage.wait_for(f"{victim} NotReady and tainted unreachable", not_ready, timeout=120)
    stage.check(f"{victim} is NotReady and tainted {UNREACHABLE}", held)
    stage.say(f"After {eviction} more, the controller deletes the node's pods. They stay Terminating (only their "
              f"kubelet could confirm they stopped), but the ReplicaSet controller no longer counts them: it sees "
              f"{replicas - len(moving)} of {replicas} and creates {len(moving)}, and the scheduler binds them to "
              "the other nodes.")

    def moved() -> bool:
        elsewhere = [p for p in stage.pods() if node_of(p) != victim and ready(p)]
        return len(elsewhere) == replicas

    held = await stage.wait_for(f"{replicas} Ready pods on the other nodes", moved, timeout=180)
    stage.check(f"{replicas} pods are Ready again, none on {victim}", held)


async def _restore(stage: Stage, cluster: LocalCluster, victim: str, *, pause: bool = True) -> None:
    await stage.step(f"Bring {victim} back: plug its cable in, start its kubelet.", pause=pause)
    await asyncio.to_thread(cluster.restore_node, victim)
    stage.did(f"ip link set {cluster.host(victim).veth} up; start the kubelet of {victim}")
    stage.say("The kubelet renews its Lease and reports Ready; the controller removes the taint. The kubelet "
              "finds the old pods deleted in the API and stops their containers, so they finally go. The moved "
              "pods stay where they are: Kubernetes does not move running pods back.")

    def back() -> bool:
        node = stage.node_informer.get(victim)
        stale = [p for p in stage.pods(include_terminating=True) if node_of(p) == victim and terminating(p)]
        return node is not None and node_ready(node) and not _taints(node) and not stale

    held = await stage.wait_for(f"{victim} Ready, untainted, its old pods gone", back, timeout=120)
    stage.check(f"{victim} is Ready again without taints and its old pods are gone", held)
