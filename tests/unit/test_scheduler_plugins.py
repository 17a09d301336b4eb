"""Each filter and score plugin, and the pipeline's messages, on hand-made examples."""

from __future__ import annotations

import pytest

from scheduler.cache import SchedulerCache
from scheduler.framework import NO_NODES_MESSAGE, CycleState, Snapshot, schedule
from scheduler.nodeinfo import NodeInfo, PodInfo, Resources, pod_requests
from scheduler.plugins import (
    HostPorts,
    LeastAllocated,
    NodeAffinity,
    NodeReadySchedulable,
    OwnerSpread,
    ResourcesFit,
    TaintToleration,
    default_profile,
)
from tests.unit.test_scheduler_builders import make_node, make_pod, required_affinity

PROFILE = default_profile()


def cluster(*nodes: object, pods: tuple[object, ...] = ()) -> SchedulerCache:
    cache = SchedulerCache()
    for node in nodes:
        cache.add_node(node)  # type: ignore[arg-type]
    for pod in pods:
        cache.add_pod(pod)  # type: ignore[arg-type]
    return cache


def run(cache: SchedulerCache, pod: object) -> tuple[str | None, str]:
    result = schedule(cache.snapshot(), PodInfo.from_pod(pod), PROFILE)  # type: ignore[arg-type]
    return result.node_name, result.error.message if result.error else ""


def test_message_matches_kubernetes_form() -> None:
    cache = cluster(
        make_node("a", cpu="1", labels={"disk": "hdd"}),
        make_node("b", cpu="1", labels={"disk": "hdd"}),
        make_node("c", cpu="8", labels={"disk": "ssd"}),
    )
    pod = make_pod("web", cpu="2", node_selector={"disk": "hdd"})
    # The histogram strings are sorted, as kube-scheduler's FitError sorts them.
    assert run(cache, pod) == (
        None,
        "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 Insufficient cpu.",
    )
    cache = cluster(
        make_node("a", cpu="1"), make_node("b", labels={"x": "y"}), make_node("c", labels={"x": "y"})
    )
    pod = make_pod("web", cpu="2", affinity=required_affinity("x", "NotIn", ["y"]))
    assert run(cache, pod) == (
        None,
        "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match Pod's node affinity/selector.",
    )


def test_no_nodes() -> None:
    assert run(cluster(), make_pod("p")) == (None, NO_NODES_MESSAGE)


def test_resources_fit_counts_existing_and_reports_every_shortage() -> None:
    node = make_node("a", cpu="2", memory="1Gi", pods=2)
    cache = cluster(node, pods=(make_pod("old", cpu="1500m", memory="800Mi", node_name="a"),))
    assert run(cache, make_pod("p", cpu="500m", memory="224Mi"))[0] == "a"
    assert run(cache, make_pod("p", cpu="600m", memory="225Mi"))[1] == (
        "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory."
    )
    cache.add_pod(make_pod("old2", node_name="a"))
    assert run(cache, make_pod("p"))[1] == "0/1 nodes are available: 1 Too many pods."


def test_terminal_pods_hold_nothing() -> None:
    cache = cluster(
        make_node("a", cpu="1"), pods=(make_pod("done", cpu="1", node_name="a", phase="Succeeded"),)
    )
    assert run(cache, make_pod("p", cpu="1"))[0] == "a"


def test_node_without_pod_capacity_takes_no_pods() -> None:
    assert (
        run(cluster(make_node("a", pods=None)), make_pod("p"))[1]
        == "0/1 nodes are available: 1 Too many pods."
    )


def test_ready_and_cordon() -> None:
    cache = cluster(
        make_node("a", ready="False"), make_node("b", unschedulable=True), make_node("c", ready="Unknown")
    )
    assert run(cache, make_pod("p"))[1] == (
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) were not ready."
    )
    tolerant = make_pod("p", tolerations=[{"key": "node.kubernetes.io/unschedulable", "operator": "Exists"}])
    assert run(cache, tolerant)[0] == "b"


