"""The pure parts of `kubelite demo`: the catalogue, its manifests, the live view."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from rich.console import Console

from api.base import unknown_fields
from api.core import Pod
from api.validation import parse_object
from cli.demos import demos
from cli.demos.stage import MANIFESTS
from cli.demos.view import pod_status, pods_table, ready, restarts
from cli.main import main
from cli.manifests import load

NAMES = ["self-healing", "scaling", "services", "rolling-update", "crash-loop", "oom", "node-failure"]


def test_every_demo_is_listed_with_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    for name, module in demos().items():
        assert re.search(rf"^  {re.escape(name)} +{re.escape(module.SUMMARY)}$", out, re.M), out
    assert list(demos()) == NAMES


def test_an_unknown_demo_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "no-such-demo", "--server", "http://127.0.0.1:9"]) == 2
    assert "no demo named 'no-such-demo'; one of: self-healing, scaling" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted(MANIFESTS.glob("*.yaml")), ids=lambda p: p.name)
def test_demo_manifests_are_objects_kubelite_accepts_strictly(path: Path) -> None:
    manifests = load([str(path)])
    assert manifests
    for m in manifests:
        obj = parse_object(m.resource.model, m.obj)
        assert unknown_fields(obj) == []  # fieldValidation=Strict (what apply sends) would refuse them
        assert not m.namespace  # the demo puts them in its own namespace


def test_every_manifest_a_demo_applies_exists() -> None:
    sources = "".join(Path(m.__file__ or "").read_text() for m in demos().values())
    applied = set(re.findall(r'"([a-z0-9-]+\.yaml)"', sources))
    assert applied == {p.name for p in MANIFESTS.glob("*.yaml")}


def _pod(status: dict[str, object], *, deleting: bool = False) -> Pod:
    meta: dict[str, object] = {"name": "web-1", "namespace": "demo-x", "creationTimestamp": "2026-01-01T00:00:00Z"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:01:00Z"
    return Pod.from_dict({"metadata": meta, "spec": {"nodeName": "n2", "containers": [{"name": "c", "image": "b"}]},
                          "status": status})


def test_the_live_table_shows_what_kubectl_get_pods_shows() -> None:
    backoff = _pod({"phase": "Running", "podIP": "10.244.2.5", "containerStatuses": [
        {"name": "c", "ready": False, "restartCount": 2,
         "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}}}]})
    assert pod_status(backoff) == "CrashLoopBackOff"
    assert restarts(backoff) == 2 and not ready(backoff)
    console = Console(width=200, record=True)
    console.print(pods_table([backoff]))
    lines = console.export_text().splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "NODE", "IP", "AGE"]
    assert lines[1].split()[:6] == ["web-1", "0/1", "CrashLoopBackOff", "2", "n2", "10.244.2.5"]

    oom = _pod({"phase": "Failed", "containerStatuses": [
        {"name": "c", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]})
    assert pod_status(oom) == "OOMKilled"
    going = _pod({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}, deleting=True)
    assert pod_status(going) == "Terminating" and ready(going)


def test_the_change_log_names_what_changed() -> None:
    from cli.demos.view import pod_change

    starting = _pod({"phase": "Running", "containerStatuses": [
        {"name": "c", "ready": False, "restartCount": 0, "state": {"running": {}}}]})
    up = _pod({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": [
        {"name": "c", "ready": True, "restartCount": 1, "state": {"running": {}}}]})
    assert pod_change(None, starting) == "web-1  created (Running on n2)"
    assert pod_change(starting, up) == "web-1  ready 0/1 -> 1/1, restarts 0 -> 1"
    assert pod_change(up, up) is None
    assert pod_change(up, None) == "web-1  deleted"
