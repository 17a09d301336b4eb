"""`kubelite get` and `describe` against a real API server: kubectl's tables and outputs."""

from __future__ import annotations

import asyncio
import json

import yaml

from api.client import Client
from tests.integration.test_cli_apply import DEPLOYMENT, Run, kl

__all__ = ["kl"]


def _event(name: str, obj: str, reason: str, when: str, *, kind: str = "Pod") -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": "default"},
            "involvedObject": {"kind": kind, "name": obj, "namespace": "default", "apiVersion": "v1"},
            "reason": reason, "message": f"{reason} happened", "type": "Normal", "count": 1,
            "source": {"component": "test"}, "firstTimestamp": when, "lastTimestamp": when}


async def test_get_tables_wide_all_namespaces_and_labels(kl: Run, client: Client) -> None:
    assert (await kl("apply", "-f", "-", stdin=DEPLOYMENT))[0] == 0
    assert await kl("create", "namespace", "other") == (0, "namespace/other created\n", "")
    pod = DEPLOYMENT.split("---\n")[1].replace("name: solo", "name: far").replace("app: solo", "app: far")
    assert (await kl("apply", "-n", "other", "-f", "-", stdin=pod))[1] == "pod/far created\n"

    code, out, _ = await kl("get", "pods")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert header.index("READY") == len("solo") + 3 if len("NAME") < len("solo") else header.index("READY") == 7
    assert [r.split()[:3] for r in rows] == [["solo", "0/1", "Pending"]]

    code, out, _ = await kl("get", "pods", "-A")
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert sorted(tuple(r.split()[:2]) for r in lines[1:]) == [("default", "solo"), ("other", "far")]

    code, out, _ = await kl("get", "po", "-o", "wide")
    assert out.splitlines()[0].split()[5:] == ["IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES"]

    code, out, _ = await kl("get", "pods", "-A", "-l", "app=far", "--show-labels")
    assert out.splitlines()[0].split()[-1] == "LABELS"
    assert out.splitlines()[1].split()[-1] == "app=far" and len(out.splitlines()) == 2

    code, out, err = await kl("get", "pods", "-l", "app=nothing")
    assert (code, out, err) == (0, "", "No resources found in default namespace.\n")

    code, out, _ = await kl("get", "all")
    assert "pod/solo" in out and "deployment.apps/web" in out
    assert out.count("NAME") == 2  # pods and deployments; no replicasets without a controller

    code, out, _ = await kl("get", "namespaces")
    assert {line.split()[0] for line in out.splitlines()[1:]} >= {"default", "other"}


async def test_get_structured_outputs(kl: Run) -> None:
    assert (await kl("apply", "-f", "-", stdin=DEPLOYMENT))[0] == 0
    code, out, _ = await kl("get", "pods,deploy", "-o", "name")
    assert out == "pod/solo\ndeployment.apps/web\n"
    code, out, _ = await kl("get", "pod", "solo", "-o", "yaml")
    doc = yaml.safe_load(out)
    assert doc["kind"] == "Pod" and doc["metadata"]["name"] == "solo" and "managedFields" not in doc["metadata"]
    code, out, _ = await kl("get", "pods", "-o", "json")
    doc = json.loads(out)
    assert doc["kind"] == "List" and [i["metadata"]["name"] for i in doc["items"]] == ["solo"]
    assert doc["items"][0]["kind"] == "Pod"


async def test_get_events_sorted_and_describe_shows_events(kl: Run, client: Client) -> None:
    assert (await kl("apply", "-f", "-", stdin=DEPLOYMENT))[0] == 0
    path = "/api/v1/namespaces/default/events"
    await client.request("POST", path, json=_event("e2", "solo", "Pulled", "2026-01-01T00:00:02Z"))
    await client.request("POST", path, json=_event("e1", "solo", "Scheduled", "2026-01-01T00:00:01Z"))
    await client.request("POST", path, json=_event("e3", "other", "Killing", "2026-01-01T00:00:03Z"))
    code, out, _ = await kl("get", "events")
    assert out.splitlines()[0].split()[:4] == ["LAST", "SEEN", "TYPE", "REASON"]
    assert [line.split()[2] for line in out.splitlines()[1:]] == ["Scheduled", "Pulled", "Killing"]

    code, out, err = await kl("describe", "pod", "solo")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Name:") and lines[0].split() == ["Name:", "solo"]
    assert lines[1].split() == ["Namespace:", "default"]
    assert lines[0].index("solo") == lines[1].index("default")  # one aligned block
    assert "Containers:" in lines and any(line.split() == ["Image:", "busybox:1.36"] for line in lines)
    events = lines[lines.index("Events:") + 1:]
    assert events[0].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert [e.split()[1] for e in events[2:]] == ["Scheduled", "Pulled"]

    code, out, _ = await kl("describe", "deployment", "web")
    assert "Replicas:" in out and "Pod Template:" in out and out.splitlines()[-1].split() == ["Events:", "<none>"]


async def test_not_found_and_unknown_type(kl: Run) -> None:
    code, out, err = await kl("get", "pod", "x")
    assert (code, out, err) == (1, "", 'Error from server (NotFound): pods "x" not found\n')
    code, out, err = await kl("describe", "deploy", "x")
    assert (code, err) == (1, 'Error from server (NotFound): deployments.apps "x" not found\n')
    code, _, err = await kl("get", "widgets")
    assert (code, err) == (1, 'error: the server doesn\'t have a resource type "widgets"\n')


async def test_get_watch_prints_new_rows(kl: Run, client: Client) -> None:
    assert (await kl("apply", "-f", "-", stdin=DEPLOYMENT))[0] == 0
    watching = asyncio.ensure_future(kl("get", "pods", "-w", "--request-timeout", "2"))
    await asyncio.sleep(0.5)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "late", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await client.request("POST", "/api/v1/namespaces/default/pods", json=pod)
    code, out, err = await asyncio.wait_for(watching, 10)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split()[0] == "NAME" and lines[1].split()[0] == "solo"
    assert lines[2].split()[:3] == ["late", "0/1", "Pending"]
    assert lines[2].index("0/1") == lines[0].index("READY")  # the watch keeps the list's columns


async def test_get_watch_on_an_empty_list_prints_the_header_with_the_first_row(kl: Run, client: Client) -> None:
    watching = asyncio.ensure_future(kl("get", "pods", "-w", "--request-timeout", "1"))
    await asyncio.sleep(0.4)
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "first", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    await client.request("POST", "/api/v1/namespaces/default/pods", json=pod)
    code, out, _ = await asyncio.wait_for(watching, 10)
    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == ["NAME", "first"]
