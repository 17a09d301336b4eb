"""IP address management for one node's pod CIDR, with its state on disk.

Layout (like CNI's host-local plugin): one file per allocated address,

    <dir>/10.244.1.7      JSON {"pod_uid": ..., "host_ports": [...]}
    <dir>/last_reserved   the address handed out last (allocation rotates past it)

Invariants:
- An address file is claimed by ``os.link`` of a fully written temp file, which fails if the
  name exists: a claim is atomic and complete, so a crash never leaves a half-written record and
  two processes (or a restarted kubelet's new instance) can never hold the same address.
- Allocation scans and claims under an ``flock`` on ``<dir>/lock`` so that the same pod uid is
  never given two addresses by concurrent callers.
- The network address, the gateway (first host address) and the broadcast address are never
  handed out. Allocation rotates (starts after the last one handed out) so that a freed address
  is not reused at once, while stale conntrack entries or endpoints may still point at it.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from runtime.network.errors import NetworkError

_LOCK = "lock"
_LAST = "last_reserved"


@dataclass(frozen=True)
class HostPort:
    """A ``hostPort`` of a pod: traffic to the node on ``host_port`` goes to ``container_port``."""

    host_port: int
    container_port: int
    protocol: str = "TCP"  # TCP or UDP, as in a Kubernetes ContainerPort

    def __post_init__(self) -> None:
        if self.protocol not in ("TCP", "UDP"):
            raise ValueError(f"hostPort protocol must be TCP or UDP, not {self.protocol!r}")
        for port in (self.host_port, self.container_port):
            if not 0 < port < 65536:
                raise ValueError(f"port {port} is out of range 1-65535")


@dataclass(frozen=True)
class Allocation:
    pod_uid: str
    ip: str
    host_ports: tuple[HostPort, ...] = field(default=())

    def to_json(self) -> str:
        ports = [[p.host_port, p.container_port, p.protocol] for p in self.host_ports]
        return json.dumps({"pod_uid": self.pod_uid, "host_ports": ports})

    @classmethod
    def from_json(cls, ip: str, text: str) -> Allocation:
        data = json.loads(text)
        ports = tuple(HostPort(int(h), int(c), str(p)) for h, c, p in data.get("host_ports", []))
        return cls(pod_uid=str(data["pod_uid"]), ip=ip, host_ports=ports)


class Ipam:
    """Addresses of ``cidr`` for pods, one file per address under ``directory``."""

    def __init__(self, directory: Path, cidr: str) -> None:
        self.directory = directory
        self.network = ipaddress.ip_network(cidr)
        if self.network.version != 4 or self.network.num_addresses < 4:
            raise NetworkError(f"pod CIDR {cidr} must be an IPv4 network of at least 4 addresses")
        self.gateway = self.network.network_address + 1

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with open(self.directory / _LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield  # released when the file is closed

    def _read(self) -> dict[str, Allocation]:
        """Allocations by pod uid; files that are not addresses of our CIDR are ignored."""
        found: dict[str, Allocation] = {}
        if not self.directory.is_dir():
            return found
        for path in self.directory.iterdir():
            try:
                address = ipaddress.ip_address(path.name)
            except ValueError:
                continue
            if address not in self.network:
                continue
            with contextlib.suppress(FileNotFoundError):
                alloc = Allocation.from_json(path.name, path.read_text())
                found[alloc.pod_uid] = alloc
        return found

    def allocated(self) -> dict[str, Allocation]:
        with self._locked():
            return self._read()

    def get(self, pod_uid: str) -> Allocation | None:
        return self.allocated().get(pod_uid)

    def allocate(self, pod_uid: str) -> tuple[Allocation, bool]:
        """The pod's allocation and whether it is new; the same pod uid always gets its address back."""
        with self._locked():
            current = self._read()
            if pod_uid in current:
                return current[pod_uid], False
            taken = {a.ip for a in current.values()}
            for address in self._candidates():
                if str(address) in taken:
                    continue
                alloc = Allocation(pod_uid=pod_uid, ip=str(address))
                if self._claim(alloc):
                    self._write_atomic(self.directory / _LAST, str(address))
                    return alloc, True
        raise NetworkError(f"address pool {self.network} is exhausted ({len(taken)} pods hold addresses)")

    def update(self, alloc: Allocation) -> None:
        """Rewrite the record of an address this pod holds (for example its host ports)."""
        with self._locked():
            path = self.directory / alloc.ip
            if not path.exists():
                raise NetworkError(f"pod {alloc.pod_uid} holds no address {alloc.ip}")
            self._write_atomic(path, alloc.to_json())

    def release(self, pod_uid: str) -> Allocation | None:
        """Free the pod's address; returns what it held, None if it held nothing (idempotent)."""
        with self._locked():
            alloc = self._read().get(pod_uid)
            if alloc is not None:
                with contextlib.suppress(FileNotFoundError):
                    (self.directory / alloc.ip).unlink()
            return alloc

    def destroy(self) -> None:
        """Remove all state (teardown of the node's network)."""
        if not self.directory.is_dir():
            return
        for path in self.directory.iterdir():
            path.unlink()
        self.directory.rmdir()

    def _candidates(self) -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        first = int(self.gateway) + 1
        last = int(self.network.broadcast_address) - 1
        start = first
        with contextlib.suppress(FileNotFoundError, ValueError):
            previous = int(ipaddress.ip_address((self.directory / _LAST).read_text().strip()))
            if first <= previous < last:
                start = previous + 1
        for value in [*range(start, last + 1), *range(first, start)]:
            yield ipaddress.ip_address(value)

    def _claim(self, alloc: Allocation) -> bool:
        tmp = self.directory / f".{alloc.ip}.{os.getpid()}.tmp"
        tmp.write_text(alloc.to_json())
        try:
            os.link(tmp, self.directory / alloc.ip)
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink()

    @staticmethod
    def _write_atomic(path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
