"""`kubelite server` runs the cluster DNS as system:kube-dns: its own Service resolves through it."""

from __future__ import annotations

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
from tests.support.cluster import TMPFS

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
