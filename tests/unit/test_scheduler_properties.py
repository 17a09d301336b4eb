"""Properties of the pure scheduling core, over generated clusters and pods."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from api.core import Node, Pod
from scheduler.cache import SchedulerCache
from scheduler.framework import CycleState, run_filters, schedule
from scheduler.nodeinfo import NodeInfo, PodInfo, Resources, ports_conflict
from scheduler.plugins import default_profile
from scheduler.plugins.resources_fit import INSUFFICIENT_CPU, INSUFFICIENT_MEMORY, TOO_MANY_PODS
from tests.unit.test_scheduler_builders import make_node, make_pod, required_affinity

PROFILE = default_profile()
RESOURCE_REASONS = {TOO_MANY_PODS, INSUFFICIENT_CPU, INSUFFICIENT_MEMORY}

taints = st.sampled_from(
    [
        {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"},
        {"key": "spot", "effect": "NoExecute"},
        {"key": "soft", "effect": "PreferNoSchedule"},
    ]
)
tolerations = st.sampled_from(
    [
        {"key": "dedicated", "operator": "Equal", "value": "gpu"},
        {"key": "spot", "operator": "Exists"},
        {"operator": "Exists"},
        {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
    ]
)


@st.composite
def nodes(draw: st.DrawFn, name: str) -> Node:
    return make_node(
        name,
        cpu=f"{draw(st.integers(0, 8000))}m",
        memory=str(draw(st.integers(0, 8)) * 2**30),
        pods=draw(st.integers(0, 6)),
        labels=draw(
            st.dictionaries(st.sampled_from(["disk", "zone"]), st.sampled_from(["a", "b"]), max_size=2)
        ),
        taints=draw(st.lists(taints, max_size=2, unique_by=lambda t: t["key"])),
        ready=draw(st.sampled_from(["True", "True", "True", "False", "Unknown"])),
        unschedulable=draw(st.booleans()) and draw(st.booleans()),
    )


@st.composite
def clusters(draw: st.DrawFn) -> list[Node]:
    count = draw(st.integers(0, 7))
    return [draw(nodes(f"node-{i}")) for i in range(count)]


@st.composite
def pods(draw: st.DrawFn, name: str = "p") -> Pod:
    cpu = draw(st.none() | st.integers(0, 3000).map(lambda m: f"{m}m"))
    memory = draw(st.none() | st.integers(0, 3).map(lambda g: str(g * 2**30)))
    affinity: dict[str, Any] | None = None
    if draw(st.booleans()):
        affinity = required_affinity("zone", draw(st.sampled_from(["In", "NotIn"])), ["a"])
    return make_pod(
        name,
        cpu=cpu,
        memory=memory,
        owner=draw(st.sampled_from([None, "web", "db"])),
        host_ports=draw(st.lists(st.sampled_from([80, 443]), max_size=1)),
        node_selector=draw(st.sampled_from([None, {"disk": "a"}])),
        affinity=affinity,
        tolerations=draw(st.lists(tolerations, max_size=2)),
    )


def cache_of(cluster: list[Node]) -> SchedulerCache:
    cache = SchedulerCache()
    for node in cluster:
        cache.add_node(node)
    return cache


@settings(max_examples=300, deadline=None)
@given(clusters(), pods())
def test_chosen_node_passes_every_filter_and_failures_name_every_node(cluster: list[Node], pod: Pod) -> None:
    snapshot = cache_of(cluster).snapshot()
    info = PodInfo.from_pod(pod)
    result = schedule(snapshot, info, PROFILE)
    assert result == schedule(snapshot, info, PROFILE)  # a pure function: same input, same answer

    state = CycleState(info)
    for plugin in {id(p): p for p in PROFILE.filters}.values():
        plugin.prepare(state, snapshot)
    verdicts = {n.name: run_filters(PROFILE, state, n) for n in snapshot.nodes}

    if result.node_name is not None:
        assert result.error is None
        assert verdicts[result.node_name] == ()
        assert result.feasible == sum(1 for v in verdicts.values() if not v)
        return
    error = result.error
    assert error is not None
    # Unschedulable only when truly nothing fits, and then every node says why.
    assert all(verdicts.values())
    assert set(error.diagnosis) == {n.name for n in snapshot.nodes}
    assert error.num_nodes == len(snapshot.nodes)
    if not snapshot.nodes:
        return
    counts = [int(c) for c in re.findall(r"(?:: |, )(\d+) ", error.message)]
    assert sum(counts) == sum(error.histogram().values())
    # One reason per node, except that resources can be short on several counts at once.
    extra = sum(len(r) - 1 for r in error.diagnosis.values())
    assert all(set(r) <= RESOURCE_REASONS for r in error.diagnosis.values() if len(r) > 1)
    assert sum(counts) == len(snapshot.nodes) + extra
    assert error.message.startswith(f"0/{len(snapshot.nodes)} nodes are available: ")
    assert error.message.endswith(".")


@settings(max_examples=150, deadline=None)
@given(clusters(), st.lists(pods(), min_size=1, max_size=25))
def test_assumed_pods_never_overcommit_a_node(cluster: list[Node], batch: list[Pod]) -> None:
    cache = cache_of(cluster)
    for i, pod in enumerate(batch):
        pod = pod.model_copy(
            update={"metadata": pod.metadata.model_copy(update={"name": f"p{i}", "uid": f"u{i}"})}
        )
        info = PodInfo.from_pod(pod)
        result = schedule(cache.snapshot(), info, PROFILE)
        if result.node_name is not None:
            cache.assume(info, result.node_name)
    for node in cache.snapshot().nodes:
        assert len(node.pods) <= node.allowed_pods
        assert node.requested.milli_cpu <= node.allocatable.milli_cpu or all(
            p.requests.milli_cpu == 0 for p in node.pods.values()
        )
        assert node.requested.memory <= node.allocatable.memory or all(
            p.requests.memory == 0 for p in node.pods.values()
        )
        ports = [port for p in node.pods.values() for port in p.host_ports]
        assert not any(ports_conflict(a, b) for i, a in enumerate(ports) for b in ports[i + 1 :])


def recomputed(node: NodeInfo) -> tuple[Resources, Resources, list[Any], dict[str, int]]:
    requested = sum((p.requests for p in node.pods.values()), Resources())
    non_zero = sum((p.non_zero_requests for p in node.pods.values()), Resources())
    ports = sorted(port for p in node.pods.values() for port in p.host_ports)
    owners: dict[str, int] = {}
    for p in node.pods.values():
        if p.owner_uid:
            owners[p.owner_uid] = owners.get(p.owner_uid, 0) + 1
    return requested, non_zero, ports, owners


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5), pods()), max_size=30))
def test_node_info_sums_always_equal_the_sum_over_its_pods(ops: list[tuple[bool, int, Pod]]) -> None:
    node = NodeInfo.for_node(make_node("n"))
    for add, index, pod in ops:
        pod = pod.model_copy(update={"metadata": pod.metadata.model_copy(update={"name": f"p{index}"})})
        node = node.with_pod(PodInfo.from_pod(pod)) if add else node.without_pod(f"default/p{index}")
        requested, non_zero, ports, owners = recomputed(node)
        assert node.requested == requested
        assert node.non_zero_requested == non_zero
        assert sorted(node.used_ports) == ports
        assert dict(node.owner_counts) == owners


cache_ops = st.lists(
    st.tuples(
        st.sampled_from(
            ["assume", "finish", "forget", "confirm", "remove", "expire", "drop-node", "add-node"]
        ),
        st.integers(0, 4),  # pod index
        st.integers(0, 2),  # node index
    ),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(cache_ops)
def test_cache_counts_each_pod_once(ops: list[tuple[str, int, int]]) -> None:
    cache = SchedulerCache(assumed_ttl=10)
    now = 0.0
    for i in range(3):
        cache.add_node(make_node(f"n{i}"))
    for op, p, n in ops:
        now += 1
        key = f"default/p{p}"
        pod = make_pod(f"p{p}", cpu="100m", owner="web")
        if op == "assume" and cache.node_of(key) is None:
            cache.assume(PodInfo.from_pod(pod), f"n{n}")
        elif op == "finish":
            cache.finish_binding(key, now)
        elif op == "forget":
            was_confirmed = cache.node_of(key) is not None and not cache.is_assumed(key)
            cache.forget(key)
            assert (cache.node_of(key) is not None) == was_confirmed
        elif op == "confirm":
            cache.add_pod(make_pod(f"p{p}", cpu="100m", owner="web", node_name=f"n{n}"))
            assert cache.node_of(key) == f"n{n}" and not cache.is_assumed(key)
        elif op == "remove":
            cache.remove_pod(pod)
            assert cache.node_of(key) is None
        elif op == "expire":
            now += 5
            for gone in cache.cleanup_expired(now):
                assert cache.node_of(gone) is None
        elif op == "drop-node":
            cache.remove_node(f"n{n}")
        elif op == "add-node":
            cache.add_node(make_node(f"n{n}"))
        # Invariant: every pod is counted on exactly the node the cache says, once.
        counted: dict[str, str] = {}
        for name in ("n0", "n1", "n2"):
            info = cache.node_info(name)
            for pod_key in info.pods if info else ():
                assert pod_key not in counted
                counted[pod_key] = name
        assert counted == {
            f"default/p{i}": cache.node_of(f"default/p{i}")
            for i in range(5)
            if cache.node_of(f"default/p{i}") is not None
        }
        assert cache.pod_count() == len(counted)
        assert all(n.node is not None for n in cache.snapshot().nodes)


@settings(max_examples=100, deadline=None)
@given(clusters(), pods())
def test_batch_scoring_equals_per_node_scoring(cluster: list[Node], pod: Pod) -> None:
    snapshot = cache_of(cluster).snapshot()
    state = CycleState(PodInfo.from_pod(pod))
    for scorer in PROFILE.scorers:
        scorer.plugin.prepare(state, snapshot)
        per_node = [scorer.plugin.score(state, n) for n in snapshot.nodes]
        assert scorer.plugin.score_all(state, snapshot.nodes) == per_node
