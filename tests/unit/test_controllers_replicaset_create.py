"""The ReplicaSet controller's creation path: slow start stops at the first failure, so a
refusing API server sees one request instead of `replicas`, and expectations stay exact.

The client here is a stub that only counts creates: the real API server is exercised by the
integration tests, this is about the controller's arithmetic when creations fail."""

from __future__ import annotations

from typing import Any, cast

import pytest

from api.apps import ReplicaSet, ReplicaSetSpec
from api.client import Client
from api.core import Container, Pod, PodSpec, PodTemplateSpec
from api.errors import Forbidden
from api.events import EventRecorder
from api.meta import LabelSelector, ObjectMeta
from controllers.replicaset import ReplicaSetController
from controllers.shared import Informers


class StubClient:
    def __init__(self, succeed: int) -> None:
        self.succeed = succeed
        self.calls = 0

    async def create(self, obj: Pod, **_: Any) -> Pod:
        self.calls += 1
        if self.calls > self.succeed:
            raise Forbidden('pods "web-" is forbidden: exceeded quota')
        return obj


class StubRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, _obj: object, type_: str, reason: str, message: str) -> None:
        self.events.append((type_, reason, message))


def make(succeed: int) -> tuple[ReplicaSetController, StubClient, StubRecorder, ReplicaSet]:
    client, recorder = StubClient(succeed), StubRecorder()
    real = Client("http://127.0.0.1:1")  # never used: informers are not run here
    ctrl = ReplicaSetController(cast(Client, client), Informers.create(real), cast(EventRecorder, recorder),
                                clock=lambda: 100.0)
    rs = ReplicaSet(metadata=ObjectMeta(name="web", namespace="default", uid="rs-uid"),
                    spec=ReplicaSetSpec(replicas=10, selector=LabelSelector(match_labels={"app": "web"}),
                                        template=PodTemplateSpec(metadata=ObjectMeta(labels={"app": "web"}),
                                                                 spec=PodSpec(containers=[Container(name="c")]))))
    return ctrl, client, recorder, rs


async def test_first_failure_stops_the_storm() -> None:
    ctrl, client, recorder, rs = make(succeed=0)
    with pytest.raises(Forbidden):
        await ctrl._create(rs, 10)
    assert client.calls == 1
    assert ctrl.expectations.satisfied("default/web", 100.0)  # nothing left to wait for
    assert recorder.events[0][:2] == ("Warning", "FailedCreate")


async def test_partial_success_keeps_exact_expectations() -> None:
    ctrl, client, recorder, rs = make(succeed=3)
    with pytest.raises(Forbidden):
        await ctrl._create(rs, 10)
    assert client.calls == 1 + 2 + 4  # batches 1 and 2 succeeded, batch 4 failed
    assert ctrl.expectations.pending("default/web") == (3, 0)  # the 3 created pods are awaited
    for _ in range(3):
        ctrl.expectations.creation_observed("default/web")
    assert ctrl.expectations.satisfied("default/web", 100.0)


async def test_success_records_one_event() -> None:
    ctrl, client, recorder, rs = make(succeed=100)
    await ctrl._create(rs, 10)
    assert client.calls == 10
    assert recorder.events == [("Normal", "SuccessfulCreate", "Created 10 pod(s)")]
    pod = ctrl._pod_for(rs)
    assert pod.metadata.generate_name == "web-"
    ref = pod.metadata.controller_ref()
    assert ref is not None and ref.uid == "rs-uid" and ref.kind == "ReplicaSet"
