"""`kubelite up --nodes 2` and `kubelite down` as a user runs them: a deployment spreads over
two simulated hosts, pods answer across hosts, logs and exec work, and `down` leaves nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from apiserver.etcd_process import free_port

pytestmark = [pytest.mark.root, pytest.mark.slow]
BIN = Path(sys.executable).parent


def run(*args: str, kubeconfig: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env_args = ["--kubeconfig", str(kubeconfig)] if kubeconfig else []
    cmd = [str(BIN / args[0]), *env_args, *args[1:]] if args[0] == "kubectl" else [str(BIN / "kubelite"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def leftovers() -> list[str]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found = [line.split(":")[1].strip() for line in links.splitlines() if "kltest-" in line or " kl0" in line]
    found += [n for n in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout.split()
              if n.startswith("kltest-node")]
    found += [t for t in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.splitlines()
              if "kubelite" in t]
    found += [str(p) for p in Path("/sys/fs/cgroup").glob("*/kltest-node*")]
    return found


def test_two_node_cluster_up_and_down():
    state = Path(tempfile.mkdtemp(prefix="kltest-up-"))
    kubeconfig = state.parent / f"{state.name}.kubeconfig"
    try:
        up = run("up", "--nodes", "2", "--data-dir", str(state), "--port", str(free_port()), "--name-prefix",
                 "kltest", "--kubeconfig", str(kubeconfig))
        assert up.returncode == 0, up.stdout + up.stderr
        nodes = json.loads(run("kubectl", "get", "nodes", "-o", "json", kubeconfig=kubeconfig).stdout)["items"]
        assert sorted(n["status"]["addresses"][0]["address"] for n in nodes) == ["198.51.100.11", "198.51.100.12"]

        applied = run("kubectl", "apply", "-f", str(Path(__file__).parents[2] / "manifests" / "web.yaml"),
                      kubeconfig=kubeconfig)
        assert applied.returncode == 0, applied.stderr
        waited = run("kubectl", "rollout", "status", "deployment/web", "--timeout=90s", kubeconfig=kubeconfig)
        assert waited.returncode == 0, waited.stdout + waited.stderr
        pods = json.loads(run("kubectl", "get", "pods", "-o", "json", kubeconfig=kubeconfig).stdout)["items"]
        by_node: dict[str, list[dict]] = {}
        for p in pods:
            by_node.setdefault(p["spec"]["nodeName"], []).append(p)
        assert len(by_node) == 2, "three replicas should spread over both nodes"
        first, second = (by_node[n][0] for n in sorted(by_node))
        request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc {second['status']['podIP']} 8080 | tail -1"
        reply = run("kubectl", "exec", first["metadata"]["name"], "--", "sh", "-c", request, kubeconfig=kubeconfig)
        assert reply.stdout.strip() == f"hello from {second['metadata']['name']}", reply.stderr
    finally:
        down = run("down", "--data-dir", str(state))
        shutil.rmtree(state, ignore_errors=True)
        kubeconfig.unlink(missing_ok=True)
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers() == []
    assert not state.exists()
