"""apps/v1 kinds: Deployment and ReplicaSet, plus autoscaling/v1 Scale."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.base import IntOrString, KubeModel, Time
from api.core import PodTemplateSpec
from api.meta import LabelSelector, ListMeta, ObjectMeta


class RollingUpdateDeployment(KubeModel):
    """How fast a rolling update goes: pods above (`maxSurge`) and below (`maxUnavailable`) the
    desired count, as a number or a percentage."""

    max_unavailable: IntOrString | None = None
    max_surge: IntOrString | None = None


class DeploymentStrategy(KubeModel):
    """How a Deployment replaces old pods with new ones: `RollingUpdate` (gradually) or
    `Recreate` (all at once)."""

    type: str | None = None
    rolling_update: RollingUpdateDeployment | None = None


class DeploymentSpec(KubeModel):
    """The desired state: how many replicas of which pod template, found by which selector, and
    how to roll out changes."""

    replicas: int | None = None
    selector: LabelSelector
    template: PodTemplateSpec
    strategy: DeploymentStrategy | None = None
    min_ready_seconds: int | None = None
    revision_history_limit: int | None = None
    paused: bool | None = None
    progress_deadline_seconds: int | None = None


class DeploymentCondition(KubeModel):
    type: str
    status: str
    last_update_time: Time | None = None
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class DeploymentStatus(KubeModel):
    observed_generation: int | None = None
    replicas: int | None = None
    updated_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    unavailable_replicas: int | None = None
    terminating_replicas: int | None = None
    conditions: list[DeploymentCondition] | None = None
    collision_count: int | None = None

    def condition(self, type_: str) -> DeploymentCondition | None:
        for cond in self.conditions or []:
            if cond.type == type_:
                return cond
        return None


class Deployment(KubeModel):
    """Declares a replicated application; its controller keeps one ReplicaSet per pod template
    and rolls between them."""

    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["Deployment"] = "Deployment"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: DeploymentSpec
    status: DeploymentStatus | None = None


class DeploymentList(KubeModel):
    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["DeploymentList"] = "DeploymentList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Deployment] = Field(default_factory=list)


class ReplicaSetSpec(KubeModel):
    """How many pods matching the selector should exist, and the template to create missing
    ones from."""

    replicas: int | None = None
    min_ready_seconds: int | None = None
    selector: LabelSelector
    template: PodTemplateSpec | None = None


class ReplicaSetCondition(KubeModel):
    type: str
    status: str
    last_transition_time: Time | None = None
    reason: str | None = None
    message: str | None = None


class ReplicaSetStatus(KubeModel):
    replicas: int = 0
    fully_labeled_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    terminating_replicas: int | None = None
    observed_generation: int | None = None
    conditions: list[ReplicaSetCondition] | None = None


class ReplicaSet(KubeModel):
    """Keeps a number of identical pods running: creates pods when too few match its selector,
    deletes when too many."""

    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["ReplicaSet"] = "ReplicaSet"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ReplicaSetSpec
    status: ReplicaSetStatus | None = None


class ReplicaSetList(KubeModel):
    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["ReplicaSetList"] = "ReplicaSetList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[ReplicaSet] = Field(default_factory=list)


class ScaleSpec(KubeModel):
    replicas: int | None = None


class ScaleStatus(KubeModel):
    replicas: int = 0
    selector: str | None = None


class Scale(KubeModel):
    api_version: Literal["autoscaling/v1"] = "autoscaling/v1"
    kind: Literal["Scale"] = "Scale"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: ScaleSpec = Field(default_factory=ScaleSpec)
    status: ScaleStatus | None = None
