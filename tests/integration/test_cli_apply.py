"""`kubelite apply|create|get` against a real API server, in-process (cli.main.main in a thread,
so the server keeps running in the test's event loop)."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from cli import config
from cli.main import main

Run = Callable[..., Awaitable[tuple[int, str, str]]]

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: busybox:1.36
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Pod
metadata:
  name: solo
  labels: {app: solo}
spec:
  containers:
  - name: c
    image: busybox:1.36
"""


@pytest.fixture
def kl(apiserver: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setattr(config, "DEFAULT_KUBECONFIGS", ())
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBELITE_SERVER", raising=False)

    async def run(*argv: str, stdin: str | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        if stdin is not None:
            monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        code = await asyncio.to_thread(main, [*argv, "--server", apiserver.url])  # type: ignore[attr-defined]
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def test_apply_created_configured_unchanged_keeps_ports(kl: Run, tmp_path: Path) -> None:
    path = tmp_path / "web.yaml"
    path.write_text(DEPLOYMENT)
    assert await kl("apply", "-f", str(path)) == (0, "deployment.apps/web created\npod/solo created\n", "")
    assert await kl("apply", "-f", str(path)) == (0, "deployment.apps/web unchanged\npod/solo unchanged\n", "")
    path.write_text(DEPLOYMENT.replace("image: busybox:1.36\n        ports", "image: busybox:1.37\n        ports"))
    code, out, _ = await kl("apply", "-f", str(path))
    assert (code, out) == (0, "deployment.apps/web configured\npod/solo unchanged\n")
    code, out, _ = await kl("get", "deploy/web", "-o", "json")
    container = json.loads(out)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "busybox:1.37"
    assert container["ports"][0]["containerPort"] == 8080


async def test_apply_from_stdin_and_get_table(kl: Run) -> None:
    code, out, err = await kl("apply", "-f", "-", stdin=DEPLOYMENT)
    assert code == 0, err
    code, out, _ = await kl("get", "deployments")
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert lines[0].startswith("NAME   READY")  # 3-space padding
    assert lines[1].split()[0] == "web"
    code, out, _ = await kl("get", "deployments", "-o", "wide")
    assert out.splitlines()[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]


async def test_create_and_its_errors(kl: Run, tmp_path: Path) -> None:
    path = tmp_path / "pod.yaml"
    path.write_text(DEPLOYMENT.split("---\n")[1])
    assert await kl("create", "-f", str(path)) == (0, "pod/solo created\n", "")
    code, out, err = await kl("create", "-f", str(path))
    assert (code, out) == (1, "")
    assert err == f'Error from server (AlreadyExists): error when creating "{path}": pods "solo" already exists\n'
    code, out, err = await kl("apply", "-n", "nowhere", "-f", str(path))
    assert code == 1 and err.startswith("Error from server (NotFound): ") and "nowhere" in err
    code, _, err = await kl("apply", "-f", str(tmp_path / "missing.yaml"))
    assert (code, err) == (1, f'error: the path "{tmp_path / "missing.yaml"}" does not exist\n')
    code, _, err = await kl("apply", "-f", "-", stdin="apiVersion: v1\nkind: Widget\nmetadata: {name: w}\n")
    assert code == 1 and 'no matches for kind "Widget" in version "v1"' in err
    code, _, err = await kl("create", "namespace", "default")
    assert (code, err) == (1, 'Error from server (AlreadyExists): namespaces "default" already exists\n')


async def test_apply_removes_only_what_the_manifest_dropped(kl: Run, client: object) -> None:
    from api.client import Client

    assert isinstance(client, Client)
    pod = DEPLOYMENT.split("---\n")[1].replace("labels: {app: solo}", "labels: {app: solo, tier: web}")
    assert (await kl("apply", "-f", "-", stdin=pod))[0] == 0
    path = "/api/v1/namespaces/default/pods/solo"
    await client.request("PATCH", path, json={"metadata": {"labels": {"owner": "someone-else"}}},
                         content_type="application/merge-patch+json")
    assert (await kl("apply", "-f", "-", stdin=DEPLOYMENT.split("---\n")[1]))[1] == "pod/solo configured\n"
    live = await client.request("GET", path)
    assert live["metadata"]["labels"] == {"app": "solo", "owner": "someone-else"}


async def test_server_warnings_print_like_kubectl(kl: Run) -> None:
    pod = DEPLOYMENT.split("---\n")[1].replace("  containers:", "  serviceAccountName: robot\n  containers:")
    code, out, err = await kl("apply", "-f", "-", stdin=pod)
    assert (code, out) == (0, "pod/solo created\n")
    assert err == "Warning: spec.serviceAccountName: accepted but not enforced by kubelite\n"