def test_taints() -> None:
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}
    cache = cluster(
        make_node("a", taints=[taint]), make_node("b", taints=[{"key": "k", "effect": "NoExecute"}])
    )
    assert run(cache, make_pod("p"))[1] == (
        "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, "
        "1 node(s) had untolerated taint {k: }."
    )
    ok = make_pod("p", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu"}])
    assert run(cache, ok)[0] == "a"
    wrong_value = make_pod("p", tolerations=[{"key": "dedicated", "value": "cpu", "effect": "NoSchedule"}])
    assert run(cache, wrong_value)[0] is None
    everything = make_pod("p", tolerations=[{"operator": "Exists"}])
    assert run(cache, everything)[0] in ("a", "b")


def test_prefer_no_schedule_is_a_score_not_a_filter() -> None:
    cache = cluster(make_node("a", taints=[{"key": "x", "effect": "PreferNoSchedule"}]), make_node("b"))
    assert {run(cache, make_pod(f"p{i}"))[0] for i in range(10)} == {"b"}
    only = cluster(make_node("a", taints=[{"key": "x", "effect": "PreferNoSchedule"}]))
    assert run(only, make_pod("p"))[0] == "a"


@pytest.mark.parametrize(
    ("operator", "values", "expected"),
    [
        ("In", ["ssd"], {"a"}),
        ("NotIn", ["ssd"], {"b", "c"}),
        ("Exists", None, {"a", "b"}),
        ("DoesNotExist", None, {"c"}),
    ],
)
def test_node_affinity_operators(operator: str, values: list[str] | None, expected: set[str]) -> None:
    cache = cluster(
        make_node("a", labels={"disk": "ssd"}), make_node("b", labels={"disk": "hdd"}), make_node("c")
    )
    pod = make_pod("p", affinity=required_affinity("disk", operator, values))
    snapshot = cache.snapshot()
    state = CycleState(PodInfo.from_pod(pod))
    plugin = NodeAffinity()
    plugin.prepare(state, snapshot)
    assert {n.name for n in snapshot.nodes if not plugin.filter(state, n)} == expected


def test_node_affinity_gt_lt_and_fields() -> None:
    cache = cluster(make_node("a", labels={"gen": "3"}), make_node("b", labels={"gen": "5"}), make_node("c"))
    assert run(cache, make_pod("p", affinity=required_affinity("gen", "Gt", ["4"])))[0] == "b"
    assert run(cache, make_pod("p", affinity=required_affinity("gen", "Lt", ["4"])))[0] == "a"
    by_name = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["c"]}]},
                ]
            }
        }
    }
    assert run(cache, make_pod("p", affinity=by_name))[0] == "c"


def test_preferred_affinity_scores() -> None:
    cache = cluster(make_node("a"), make_node("b", labels={"zone": "z1"}), make_node("c"))
    preferred = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 50,
                    "preference": {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]}]},
                }
            ]
        }
    }
    assert {run(cache, make_pod(f"p{i}", affinity=preferred))[0] for i in range(10)} == {"b"}


def test_host_ports() -> None:
    cache = cluster(make_node("a"), make_node("b"), pods=(make_pod("old", host_ports=[80], node_name="a"),))
    assert {run(cache, make_pod(f"p{i}", host_ports=[80]))[0] for i in range(10)} == {"b"}
    cache.add_pod(make_pod("old2", host_ports=[80], node_name="b"))
    assert run(cache, make_pod("p", host_ports=[80]))[1] == (
        "0/2 nodes are available: 2 node(s) didn't have free ports for the requested pod ports."
    )
    assert run(cache, make_pod("p", host_ports=[81]))[0] in ("a", "b")


def test_least_allocated_prefers_emptier_node() -> None:
    cache = cluster(
        make_node("a"), make_node("b"), pods=(make_pod("big", cpu="3", memory="6Gi", node_name="a"),)
    )
    assert {run(cache, make_pod(f"p{i}", cpu="100m"))[0] for i in range(10)} == {"b"}


def test_owner_spread_spreads_replicas() -> None:
    cache = cluster(*(make_node(f"n{i}") for i in range(5)))
    for i in range(20):
        info = PodInfo.from_pod(make_pod(f"web-{i}", owner="web"))
        result = schedule(cache.snapshot(), info, PROFILE)
        assert result.node_name is not None
        cache.assume(info, result.node_name)
    counts = [len(n.pods) for n in cache.snapshot().nodes]
    assert counts == [4, 4, 4, 4, 4]


def test_pod_requests_init_containers_sidecars_and_overhead() -> None:
    pod = make_pod("p", cpu="1", memory="1Gi").model_copy(deep=True)
    data = pod.to_dict()
    data["spec"]["initContainers"] = [
        {"name": "big-init", "resources": {"requests": {"cpu": "3"}}},
        {
            "name": "sidecar",
            "restartPolicy": "Always",
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
        },
    ]
    data["spec"]["overhead"] = {"cpu": "100m"}
    requests = pod_requests(type(pod).from_dict(data))
    # max(init 3 cpu, containers 1 + sidecar 0.5) + overhead; memory 1Gi + 1Gi sidecar.
    assert requests == Resources(3100, 2 * 1024**3)
    limits_only = make_pod("q").to_dict()
    limits_only["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "2"}}
    assert pod_requests(type(pod).from_dict(limits_only)) == Resources(2000, 0)


def test_plugins_are_individually_usable() -> None:
    node = NodeInfo.for_node(make_node("a", cpu="1"))
    state = CycleState(PodInfo.from_pod(make_pod("p", cpu="2")))
    snapshot = Snapshot((node,))
    for plugin in (NodeReadySchedulable(), TaintToleration(), HostPorts(), NodeAffinity(), ResourcesFit()):
        plugin.prepare(state, snapshot)
    assert ResourcesFit().filter(state, node) == ("Insufficient cpu",)
    assert NodeReadySchedulable().filter(state, node) == ()
    assert OwnerSpread().normalize([0, 0]) == [100, 100]
    assert LeastAllocated().score(state, node) == (0 + 97) // 2  # over-committed cpu counts as full
