"""Pure pieces of the CLI: kubectl's tabwriter, Table columns, apply's three-way patch,
rollout status messages, drain decisions and target parsing."""

from __future__ import annotations

import io
from typing import Any

import pytest

from api import resources
from api.patch import strategy_for
from cli import targets
from cli.apply import three_way_patch
from cli.nodes import classify
from cli.printers import TableOptions, TabWriter, table_lines
from cli.rollout import RolloutFailed, status_message

TABLE = {
    "columnDefinitions": [{"name": "Name", "format": "name", "priority": 0},
                          {"name": "Ready", "priority": 0}, {"name": "IP", "priority": 1}],
    "rows": [{"cells": ["web-1", "1/1", "10.0.0.1"],
              "object": {"metadata": {"name": "web-1", "namespace": "ns", "labels": {"b": "2", "a": "1"}}}}],
}


def test_tabwriter_pads_three_and_leaves_the_last_column() -> None:
    out = io.StringIO()
    w = TabWriter(out, minwidth=6, padding=3)
    w.line("NAME", "READY", "AGE")
    w.line("a-long-name", "1/1", "5s")
    w.flush()
    assert out.getvalue() == "NAME          READY   AGE\na-long-name   1/1     5s\n"


def test_table_lines_wide_namespace_labels() -> None:
    assert table_lines(TABLE, TableOptions()) == [["NAME", "READY"], ["web-1", "1/1"]]
    assert table_lines(TABLE, TableOptions(wide=True, with_namespace=True, show_labels=True)) == [
        ["NAMESPACE", "NAME", "READY", "IP", "LABELS"], ["ns", "web-1", "1/1", "10.0.0.1", "a=1,b=2"]]
    assert table_lines(TABLE, TableOptions(kind_prefix="pod"), header=False) == [["pod/web-1", "1/1"]]


def test_three_way_patch_changes_only_the_image() -> None:
    def dep(image: str) -> dict[str, object]:
        return {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": image}]}}}}

    live = dep("a")
    live["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]  # type: ignore[index]
    patch = three_way_patch(dep("a"), dep("b"), live, strategy_for("Deployment"))
    assert patch == {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "b"}],
                                                    "$setElementOrder/containers": [{"name": "c"}]}}}}
    assert three_way_patch(dep("a"), dep("a"), live, strategy_for("Deployment")) == {}


def test_rollout_status_messages() -> None:
    dep: dict[str, Any] = {"metadata": {"name": "web", "generation": 2}, "spec": {"replicas": 3},
           "status": {"observedGeneration": 1}}
    assert status_message(dep) == ("Waiting for deployment spec update to be observed...", False)
    dep["status"] = {"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}
    assert status_message(dep)[0].endswith("1 old replicas are pending termination...")
    dep["status"] = {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}
    assert status_message(dep) == ('deployment "web" successfully rolled out', True)
    dep["status"]["conditions"] = [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]
    with pytest.raises(RolloutFailed, match="exceeded its progress deadline"):
        status_message(dep)


def test_drain_classification() -> None:
    owned = {"metadata": {"ownerReferences": [{"kind": "ReplicaSet", "controller": True}]}}
    daemon = {"metadata": {"ownerReferences": [{"kind": "DaemonSet", "controller": True}]}}
    bare: dict[str, object] = {"metadata": {}}
    assert classify(owned, force=False, ignore_daemonsets=False)[0] == "evict"
    assert classify(bare, force=False, ignore_daemonsets=False)[0] == "refuse"
    assert classify(bare, force=True, ignore_daemonsets=False)[0] == "evict"
    assert classify(daemon, force=True, ignore_daemonsets=False)[0] == "refuse"
    assert classify(daemon, force=False, ignore_daemonsets=True)[0] == "skip"


def test_targets() -> None:
    got = targets.parse(["po/a", "deploy/b", "pod/c"])
    assert [(t.resource, t.names) for t in got.items] == [(resources.PODS, ["a", "c"]),
                                                          (resources.DEPLOYMENTS, ["b"])]
    assert got.prefixed
    got = targets.parse(["pods", "a", "b"])
    assert [(t.resource, t.names) for t in got.items] == [(resources.PODS, ["a", "b"])] and not got.prefixed
    assert [t.resource for t in targets.parse(["all"]).items] == list(targets.ALL)
    with pytest.raises(KeyError):
        targets.parse(["widgets"])
