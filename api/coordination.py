"""coordination.k8s.io/v1 Lease: node heartbeats and leader election."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api.base import KubeModel, MicroTime
from api.meta import ListMeta, ObjectMeta


class LeaseSpec(KubeModel):
    """Who holds the lease and until when it is valid unless renewed."""

    holder_identity: str | None = None
    lease_duration_seconds: int | None = None
    acquire_time: MicroTime | None = None
    renew_time: MicroTime | None = None
    lease_transitions: int | None = None
    strategy: str | None = None
    preferred_holder: str | None = None


class Lease(KubeModel):
    """A lock with an expiry: nodes renew theirs as a heartbeat; the scheduler and controllers
    elect a leader with one."""

    api_version: Literal["coordination.k8s.io/v1"] = "coordination.k8s.io/v1"
    kind: Literal["Lease"] = "Lease"
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: LeaseSpec | None = None


class LeaseList(KubeModel):
    api_version: Literal["coordination.k8s.io/v1"] = "coordination.k8s.io/v1"
    kind: Literal["LeaseList"] = "LeaseList"
    metadata: ListMeta = Field(default_factory=ListMeta)
    items: list[Lease] = Field(default_factory=list)
