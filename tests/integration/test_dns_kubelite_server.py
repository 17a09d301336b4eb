"""`kubelite server` runs the cluster DNS as system:kube-dns (its own Service resolves through it);
`kubelite dns` runs it on its own."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from apiserver.etcd_process import free_port
from tests.support.cluster import TMPFS, ApiServer

KUBELITE = Path(sys.executable).parent / "kubelite"

pytestmark = pytest.mark.skipif(shutil.which("dig") is None, reason="needs dig (apt install bind9-dnsutils)")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="kltest-dnsserver-", dir=TMPFS))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def dig(port: int, *args: str) -> str:
    return subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+time=1", "+tries=1", "+short", *args],
                          capture_output=True, text=True, timeout=10).stdout.strip()


def test_server_runs_dns_and_keeps_kube_dns(data_dir: Path) -> None:
    port, dns_port = free_port(), free_port()
    proc = subprocess.Popen([str(KUBELITE), "server", "--secure", "--data-dir", str(data_dir), "--port", str(port),
                             "--dns-port", str(dns_port), "--dns-upstream", "127.0.0.1:9"],
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 40
        # kube-dns appears in DNS once the DNS server created it through the API and its own
        # informer brought it back: the whole path, under the system:kube-dns identity
        while dig(dns_port, "kube-dns.kube-system.svc.cluster.local") != "10.43.0.10":
            assert proc.poll() is None, "the server exited"
            assert time.monotonic() < deadline, "kube-dns never resolved"
            time.sleep(0.2)
        assert dig(dns_port, "+tcp", "kube-dns.kube-system.svc.cluster.local") == "10.43.0.10"
        assert dig(dns_port, "SRV", "_dns._udp.kube-dns.kube-system.svc.cluster.local") == \
            "0 100 53 kube-dns.kube-system.svc.cluster.local."
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "DNS listening on 127.0.0.1 port" in err


async def test_kubelite_dns_command(apiserver: ApiServer) -> None:
    """`kubelite dns` on its own: answers once synced, stops cleanly on SIGTERM, and says which
    address and port it could not take."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        str(KUBELITE), "dns", "--server", apiserver.url, "--port", str(port), "--upstream", "127.0.0.1:9",
        "--no-kube-dns-service", stderr=asyncio.subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            out = await asyncio.create_subprocess_exec(
                "dig", "@127.0.0.1", "-p", str(port), "+time=1", "+tries=1", "default.svc.cluster.local",
                stdout=asyncio.subprocess.PIPE)
            text = (await out.communicate())[0].decode()
            if "status: NOERROR" in text:
                break
            assert proc.returncode is None and time.monotonic() < deadline, "kubelite dns did not answer"
            await asyncio.sleep(0.2)
        second = await asyncio.create_subprocess_exec(
            str(KUBELITE), "dns", "--server", apiserver.url, "--port", str(port), "--no-kube-dns-service",
            stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(second.communicate(), 30)
        assert second.returncode == 1 and f"cannot listen on 127.0.0.1 port {port}" in err.decode()
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
    assert proc.returncode == 0
