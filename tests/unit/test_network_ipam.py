"""IPAM: addresses from the pod CIDR, on disk, never handed out twice."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from runtime.network import HostPort, Ipam, NetworkError


def test_allocates_from_two_upward_and_is_idempotent_per_pod(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, "10.244.1.0/24")
    a, new_a = ipam.allocate("pod-a")
    b, new_b = ipam.allocate("pod-b")
    assert (a.ip, b.ip) == ("10.244.1.2", "10.244.1.3")
    assert new_a and new_b
    again, new = ipam.allocate("pod-a")
    assert again.ip == "10.244.1.2" and not new
    assert {uid: x.ip for uid, x in ipam.allocated().items()} == {"pod-a": "10.244.1.2", "pod-b": "10.244.1.3"}


def test_a_new_instance_sees_every_allocation(tmp_path: Path) -> None:
    Ipam(tmp_path, "10.244.1.0/24").allocate("pod-a")
    restarted = Ipam(tmp_path, "10.244.1.0/24")
    assert restarted.allocate("pod-a")[0].ip == "10.244.1.2"
    assert restarted.allocate("pod-b")[0].ip == "10.244.1.3"


def test_release_frees_the_address_and_is_idempotent(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, "10.244.1.0/29")  # .2 .. .6 usable
    ips = [ipam.allocate(f"pod-{i}")[0].ip for i in range(5)]
    assert ips == [f"10.244.1.{i}" for i in range(2, 7)]
    released = ipam.release("pod-1")
    assert released is not None and released.ip == "10.244.1.3"
    assert ipam.release("pod-1") is None
    assert "pod-1" not in ipam.allocated()
    assert ipam.allocate("pod-new")[0].ip == "10.244.1.3"


def test_exhaustion_is_an_error_naming_the_pool(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, "10.244.1.0/29")
    for i in range(5):
        ipam.allocate(f"pod-{i}")
    with pytest.raises(NetworkError, match=r"10.244.1.0/29 is exhausted"):
        ipam.allocate("one-too-many")


def test_rotates_past_a_just_freed_address(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, "10.244.1.0/24")
    first = ipam.allocate("pod-a")[0].ip
    ipam.release("pod-a")
    assert ipam.allocate("pod-b")[0].ip != first


def test_concurrent_allocations_never_share_an_address(tmp_path: Path) -> None:
    results: list[str] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        ip = Ipam(tmp_path, "10.244.1.0/24").allocate(f"pod-{i}")[0].ip  # an instance per thread
        with lock:
            results.append(ip)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 40 and len(set(results)) == 40


def test_records_keep_host_ports_and_destroy_removes_everything(tmp_path: Path) -> None:
    state = tmp_path / "ipam"
    ipam = Ipam(state, "10.244.1.0/24")
    alloc, _ = ipam.allocate("pod-a")
    ipam.update(type(alloc)(pod_uid="pod-a", ip=alloc.ip, host_ports=(HostPort(4000, 8080),)))
    assert Ipam(state, "10.244.1.0/24").allocated()["pod-a"].host_ports == (HostPort(4000, 8080, "TCP"),)
    ipam.destroy()
    assert not state.exists()


def test_bad_input_is_refused() -> None:
    with pytest.raises(NetworkError):
        Ipam(Path("/nonexistent"), "10.244.1.0/31")
    with pytest.raises(ValueError):
        HostPort(70000, 80)
    with pytest.raises(ValueError):
        HostPort(80, 80, "SCTP")
