"""Every `kubelite demo` passes unattended on a `kubelite up --nodes 3` cluster.

One cluster serves every demo (each demo works in its own namespace and deletes it at
the end). Each test runs the real command, `kubelite demo NAME --yes`, as a user would,
and asserts its exit code and the narration lines that show the outcome happened. The
cluster's node monitor grace period is short (20 s, above the kubelet's 10 s Lease
renewal) so the node-failure demo takes about a minute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from apiserver.etcd_process import free_port
from tests.cluster.test_up import leftovers

pytestmark = [pytest.mark.root, pytest.mark.slow]
KUBELITE = str(Path(sys.executable).parent / "kubelite")


@dataclass
class Cluster:
    data_dir: Path
    kubeconfig: Path

    def demo(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        # A wide virtual terminal, so that narration lines are not wrapped where we look for them.
        env = {**os.environ, "COLUMNS": "250", "TERM": "dumb"}
        return subprocess.run([KUBELITE, "demo", *args, "--kubeconfig", str(self.kubeconfig),
                               "--data-dir", str(self.data_dir)],
                              capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    data_dir = Path(tempfile.mkdtemp(prefix="kltest-demos-"))
    kubeconfig = data_dir.parent / f"{data_dir.name}.kubeconfig"
    try:
        up = subprocess.run([KUBELITE, "up", "--nodes", "3", "--data-dir", str(data_dir), "--port", str(free_port()),
                             "--name-prefix", "kltest", "--kubeconfig", str(kubeconfig),
                             "--node-monitor-grace-period", "20s", "--pod-eviction-timeout", "20s"],
                            capture_output=True, text=True, timeout=240)
        assert up.returncode == 0, up.stdout + up.stderr
        yield Cluster(data_dir, kubeconfig)
    finally:
        down = subprocess.run([KUBELITE, "down", "--data-dir", str(data_dir)], capture_output=True, text=True,
                              timeout=180)
        shutil.rmtree(data_dir, ignore_errors=True)
        kubeconfig.unlink(missing_ok=True)
    assert down.returncode == 0, down.stdout + down.stderr
    assert leftovers() == []


def passed(result: subprocess.CompletedProcess[str]) -> str:
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "✓ demo passed" in out, out
    assert "✗" not in out, out
    assert "gave up after" not in out, out
    return out


def test_the_list_names_every_demo(cluster: Cluster) -> None:
    listed = subprocess.run([KUBELITE, "demo"], capture_output=True, text=True, timeout=30)
    assert listed.returncode == 0, listed.stderr
    names = [line.split()[0] for line in listed.stdout.splitlines()[2:] if line.strip()]
    assert names == ["self-healing", "scaling", "services", "rolling-update", "crash-loop", "oom", "node-failure"]
    unknown = cluster.demo("no-such-demo")
    assert unknown.returncode == 2 and "one of: self-healing" in unknown.stderr


def test_self_healing(cluster: Cluster) -> None:
    out = passed(cluster.demo("self-healing", "--yes"))
    assert "kill -9 " in out and "from the runtime's state.json" in out
    assert "✓ web-" in out and "with restartCount 1" in out
    assert "exit code 137, want 137" in out
    assert "restarts 0 -> 1" in out  # the change log, from the watch
    assert "sees 2 of 3 pods and creates a replacement" in out


def test_scaling(cluster: Cluster) -> None:
    out = passed(cluster.demo("scaling", "--yes"))
    assert "✓ 5 pods are Ready" in out
    assert "✓ the pods run on 3 different nodes" in out
    assert "✓ exactly 1 pod is left and it is Ready" in out
    assert "kubelite scale deployment/web --replicas 5" in out


def test_services_two_tiers_find_each_other_and_traffic_follows_the_pods(cluster: Cluster) -> None:
    out = passed(cluster.demo("services", "--yes"))
    assert "✓ the web tier reaches the backend tier by name, on both backends" in out
    assert "✓ no answer came from backend-" in out
    assert "✓ traffic spreads over all 4 backends" in out


def test_rolling_update_stalls_on_a_broken_version_and_rolls_back(cluster: Cluster) -> None:
    out = passed(cluster.demo("rolling-update", "--yes"))
    assert "✓ all 3 pods run v2" in out
    assert "✓ maxSurge held: at most 4 pods at once" in out
    assert "✓ maxUnavailable held: never fewer than 3 Ready pods" in out
    assert "✓ the rollout is stuck: 1 v3 pod, not Ready" in out
    assert "deployment.apps/web rolled back" in out
    assert "✓ back to 3 Ready v2 pods and no v3 pod" in out


def test_crash_loop_backs_off(cluster: Cluster) -> None:
    out = passed(cluster.demo("crash-loop", "--yes"))
    assert "✓ the pod is in CrashLoopBackOff with restartCount 2 or more" in out
    assert "✓ the kubelet's back-off grew: 10s, then 20s" in out
    assert "CrashLoopBackOff" in out  # in the live table too


def test_oom_killed(cluster: Cluster) -> None:
    out = passed(cluster.demo("oom", "--yes"))
    assert "reason OOMKilled, exitCode 137" in out
    assert "✓ its container was OOMKilled with exit code 137" in out


def test_node_failure_moves_pods(cluster: Cluster) -> None:
    out = passed(cluster.demo("node-failure", "--yes", timeout=420))
    assert "is NotReady and tainted node.kubernetes.io/unreachable" in out
    assert "Ready -> NotReady" in out and "tainted unreachable:NoSchedule,NoExecute" in out  # the change log
    assert "status Running -> Terminating" in out
    assert "✓ 6 pods are Ready again, none on kltest-node" in out
    assert "is Ready again without taints and its old pods are gone" in out


def test_node_failure_refuses_a_cluster_it_cannot_fail_a_node_of(cluster: Cluster, tmp_path: Path) -> None:
    other = Cluster(tmp_path / "not-a-cluster", cluster.kubeconfig)  # the right server, the wrong data dir
    refused = other.demo("node-failure", "--yes")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "only works for a cluster made by `kubelite up --nodes N`" in refused.stdout
