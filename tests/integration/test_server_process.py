"""`kubelite server` and `kubelite apiserver` as processes: embedded etcd, readiness,
clean shutdown, and clear errors."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from apiserver.etcd_process import free_port
from tests.support.cluster import TMPFS

KUBELITE = Path(sys.executable).parent / "kubelite"


def _ready(port: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.1)
    return False


@pytest.fixture
def data_dir():
    path = Path(tempfile.mkdtemp(prefix="kltest-server-", dir=TMPFS))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_server_embeds_etcd_and_stops_it(data_dir):
    port = free_port()
    proc = subprocess.Popen([str(KUBELITE), "server", "--data-dir", str(data_dir), "--port", str(port),
                             "--no-controllers"], stderr=subprocess.PIPE, text=True)
    try:
        assert _ready(port), "the server did not become ready"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/namespaces/default") as r:
            assert r.status == 200
        etcd_pids = subprocess.run(["pgrep", "-f", f"etcd --name kubelite --data-dir {data_dir}"],
                                   capture_output=True, text=True).stdout.split()
        assert etcd_pids
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert (data_dir / "etcd" / "member").is_dir()  # data stays for the next start
    for pid in etcd_pids:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def test_server_without_etcd_names_the_package(data_dir):
    env = {**os.environ, "PATH": "/nonexistent"}
    result = subprocess.run([str(KUBELITE), "server", "--data-dir", str(data_dir), "--port", str(free_port())],
                            capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 1
    assert "etcd-server" in result.stderr and "--etcd-servers" in result.stderr


def test_refuses_to_listen_beyond_loopback_without_tls():
    result = subprocess.run([str(KUBELITE), "apiserver", "--etcd-servers", "http://127.0.0.1:1",
                             "--bind-address", "0.0.0.0"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "TLS" in result.stderr


async def test_clients_reach_the_server_over_a_unix_socket(data_dir):
    from api.client import Client
    from api.core import Namespace

    sock = data_dir / "apiserver.sock"
    port = free_port()
    proc = subprocess.Popen([str(KUBELITE), "server", "--data-dir", str(data_dir), "--port", str(port),
                             "--no-controllers", "--unix-socket", str(sock)], stderr=subprocess.DEVNULL)
    try:
        assert _ready(port)
        assert sock.stat().st_mode & 0o777 == 0o600
        async with Client(f"unix://{sock}") as client:
            ns = await client.get(Namespace, "default")
            assert ns.metadata.name == "default"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def test_secure_server_makes_credentials_and_refuses_anonymous(data_dir, tmp_path):
    import json as _json
    import ssl

    port = free_port()
    proc = subprocess.Popen([str(KUBELITE), "server", "--data-dir", str(data_dir), "--port", str(port), "--secure"],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:  # the CA appears once the server has made its credentials
                context = ssl.create_default_context(cafile=str(data_dir / "pki" / "ca.crt"))
                with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=context, timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the secure server did not become ready"
                time.sleep(0.1)
        try:
            urllib.request.urlopen(f"https://127.0.0.1:{port}/api/v1/pods", context=context, timeout=5)
            raise AssertionError("anonymous request was served")
        except urllib.error.HTTPError as err:
            assert err.code == 401
        for name in ("admin.kubeconfig", "scheduler.kubeconfig", "join-command"):
            assert (data_dir / name).stat().st_mode & 0o777 == 0o600
        kubectl = Path(sys.executable).parent / "kubectl"
        out = subprocess.run([str(kubectl), "--kubeconfig", str(data_dir / "admin.kubeconfig"), "get", "ns",
                              "-o", "json", "--cache-dir", str(tmp_path)], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "kube-system" in {n["metadata"]["name"] for n in _json.loads(out.stdout)["items"]}
        assert (data_dir / "join-command").read_text().startswith(f"kubelite agent --server https://127.0.0.1:{port}")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def test_etcd_picks_new_ports_when_its_port_was_taken(data_dir):
    import socket

    from apiserver.etcd_process import EtcdProcess

    etcd = EtcdProcess(data_dir / "etcd", fast=True)
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", etcd.peer_port))  # someone else got there first
    squatter.listen()
    taken = etcd.peer_port
    try:
        etcd.start()
        assert etcd.peer_port != taken
        with socket.create_connection(("127.0.0.1", etcd.client_port), timeout=2):
            pass
    finally:
        etcd.stop()
        squatter.close()
