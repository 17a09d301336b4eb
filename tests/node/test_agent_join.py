"""`kubelite agent --token --ca-cert-hash` joins a secured server and its node goes Ready;
a wrong CA pin is refused before anything is sent."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from apiserver.etcd_process import free_port
from cli.local.cleanup import clean_node
from tests.support.cluster import TMPFS

pytestmark = [pytest.mark.root]
BIN = Path(sys.executable).parent


def _wait_file(path: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)
    return path.read_text().strip()


async def test_agent_joins_a_secured_server():
    data = Path(tempfile.mkdtemp(prefix="kltest-join-", dir=TMPFS))
    root = Path(tempfile.mkdtemp(prefix="kltest-joinnode-"))
    port = free_port()
    server = subprocess.Popen([str(BIN / "kubelite"), "server", "--data-dir", str(data), "--port", str(port),
                               "--secure", "--no-controllers"], stderr=subprocess.DEVNULL)
    agent = None
    try:
        words = _wait_file(data / "join-command").split()
        token, pin = words[words.index("--token") + 1], words[words.index("--ca-cert-hash") + 1]
        common = ["agent", "--server", f"https://127.0.0.1:{port}", "--node-name", "kltest-joined",
                  "--root-dir", str(root), "--node-ip", "127.0.0.1", "--port", str(free_port()),
                  "--network", "none", "--cgroup-parent", "kltest-joined", "--token", token]
        wrong = subprocess.run([str(BIN / "kubelite"), *common, "--ca-cert-hash", "sha256:" + "0" * 64],
                               capture_output=True, text=True, timeout=60)
        assert wrong.returncode == 1 and "cannot join" in wrong.stderr
        assert not (root / "pki" / "node.crt").exists()

        agent = subprocess.Popen([str(BIN / "kubelite"), *common, "--ca-cert-hash", pin], stderr=subprocess.DEVNULL)
        kubectl = [str(BIN / "kubectl"), "--kubeconfig", str(data / "admin.kubeconfig"), "--cache-dir",
                   str(data / "cache")]
        deadline = time.monotonic() + 60
        while True:
            out = subprocess.run([*kubectl, "get", "node", "kltest-joined", "-o", "json"], capture_output=True,
                                 text=True, timeout=30)
            if out.returncode == 0:
                conditions = {c["type"]: c["status"] for c in json.loads(out.stdout)["status"].get("conditions", [])}
                if conditions.get("Ready") == "True":
                    break
            assert time.monotonic() < deadline, out.stderr
            await asyncio.sleep(0.3)
        assert (root / "pki" / "node.key").stat().st_mode & 0o777 == 0o600
    finally:
        if agent is not None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=30)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        await clean_node(root, cgroup_parent="kltest-joined")
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
