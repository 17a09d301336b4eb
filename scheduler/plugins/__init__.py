"""The default plugins and the default profile.

Filters run cheapest first, so most rejected nodes cost one attribute read:
ready/cordon, node affinity, taints, host ports, then resources. Score weights
follow Kubernetes' defaults where a counterpart exists (taints 3, node affinity 2,
spreading 2, least allocated 1).
"""

from __future__ import annotations

from scheduler.framework import Profile, WeightedScorer
from scheduler.plugins.host_ports import HostPorts
from scheduler.plugins.least_allocated import LeastAllocated
from scheduler.plugins.node_affinity import NodeAffinity
from scheduler.plugins.node_ready_schedulable import NodeReadySchedulable
from scheduler.plugins.owner_spread import OwnerSpread
from scheduler.plugins.resources_fit import ResourcesFit
from scheduler.plugins.taint_toleration import TaintToleration

__all__ = [
    "HostPorts",
    "LeastAllocated",
    "NodeAffinity",
    "NodeReadySchedulable",
    "OwnerSpread",
    "ResourcesFit",
    "TaintToleration",
    "default_profile",
]


def default_profile(name: str = "default-scheduler") -> Profile:
    affinity = NodeAffinity()
    taints = TaintToleration()
    return Profile(
        name=name,
        filters=(NodeReadySchedulable(), affinity, taints, HostPorts(), ResourcesFit()),
        scorers=(
            WeightedScorer(taints, 3),
            WeightedScorer(affinity, 2),
            WeightedScorer(OwnerSpread(), 2),
            WeightedScorer(LeastAllocated(), 1),
        ),
    )
